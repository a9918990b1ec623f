"""A copy of the checkout to edit (add an environment, rename a contract name) and run the real tools on:
`mlplat` acts on the checkout it is given, with that checkout's code (mlplat/checkout.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.harness import REPO
from tests.support.validate_helpers import edit as edit  # re-exported: the one exactly-once text edit

# What `add_environment` writes into infra/contract.py: `qa` between dev and staging (promotion order).
CONTRACT_ENVIRONMENTS = '["dev", "staging", "prod"]'
WITH_QA = '["dev", "qa", "staging", "prod"]'


def checkout_copy(dest: Path) -> Path:
    """The parts of the checkout that `mlplat plan`, `mlplat validate` and `mlplat generate` run from and
    write to (the workflows, the bootstrap's generated locals): their code too, so an edit of
    infra/contract.py in the copy is the code that runs (mlplat/checkout.py)."""
    # Terraform's local working files (providers, state) are no part of the checkout.
    ignore = shutil.ignore_patterns("__pycache__", ".terraform", "*.tfstate*")
    for part in ("infra", "mlplat", "apps", "platform", "environments", ".github"):
        shutil.copytree(REPO / part, dest / part, ignore=ignore)
    for part in ("Pulumi.yaml", "__main__.py", "Makefile"):
        shutil.copy(REPO / part, dest / part)
    return dest


def add_environment_to_the_contract(repo: Path) -> None:
    """Step 1 of "a new environment" (docs/architecture.md): `qa` in infra/contract.py, in promotion order."""
    edit(repo / "infra" / "contract.py", CONTRACT_ENVIRONMENTS, WITH_QA)


def mlplat(repo: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The real CLI on the copy, as a user runs it (exit code, stdout, stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "mlplat.cli", "--repo", str(repo), *argv],
        cwd=repo, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip


def printed_json(repo: Path, code: str) -> Any:
    """What `code`, run by a fresh interpreter in `repo` (its code, as `mlplat` would), prints as JSON."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)
