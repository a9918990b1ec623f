"""The console script acts on the checkout it is run from, with that checkout's code.

Seen before this was fixed: a second clone reusing the first clone's `.venv` ran `mlplat promote`,
and the first clone's overlay was edited, because the repository root came from where the package
was installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlplat import registry_gate
from tests.support.fake_mlflow import FakeRegistry, serve
from tests.support.lineage import COMPLETE

REPO = Path(__file__).resolve().parents[3]
MLPLAT = Path(sys.prefix) / "bin" / "mlplat"  # the console script of the virtualenv running the tests
APP, VERSION = "iris-classifier", "2"
PROD = Path("apps", APP, "overlays", "prod", "model-version.yaml")


def _second_clone(dest: Path) -> Path:
    """Every tracked file of this checkout (as it is on disk) in a new git work tree."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(source.read_bytes())
    git = ["git", "-c", "user.email=t@localhost", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "second clone"], cwd=dest, check=True)
    return dest


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    return subprocess.run([str(MLPLAT), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_promote_from_a_second_clone_sharing_the_virtualenv_edits_the_second_clone(tmp_path: Path) -> None:
    second = _second_clone(tmp_path / "second")
    before_here = (REPO / PROD).read_bytes()
    registry = FakeRegistry()
    registry.add_version(
        APP,
        VERSION,
        source=f"s3://mlplat-models/{APP}/{VERSION}",
        tags={
            registry_gate.EVALUATION_TAG: registry_gate.EVALUATION_PASSED,
            registry_gate.METRIC_TAG_PREFIX + "accuracy": "0.99",
            **COMPLETE,  # prod needs the lineage tags and model card (MLP-REGISTRY-LINEAGE)
        },
        aliases=("approved",),
    )
    try:
        with serve(registry):
            result = _run(
                "promote", APP, "--from", "staging", "--to", "prod", "--registry", registry.url, cwd=second
            )
        edited_here = (REPO / PROD).read_bytes() != before_here
    finally:
        (REPO / PROD).write_bytes(before_here)  # a regression must not leave this checkout edited
    assert result.returncode == 0, result.stderr
    assert f'mlplat/model-version: "{VERSION}"' in (second / PROD).read_text()
    assert not edited_here, "the clone the virtualenv was installed from was edited"


def test_validate_in_a_second_clone_judges_that_clones_files(tmp_path: Path) -> None:
    second = _second_clone(tmp_path / "second")
    overlay = second / "apps" / APP / "overlays" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("name: iris-classifier", "name: iris-clasifier"))
    result = _run("validate", "--no-policy-scan", "--env", "dev", f"apps/{APP}/overlays/dev", cwd=second)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MLP-PATCH-UNMATCHED" in result.stdout


def test_a_repo_named_from_inside_another_clone_is_the_one_acted_on(tmp_path: Path) -> None:
    """The re-run that gives the named clone its own code ran `python -m`, which puts the working
    directory first on sys.path: from this clone's top folder it imported this clone's mlplat again and
    refused ("mlplat was imported from ... even with ... first on sys.path")."""
    second = _second_clone(tmp_path / "second")
    overlay = second / "apps" / APP / "overlays" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("name: iris-classifier", "name: iris-clasifier"))
    result = _run("--repo", str(second), "validate", "--no-policy-scan", "--env", "dev", cwd=REPO)
    assert result.returncode == 1, result.stdout + result.stderr
    # This clone's overlay names the InferenceService right: the finding is the second clone's.
    assert f"apps/{APP}/overlays/dev/kustomization.yaml" in result.stdout
    assert "MLP-PATCH-UNMATCHED" in result.stdout


@pytest.mark.parametrize("args", [["validate"], ["--repo", "no/such/dir", "validate"]])
def test_outside_any_checkout_is_a_usage_error_not_a_guess(tmp_path: Path, args: list[str]) -> None:
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert ("not inside an mlplat checkout" in result.stderr) or ("is not a directory" in result.stderr)


@pytest.mark.parametrize(
    "args",
    [["validate", "--", "--help"], ["history", "--registry", "http://x", "--", "-h"]],
    ids=["validate-path-named-help", "history-app-named-h"],
)
def test_outside_any_checkout_a_help_flag_after_double_dash_is_no_help_request(
    tmp_path: Path, args: list[str]
) -> None:
    """After `--` it is a PATH or an app: the checkout is missing, said as such (was UnboundLocalError)."""
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "not inside an mlplat checkout" in result.stderr


def test_outside_any_checkout_help_is_still_answered(tmp_path: Path) -> None:
    result = _run("validate", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "usage: mlplat validate" in result.stdout
