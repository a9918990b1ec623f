"""MLP-LOGGING-UNDECLARED and MLP-LOGGING-PORT, each tried on a copy of this repository: the logged
apps pass as they are, and each way of breaking them is one finding with its exact rule."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.validate_helpers import copy_repo, rules, run_json

APP = "apps/churn-gbm"
COMPONENT = "apps/components/inference-logging"


def logging_findings(report: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (f["rule"], f["resource"]) for f in report["findings"] if f["rule"].startswith("MLP-LOGGING-")
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_logged_apps_that_declare_their_fields_and_admit_the_agent_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env: str
) -> None:
    repo = copy_repo(tmp_path)
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", env)
    assert logging_findings(report) == [], report["findings"]
    assert code == 0, report["findings"]


def test_a_logged_app_without_a_field_policy_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    # Logging on, but the ConfigMap is built from an empty file instead of the contract.
    (repo / APP / "base" / "monitoring.yaml").unlink()
    (repo / APP / "base" / "policy.yaml").write_text("{}\n")
    edit(
        repo / APP / "base" / "kustomization.yaml",
        "files: [monitoring.yaml]",
        "files: [monitoring.yaml=policy.yaml]",
    )
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "dev")
    assert code == 1
    assert logging_findings(report) == [
        ("MLP-LOGGING-UNDECLARED", "InferenceService/models-growth/churn-gbm")
    ]


def test_prod_refuses_to_log_a_personal_field_kept_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    edit(repo / APP / "base" / "monitoring.yaml", "customer_id: hash", "customer_id: keep")
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "prod")
    assert code == 1
    (finding,) = [f for f in report["findings"] if f["rule"] == "MLP-LOGGING-UNDECLARED"]
    assert "personal field 'customer_id' is kept raw in prod" in finding["message"], finding


def test_a_logger_without_the_privacy_marshaller_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    edit(
        repo / COMPONENT / "kustomization.yaml",
        "          marshallerUrl: http://127.0.0.1:9084/marshal\n",
        "",
    )
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "dev")
    assert code == 1
    assert logging_findings(report) == [
        ("MLP-LOGGING-UNDECLARED", "InferenceService/models-growth/churn-gbm")
    ]


def test_a_logged_app_whose_policies_drop_the_agent_port_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    edit(repo / COMPONENT / "kustomization.yaml", "  - networkpolicy.yaml\n", "")
    edit(
        repo / COMPONENT / "kustomization.yaml",
        "      - select:\n          kind: NetworkPolicy\n          name: allow-ingress-to-inference-logger\n"
        "        fieldPaths: [metadata.namespace]\n        options: {create: true}\n",
        "",
    )
    shutil.rmtree(repo / "apps" / "llm-chat")  # not logged; keeps the run short
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "dev")
    assert code == 1
    assert logging_findings(report) == [("MLP-LOGGING-PORT", "InferenceService/models-growth/churn-gbm")]
    assert "MLP-LOGGING-UNDECLARED" not in rules(report)
