"""Inference logging rules: a logged app declares what it logs, and its traffic still arrives.

KServe's logger (`spec.predictor.logger`, also on transformers, explainers and canary predictors)
stores requests and responses. Two ways it goes wrong before anyone notices:

- MLP-LOGGING-UNDECLARED: the app has no valid field policy (`apps/<app>/base/monitoring.yaml`,
  mlplat/monitoring/contract.py; prod also refuses a personal field kept raw), or the logger has no
  `marshallerUrl`, so KServe's embedded JSON marshaller stores every field as sent
  (kserve/kserve v0.20.0 cmd/agent/main.go `--log-marshaller-url` default, pkg/logger/marshaller_json.go).
- MLP-LOGGING-PORT: the logger moves the predictor Service's targetPort to KServe's agent on 9081
  (kserve v0.20.0 pkg/controller/v1beta1/inferenceservice/reconcilers/service/service_reconciler.go
  L167-172); in a default-deny namespace no inference arrives unless a NetworkPolicy admits 9081
  from outside the namespace. Only a rule that names the port counts: network-isolation admits
  Prometheus on every port, which would otherwise hide that the gateway cannot reach the agent.

Not checked (yet): that the peers admitted on 9081 are exactly those admitted on the model's port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlplat.findings import Finding, RenderedDoc
from mlplat.monitoring import contract as contract_file
from mlplat.validation.render import SourceIndex
from mlplat.validation.targets import Target

UNDECLARED = "MLP-LOGGING-UNDECLARED"
PORT = "MLP-LOGGING-PORT"
AGENT_PORT = 9081  # kserve v0.20.0 pkg/constants/constants.go InferenceServiceDefaultAgentPort
COMPONENTS = ("predictor", "transformer", "explainer")


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def loggers(isvc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, logger spec) of every component of an InferenceService that logs."""
    spec = _map(isvc.get("spec"))
    for name in COMPONENTS:
        logger = _map(spec.get(name)).get("logger")
        if isinstance(logger, dict):
            yield f"spec/{name}/logger", logger
    canaries = spec.get("canary")
    for i, canary in enumerate(canaries if isinstance(canaries, list) else []):
        logger = _map(_map(canary).get("predictor")).get("logger")
        if isinstance(logger, dict):
            yield f"spec/canary/[{i}]/predictor/logger", logger


def check(root: Path, chosen: list[Target], docs: list[RenderedDoc], index: SourceIndex) -> list[Finding]:
    """Findings of both rules for every app target that renders a logging InferenceService."""
    apps = {t.rel: t.app for t in chosen if t.app}
    by_target: dict[tuple[str, str | None], list[RenderedDoc]] = {}
    for doc in docs:
        by_target.setdefault((doc.target, doc.env), []).append(doc)
    contracts: dict[str, contract_file.MonitoringContract | contract_file.ContractError] = {}
    findings: list[Finding] = []
    for doc in docs:
        app = apps.get(doc.target)
        if app is None or doc.doc.get("kind") != "InferenceService":
            continue
        logged = list(loggers(doc.doc))
        if not logged:
            continue
        if app not in contracts:  # one read per app, however many environments render it
            try:
                contracts[app] = contract_file.load(app, root)
            except contract_file.ContractError as err:
                contracts[app] = err
        findings += _undeclared(app, contracts[app], doc, logged, index)
        findings += _port(doc, by_target[(doc.target, doc.env)], index)
    return findings


def _undeclared(
    app: str,
    contract: contract_file.MonitoringContract | contract_file.ContractError,
    doc: RenderedDoc,
    logged: list[tuple[str, dict[str, Any]]],
    index: SourceIndex,
) -> list[Finding]:
    found = []
    error: contract_file.ContractError | None = None
    if isinstance(contract, contract_file.ContractError):
        error = contract
    elif doc.env:
        try:
            contract.require_allowed_in(doc.env, contract_file.where(app))
        except contract_file.ContractError as err:
            error = err
    if error is not None:
        found.append(
            Finding(
                doc.source_file, doc.ref, UNDECLARED,
                f"the logger is on but the app does not declare what its logs may hold: {error}",
                f"write apps/{app}/base/monitoring.yaml (fields, personal, features; README "
                "'Model monitoring'), or drop the logger",
                doc.env, index.line(doc), logged[0][0],
            )
        )  # fmt: skip
    for path, logger in logged:
        if not logger.get("marshallerUrl"):
            found.append(
                Finding(
                    doc.source_file, doc.ref, UNDECLARED,
                    "the logger has no marshallerUrl: KServe's built-in marshaller stores every field "
                    "as sent, whatever monitoring.yaml says",
                    "include apps/components/inference-logging (the app's privacy marshaller on loopback)",
                    doc.env, index.line(doc), f"{path}/marshallerUrl",
                )
            )  # fmt: skip
    return found


def _port(doc: RenderedDoc, mine: list[RenderedDoc], index: SourceIndex) -> list[Finding]:
    namespace = _map(doc.doc.get("metadata")).get("namespace")
    policies = [
        _map(d.doc.get("spec"))
        for d in mine
        if d.doc.get("kind") == "NetworkPolicy" and _map(d.doc.get("metadata")).get("namespace") == namespace
    ]
    if not policies or any(_admits_agent_port(p) for p in policies):
        return []  # no policy at all: nothing is isolated (MLP-NETPOL-DEFAULT-DENY says so)
    return [
        Finding(
            doc.source_file, doc.ref, PORT,
            f"the logger moves inference traffic to KServe's agent on port {AGENT_PORT}, which no "
            f"NetworkPolicy of namespace {namespace} admits from outside it: every request would be dropped",
            "include apps/components/inference-logging, which admits the gateway and Prometheus on 9081",
            doc.env, index.line(doc), "spec/predictor/logger",
        )
    ]  # fmt: skip


def _admits_agent_port(spec: dict[str, Any]) -> bool:
    """An ingress rule of this policy names TCP 9081 and admits some peer outside the namespace."""
    if "Ingress" not in (spec.get("policyTypes") or ["Ingress"]):
        return False
    rules = spec.get("ingress")
    for rule in rules if isinstance(rules, list) else []:
        rule = _map(rule)
        peers = rule.get("from")
        outside = not peers or any(
            _outside(_map(peer)) for peer in (peers if isinstance(peers, list) else [])
        )
        if outside and _port_listed(rule.get("ports")):
            return True
    return False


def _outside(peer: dict[str, Any]) -> bool:
    """A peer that can be outside the namespace: a namespaceSelector or an ipBlock (not a bare podSelector)."""
    return "namespaceSelector" in peer or "ipBlock" in peer


def _port_listed(ports: Any) -> bool:
    for port in ports if isinstance(ports, list) else []:
        port = _map(port)
        if port.get("protocol", "TCP") != "TCP":
            continue
        number, end = port.get("port"), port.get("endPort")
        if number is None or number == AGENT_PORT:
            return True
        if isinstance(number, int) and isinstance(end, int) and number <= AGENT_PORT <= end:
            return True
    return False
