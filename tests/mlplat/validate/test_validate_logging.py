"""MLP-LOGGING-UNDECLARED and MLP-LOGGING-PORT, each tried on a copy of this repository: the logged
apps pass as they are, and each way of breaking them is one finding with its exact rule."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.validate_helpers import copy_repo, edit, rules, run_json

APP = "apps/churn-gbm"
COMPONENT = "apps/components/inference-logging"
CHURN = "InferenceService/models-growth/churn-gbm"


def logging_findings(report: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (f["rule"], f["resource"]) for f in report["findings"] if f["rule"].startswith("MLP-LOGGING-")
    )


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_logged_apps_that_declare_their_fields_and_admit_the_agent_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env: str
) -> None:
    repo = copy_repo(tmp_path)
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", env)
    assert logging_findings(report) == [], report["findings"]
    assert code == 0, report["findings"]


def _without_a_field_policy(repo: Path) -> None:
    """Logging on, but the ConfigMap is built from an empty file instead of the contract."""
    (repo / APP / "base" / "monitoring.yaml").unlink()
    (repo / APP / "base" / "policy.yaml").write_text("{}\n")
    edit(
        repo / APP / "base" / "kustomization.yaml",
        "files: [monitoring.yaml]",
        "files: [monitoring.yaml=policy.yaml]",
    )


def _without_the_privacy_marshaller(repo: Path) -> None:
    """The logger posts payloads as they are: the marshaller that hashes and drops fields is gone."""
    edit(
        repo / COMPONENT / "kustomization.yaml",
        "          marshallerUrl: http://127.0.0.1:9084/marshal\n",
        "",
    )


def _without_the_agents_network_policy(repo: Path) -> None:
    """The component's NetworkPolicy admitting traffic to the agent, and the replacement that places it."""
    edit(repo / COMPONENT / "kustomization.yaml", "  - networkpolicy.yaml\n", "")
    edit(
        repo / COMPONENT / "kustomization.yaml",
        "      - select:\n          kind: NetworkPolicy\n          name: allow-ingress-to-inference-logger\n"
        "        fieldPaths: [metadata.namespace]\n        options: {create: true}\n",
        "",
    )


@pytest.mark.parametrize(
    "breaks",
    [
        pytest.param(_without_a_field_policy, id="logged-app-without-a-field-policy"),
        pytest.param(_without_the_privacy_marshaller, id="logger-without-the-privacy-marshaller"),
    ],
)
def test_a_logged_app_without_its_privacy_guard_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], breaks: Callable[[Path], None]
) -> None:
    repo = copy_repo(tmp_path)
    breaks(repo)
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "dev")
    assert code == 1
    assert logging_findings(report) == [("MLP-LOGGING-UNDECLARED", CHURN)]


def test_prod_refuses_to_log_a_personal_field_kept_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    edit(repo / APP / "base" / "monitoring.yaml", "customer_id: hash", "customer_id: keep")
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "prod")
    assert code == 1
    (finding,) = [f for f in report["findings"] if f["rule"] == "MLP-LOGGING-UNDECLARED"]
    assert "personal field 'customer_id' is kept raw in prod" in finding["message"], finding


def test_a_logged_app_whose_policies_drop_the_agent_port_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    _without_the_agents_network_policy(repo)
    shutil.rmtree(repo / "apps" / "llm-chat")  # not logged; keeps the run short
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "dev")
    assert code == 1
    assert logging_findings(report) == [("MLP-LOGGING-PORT", CHURN)]
    assert "MLP-LOGGING-UNDECLARED" not in rules(report)


AGENT_PORT_LINE = "        - {protocol: TCP, port: 9081}\n"


@pytest.mark.parametrize(
    ("ports", "admitted"),
    [
        ("        - {port: 9081}\n", True),  # protocol defaults to TCP
        ("        - {protocol: TCP}\n", True),  # no port: every port
        (
            "        - {protocol: TCP, port: 9000, endPort: 9081}\n",
            True,
        ),  # a range ending on the agent's port
        ("        - {protocol: TCP, port: 9081, endPort: 9090}\n", True),  # and one starting on it
        ("        - {protocol: TCP, port: 9000, endPort: 9090}\n", True),  # and one around it
        ("        - {protocol: UDP, port: 9081}\n", False),
        ("        - {protocol: TCP, port: 9000, endPort: 9080}\n", False),  # a range ending one short
        ("        - {protocol: TCP, port: 9082, endPort: 9090}\n", False),  # and one starting one past
        ("        - {protocol: UDP, port: 9081}\n        - {protocol: TCP, port: 9081}\n", True),
    ],
    ids=[
        "tcp-by-default",
        "every-port",
        "range-ending-on-9081",
        "range-starting-on-9081",
        "range-around-9081",
        "udp",
        "range-ending-one-short",
        "range-starting-one-past",
        "udp-then-tcp",
    ],
)
def test_only_a_rule_admitting_tcp_9081_lets_logged_traffic_reach_the_agent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ports: str, admitted: bool
) -> None:
    """NetworkPolicy ports (networking.k8s.io/v1): protocol defaults to TCP, no port means every port,
    endPort closes a range that includes both ends."""
    repo = copy_repo(tmp_path)
    edit(repo / COMPONENT / "networkpolicy.yaml", AGENT_PORT_LINE, ports)
    shutil.rmtree(repo / "apps" / "llm-chat")  # not logged; keeps the run short
    _, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "dev")
    expected = [] if admitted else [("MLP-LOGGING-PORT", CHURN)]
    assert logging_findings(report) == expected, report["findings"]


def test_a_rule_admitting_9081_only_from_inside_the_namespace_does_not_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gateway and Prometheus are outside the app's namespace: a bare podSelector peer admits neither."""
    repo = copy_repo(tmp_path)
    path = repo / COMPONENT / "networkpolicy.yaml"
    text = path.read_text()
    start = text.index(
        "    - from:\n        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: envoy-gateway-system"
    )
    end = text.index("      ports:\n" + AGENT_PORT_LINE)
    path.write_text(text[:start] + "    - from:\n        - podSelector: {}\n" + text[end:])
    shutil.rmtree(repo / "apps" / "llm-chat")
    _, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "dev")
    assert logging_findings(report) == [("MLP-LOGGING-PORT", CHURN)]


def test_a_logging_inference_service_outside_an_app_is_not_judged_as_an_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest validated on its own belongs to no app: there is no monitoring.yaml to hold it to."""
    manifest = tmp_path / "loose" / "isvc.yaml"
    manifest.parent.mkdir()
    manifest.write_text(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        "metadata: {name: loose, namespace: models-x}\n"
        "spec:\n  predictor:\n    logger: {mode: all}\n"
        "    model: {modelFormat: {name: mlflow}, storageUri: s3://mlplat-models/loose/1}\n"
    )
    _, report = run_json(capsys, str(manifest.parent), "--env", "dev")
    assert logging_findings(report) == [], report


def test_a_namespace_without_any_network_policy_is_default_denys_finding_not_the_agents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no NetworkPolicy at all nothing is isolated, so the agent's port is reachable: the missing
    isolation is MLP-NETPOL-DEFAULT-DENY's to report, and the app's other objects are no policies."""
    repo = copy_repo(tmp_path)
    _without_the_agents_network_policy(repo)
    edit(repo / APP / "base" / "kustomization.yaml", "  - ../../components/network-isolation\n", "")
    shutil.rmtree(repo / "apps" / "llm-chat")
    _, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "dev")
    assert logging_findings(report) == [], report["findings"]
    assert "MLP-NETPOL-DEFAULT-DENY" in rules(report), report["findings"]
