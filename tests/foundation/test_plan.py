"""The offline plan: every environment plans, the file has the documented shape, secrets are redacted."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.config import ENVIRONMENTS
from mlplat.plan import REDACTED, redact

PlanFor = Callable[[str], dict[str, Any]]
RESOURCE_KEYS = {"urn", "type", "name", "parent", "inputs", "protect", "retainOnDelete", "dependsOn"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_plan_has_the_documented_shape(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    assert plan["stack"] == env and plan["project"] == "mlplat" and plan["kind"] == "offline-plan"
    assert plan["resources"], "an offline plan without resources"
    for resource in plan["resources"]:
        missing = RESOURCE_KEYS - set(resource)
        assert not missing, f"{resource['urn']}: missing {missing}"
    assert plan["violations"] == []
    assert plan["outputs"]["kubeconfig"] == REDACTED


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_secret_reaches_the_plan_file(offline_plan: PlanFor, env: str) -> None:
    text = json.dumps(offline_plan(env))
    # Mocked random passwords and kubeconfig credentials look like this; none may appear.
    assert "mock-" not in text and "certificate-authority-data" not in text


def test_redact_replaces_secrets_and_resource_references() -> None:
    secret = {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",  # pragma: allowlist secret
        "value": "hunter2",
    }
    ref = {
        "4dabf18193072939515e22adb298388d": "5cf8f73096256a8f31e491e813e4eb8e",  # pragma: allowlist secret
        "urn": "urn:x",
    }
    assert redact({"a": [secret, {"b": ref}], "c": 1}) == {
        "a": [REDACTED, {"b": {"resourceRef": "urn:x"}}],
        "c": 1,
    }


def test_plan_command_prints_an_offline_summary(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev.json"
    result = subprocess.run(
        [sys.executable, "-m", "mlplat.cli", "plan", "--env", "dev", "--no-policies", "--out", str(out)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OFFLINE PLAN (mock engine, no cloud) mlplat/dev")
    assert "by component:" in result.stdout and out.is_file()


def test_unknown_environment_is_a_usage_error(repo_root: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlplat.cli", "plan", "--env", "qa"],
        cwd=repo_root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "invalid choice: 'qa'" in result.stderr
