"""Input that tries to be something else: a --base that git would read as an option, and files
that cannot be read safely (YAML bombs, absurd nesting, huge or not UTF-8) — each is refused with
a clear message or a finding naming the file, never a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from validate_helpers import copy_repo


def validate_cli(repo: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlplat.validate", "--repo", str(repo), *argv, "--no-policy-scan"],
        cwd=repo, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "base",
    [
        "--output={out}",  # git diff would write the diff to a file of the caller's choosing
        "--ext-diff",
        "-ccore.pager=touch {out}",
        "--end-of-options",
    ],
)
def test_base_cannot_be_turned_into_a_git_option(tmp_path: Path, base: str) -> None:
    repo = copy_repo(tmp_path / "repo", git=True)
    (repo / "apps" / "iris-classifier" / "base" / "notes.txt").write_text("a change to validate\n")
    out = tmp_path / "leak"
    result = validate_cli(repo, "--changed", f"--base={base.format(out=out)}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--base" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("leak*")), "git ran with an option smuggled in through --base"


def test_base_that_is_a_commit_still_works(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo", git=True)
    result = validate_cli(repo, "--changed", "--base", "main~0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no app changed since main~0" in result.stdout
