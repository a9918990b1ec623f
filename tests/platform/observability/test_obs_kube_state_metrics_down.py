"""KubeStateMetricsDown's runbook names every alert that goes blind while kube-state-metrics is down.

On-call reads that list to know which alerts to check by hand. Which alerts belong in it follows from
the rules (an alert reads a kube-state-metrics series, directly or through recording rules) and the
metrics catalog (which exporter serves each series), so a rule that starts reading Kubernetes objects
fails here until the runbook names it.
"""

from __future__ import annotations

import re

from tests.support.obs_helpers import ALERTS_DOC, CATALOG, all_rules, load_yaml, metric_names, rel

ALERT = "KubeStateMetricsDown"


def kube_state_metrics_series() -> set[str]:
    return {m["name"] for m in load_yaml(CATALOG)["metrics"] if m["source"] == "kube-state-metrics"}


def alerts_reading(series: set[str]) -> set[str]:
    """Alerts whose expression reads one of `series`, following recording rules to what they read."""
    records = {rule["record"]: rule["expr"] for _, rule in all_rules() if "record" in rule}

    def reads(expr: str) -> bool:
        names = metric_names(expr)
        return bool(names & series) or any(reads(records[name]) for name in names & records.keys())

    return {rule["alert"] for _, rule in all_rules() if "alert" in rule and reads(rule["expr"])}


def runbook_section(alert: str) -> str:
    match = re.search(rf"^### {alert}\n(.*?)(?=^##)", ALERTS_DOC.read_text(), flags=re.MULTILINE | re.DOTALL)
    assert match, f"{rel(ALERTS_DOC)} has no section ### {alert}"
    return match.group(1)


def test_kube_state_metrics_down_runbook_misses_no_blinded_alert() -> None:
    blinded = alerts_reading(kube_state_metrics_series())
    assert "MlflowDown" in blinded, "the dependency walk found nothing: the catalog or the rules moved"
    named = set(re.findall(r"`(\w+)`", runbook_section(ALERT)))
    missing = sorted(blinded - named)
    assert not missing, f"{rel(ALERTS_DOC)} section {ALERT} does not name the alerts it silences: {missing}"
