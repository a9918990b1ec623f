"""scripts/fetch-reference, run as CI runs it (a subprocess with the test's Python), and its lock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.harness import REPO

SCRIPT = REPO / "scripts" / "fetch-reference"
LOCK = REPO / "scripts" / "reference.lock.json"
# The reference copy's own documents, which the lock does not list: nothing but the lock's generator reads
# them, so a fetched copy has none (scripts/fetch-reference, DOCUMENTS).
DOCUMENTS = frozenset({"SOURCES.md", "SHA256SUMS", "index.json"})


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], cwd=REPO, capture_output=True, text=True, check=False
    )


def locked_files(lock: Path = LOCK) -> list[dict[str, str]]:
    """The lock's entries: file, repo, commit, path, sha256."""
    doc: Any = json.loads(lock.read_text(encoding="utf-8"))
    files: list[dict[str, str]] = doc["files"]
    return files
