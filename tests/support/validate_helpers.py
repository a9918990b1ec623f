"""Helpers for the validate tests: run the command in-process, and make throwaway repo copies."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplat import validate

REPO = Path(__file__).resolve().parent.parent.parent
COPIED = ("apps", "platform/argocd", "environments")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Exit code and JSON report of `mlplat validate ARGV --format json` (checkov skipped)."""
    code = validate.main([*argv, "--format", "json", "--no-policy-scan"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def run_corpus(folders: Iterable[Path]) -> dict[str, Any]:
    """Exit code (`code`) and JSON report of one `validate --env dev` run over fixture folders, for a
    module-scoped fixture (which cannot take capsys): one kubectl run and one schema load for every case."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = validate.main([*map(str, folders), "--env", "dev", "--format", "json", "--no-policy-scan"])
    return {"code": code, **json.loads(out.getvalue())}


def kustomize(path: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize` renders from a folder (what Argo CD deploys from it)."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def edit(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of `old` in `path`: an edit that matches nothing, or more than the place
    a test means, would leave the copy valid and the test passing for the wrong reason."""
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: {text.count(old)} occurrences of {old!r}, expected one"
    path.write_text(text.replace(old, new))


def copy_without(dest: Path, *cuts: tuple[str, str]) -> Path:
    """A copy of the repository (copy_repo) with each `(file, text)` cut out of that file, where it
    stands once: the usual way a test breaks an app (a component, a resource or a key left out)."""
    repo = copy_repo(dest)
    for file, text in cuts:
        edit(repo / file, text, "")
    return repo


def rules(report: dict[str, Any]) -> set[str]:
    return {f["rule"] for f in report.get("findings", [])}


def copy_repo(dest: Path, git: bool = False) -> Path:
    """The parts of the repository validate reads, optionally as a git repo with one commit on main."""
    for part in COPIED:
        shutil.copytree(REPO / part, dest / part)
    if git:
        for args in (
            ["init", "-q", "-b", "main"],
            ["add", "-A"],
            ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "base"],
        ):
            subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)
    return dest
