"""Shared fixtures: the repository root, the read-only reference data beside it, offline plans, and the
mock engine for Pulumi tests that build components directly."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mlplat.mocks import Recording

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def reference() -> Path:
    """../shared/reference: upstream CRDs, chart defaults and schemas, read in place."""
    if not REFERENCE.is_dir():
        pytest.fail(
            f"{REFERENCE} is missing: the tests read upstream schemas from ../shared/reference; "
            "`make reference` downloads them (scripts/reference.lock.json)"
        )
    return REFERENCE


def _run_plan(env: str, out_dir: Path) -> dict[str, Any]:
    """Run `mlplat plan` in a fresh process: the Pulumi runtime keeps global state per program run."""
    path = out_dir / f"{env}.json"
    result = subprocess.run(
        [sys.executable, "-m", "mlplat.cli", "plan", "--env", env, "--no-policies", "--out", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"mlplat plan --env {env} failed:\n{result.stdout}\n{result.stderr}"
    plan: dict[str, Any] = json.loads(path.read_text())
    return plan


@pytest.fixture(scope="session")
def offline_plan(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, Any]]:
    """The offline plan of an environment, computed once per test session."""
    cache: dict[str, dict[str, Any]] = {}
    out_dir = tmp_path_factory.mktemp("plans")

    def get(env: str) -> dict[str, Any]:
        if env not in cache:
            cache[env] = _run_plan(env, out_dir)
        return cache[env]

    return get


@pytest.fixture
def mock_engine() -> Iterator[Recording]:
    """A fresh recording mock engine per test: mlplat/mocks.py, the one `mlplat plan` and the services
    harness run, so a component test sees the provider answers the plan does and no resource of
    another test. Imported here, not at the top: most tests never start Pulumi."""
    from pulumi.runtime.settings import ROOT

    from mlplat import mocks

    recording = mocks.start("test")
    yield recording
    ROOT.set(None)
