"""The environments have one owner, `ENVIRONMENTS` in infra/contract.py (promotion order). What can read it
does (the program, the tools, the Makefile, the pr and drift workflows); the places that must spell the
list out are held to it here, each failure naming the file and what to write there."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.checkout_copy import add_environment_to_the_contract, checkout_copy


def _make(repo: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(repo), *argv], capture_output=True, text=True, check=False)


def test_make_plans_plans_an_environment_added_to_the_contract(tmp_path: Path) -> None:
    """`ENVS` in the Makefile listed dev, staging and prod again: `make plans` skipped `qa`."""
    repo = checkout_copy(tmp_path / "checkout")
    add_environment_to_the_contract(repo)
    # -n prints the commands; -o takes the virtualenvs as made, so the copy needs none.
    plans = _make(repo, "-n", "-o", ".venv/bin/.installed", "-o", ".venv-policy/.installed", "plans")
    assert plans.returncode == 0, plans.stderr
    assert "for e in dev qa staging prod; do .venv/bin/mlplat plan --env $e" in plans.stdout, plans.stdout


def test_make_help_runs_before_python_is_there(tmp_path: Path) -> None:
    """Reading the environments costs a Python start; a target that does not use them never pays it,
    and one that does stops with the reason when the contract cannot be read."""
    repo = checkout_copy(tmp_path / "checkout")
    assert _make(repo, "help", "PYTHON=false").returncode == 0
    plans = _make(
        repo, "-n", "-o", ".venv/bin/.installed", "-o", ".venv-policy/.installed", "plans", "PYTHON=false"
    )
    assert plans.returncode == 2, plans.stdout
    assert "cannot read the environments from infra/contract.py" in plans.stderr, plans.stderr
