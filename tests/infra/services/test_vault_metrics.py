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
