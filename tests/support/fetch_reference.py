"""scripts/fetch-reference, run as CI runs it (a subprocess with the test's Python), and its lock."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.harness import REPO

SCRIPT = REPO / "scripts" / "fetch-reference"
# The script's own names (its top level defines, its `__main__` guard runs nothing): where the lock is, and
# the reference copy's own documents, which the lock does not list and a fetched copy does not have.
_SCRIPT = runpy.run_path(str(SCRIPT))
LOCK: Path = _SCRIPT["LOCK"]
DOCUMENTS: frozenset[str] = _SCRIPT["DOCUMENTS"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], cwd=REPO, capture_output=True, text=True, check=False
    )


def locked_files(lock: Path = LOCK) -> list[dict[str, str]]:
    """The lock's entries: file, repo, commit, path, sha256."""
    doc: Any = json.loads(lock.read_text(encoding="utf-8"))
    files: list[dict[str, str]] = doc["files"]
    return files
