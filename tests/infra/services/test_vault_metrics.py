"""Vault's metrics need a token, and Prometheus holds one that reads metrics and nothing else."""

from __future__ import annotations

import hcl2

from infra.services import vault
from tests.support.harness import REPO, Plan
from tests.support.tls import server_values


def test_vault_metrics_are_not_served_to_anyone_without_a_token(plan: Plan) -> None:
    r, values, config = server_values(plan)
    for listener in config["listener"]:
        for telemetry in next(iter(listener.values())).get("telemetry", []):
            assert telemetry.get("unauthenticated_metrics_access", False) is False, (
                f"{r.urn}: any pod may read Vault's metrics"
            )
    monitor = values["serverTelemetry"]["serviceMonitor"]
    assert monitor["enabled"] is True, f"{r.urn}: Vault alerts need the scrape"
    credentials = monitor["authorization"]["credentials"]
    # The token reaches the Secret from Vault (VSO), seeded first with a placeholder.
    syncs = {
        s.inputs["metadata"]["name"]: s
        for s in plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret")
        if s.inputs["metadata"]["namespace"] == vault.NAMESPACE
    }
    assert credentials["name"] in syncs, (
        f"{r.urn}: nothing delivers {credentials['name']} in {vault.NAMESPACE}"
    )
    assert config["telemetry"], f"{r.urn}: no telemetry stanza, nothing to scrape"


def test_the_metrics_token_policy_reads_sys_metrics_only() -> None:
    policy = hcl2.loads((REPO / "platform" / "vault" / "prometheus-metrics.hcl").read_text())
    rules = {
        path.strip('"'): [c.strip('"') for c in rule["capabilities"]]
        for block in policy["path"]
        for path, rule in block.items()
    }
    assert rules == {"sys/metrics": ["read"]}, rules


def test_vault_service_targets_the_port_the_listener_serves(plan: Plan) -> None:
    """The listener, the Raft addresses and the NetworkPolicies follow `vault.API_PORT`; the chart's
    Service keeps its own port unless told (vault-helm `server.service.port` / `targetPort`). A
    different API_PORT with the chart's default would leave the Service pointing at a closed port."""
    from tests.support.harness import reference_chart

    r, values, config = server_values(plan)
    defaults, _ = reference_chart("vault")
    service = {**defaults["server"]["service"], **values.get("server", {}).get("service", {})}
    assert (service["port"], service["targetPort"]) == (vault.API_PORT, vault.API_PORT), f"{r.urn}: {service}"
    (listener,) = [next(iter(entry.values())) for entry in config["listener"]]
    assert listener["address"].strip('"') == f"[::]:{vault.API_PORT}", f"{r.urn}: {listener}"
