"""Alertmanager config: structure, no secrets, and the routing tree walked the way Alertmanager walks it.

amtool is not installed here, so `route_receivers` re-implements Alertmanager's dispatch: depth-first,
a route matches when all its matchers match, a matching child stops the search among its siblings
unless it has `continue: true`, and a route delivers itself only when none of its children matched.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.alertmanager import (
    CONFIG,
    WHERE,
    alert,
    fired_alerts,
    inhibited,
    parse_matcher,
    route_receivers,
)
from tests.support.obs_helpers import (
    REPO,
    iter_rules,
    load_yaml,
)

SECRET_DIR = "/etc/alertmanager/secrets/alertmanager-receivers/"
TOP_KEYS = {"global", "route", "inhibit_rules", "receivers", "templates", "time_intervals"}
ROUTE_KEYS = {
    "receiver", "group_by", "continue", "matchers", "group_wait", "group_interval",
    "repeat_interval", "routes", "mute_time_intervals", "active_time_intervals",
}  # fmt: skip
INHIBIT_KEYS = {"source_matchers", "target_matchers", "equal"}
RECEIVER_KEYS: dict[str, set[str]] = {
    "pagerduty_configs": {"routing_key_file", "send_resolved", "severity", "description", "details"},
    "slack_configs": {"api_url_file", "channel", "send_resolved", "title", "text", "username"},
    "webhook_configs": {"url_file", "send_resolved", "max_alerts"},
}
# An in-cluster webhook (the retraining receiver, Argo Events): its address is no secret, its
# bearer token is (a file of the receivers Secret, under http_config.authorization).
IN_CLUSTER_URL = re.compile(r"^http://[a-z0-9-]+\.[a-z0-9-]+\.svc\.cluster\.local:[0-9]+/")
IN_CLUSTER_WEBHOOK_KEYS = {"url", "send_resolved", "max_alerts", "http_config"}
# Fields that would hold a credential inline; their `_file` twins are the allowed form.
SECRET_FIELDS = {
    "api_url",
    "url",
    "routing_key",
    "service_key",
    "api_key",
    "password",
    "bearer_token",
    "token",
}


def _receivers(labels: dict[str, str]) -> list[str]:
    return [receiver for receiver, _ in route_receivers(CONFIG["route"], labels)]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (
            {"alertname": "ModelNoReadyReplicas", "severity": "critical", "team": "fraud"},
            ["team-pager", "team-chat"],
        ),
        ({"alertname": "ModelReplicasAtMax", "severity": "warning", "team": "fraud"}, ["team-chat"]),
        ({"alertname": "ModelSloLabelInvalid", "severity": "info", "team": "growth"}, ["team-chat"]),
        (
            {"alertname": "VaultSealed", "severity": "critical", "team": "platform"},
            ["platform-pager", "platform-chat"],
        ),
        ({"alertname": "MinioDriveNearFull", "severity": "warning", "team": "platform"}, ["platform-chat"]),
        ({"alertname": "FalcoCriticalEvent", "severity": "critical", "team": "security"}, ["security-pager"]),
        (
            {"alertname": "FalcoModelWorkloadWarning", "severity": "warning", "team": "security"},
            ["security-pager"],
        ),
        # Platform Argo CD apps carry no team, nor do the chart's own rules: the platform team's.
        ({"alertname": "ArgoCdAppOutOfSync", "severity": "warning"}, ["platform-chat"]),
        (
            {"alertname": "ArgoCdApplicationSetNotUpToDate", "severity": "warning", "team": "platform"},
            ["platform-chat"],
        ),
        (
            {"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": "kserve"},
            ["platform-chat"],
        ),
        ({"alertname": "InfoInhibitor", "severity": "none"}, ["null"]),
        # Drift and quality also start the app's retraining pipeline (README "Retraining").
        (
            {"alertname": "ModelDatasetDrift", "severity": "critical", "team": "fraud", "model": "churn-gbm"},
            ["retraining", "team-pager", "team-chat"],
        ),
        (
            {
                "alertname": "ModelQualityBelowThreshold",
                "severity": "critical",
                "team": "fraud",
                "model": "x",
            },
            ["retraining", "team-pager", "team-chat"],
        ),
        (
            {"alertname": "ModelFeatureDrift", "severity": "warning", "team": "fraud", "model": "x"},
            ["team-chat"],
        ),
    ],
)
def test_routing(labels: dict[str, str], expected: list[str]) -> None:
    assert _receivers(labels) == expected, f"{WHERE}: {labels} routed to {_receivers(labels)}"


# kube-prometheus-stack 88.5.3's own rules are critical with no `team` label (templates/prometheus/
# rules-1.14/: kubernetes-system-kubelet.yaml KubeletDown, kubernetes-storage.yaml, prometheus.yaml,
# alertmanager.rules.yaml, node-exporter.yaml), and a model app without `mlplat/team` gives its alerts
# none: each must page, not only reach a chat channel.
@pytest.mark.parametrize(
    "labels",
    [
        {"alertname": "KubeletDown", "severity": "critical", "namespace": "kube-system"},
        {"alertname": "KubePersistentVolumeFillingUp", "severity": "critical", "namespace": "monitoring"},
        {"alertname": "PrometheusRuleFailures", "severity": "critical", "namespace": "monitoring"},
        {"alertname": "AlertmanagerClusterDown", "severity": "critical", "namespace": "monitoring"},
        {"alertname": "NodeFilesystemAlmostOutOfSpace", "severity": "critical", "instance": "10.0.1.10:9100"},
        {"alertname": "ModelNoReadyReplicas", "severity": "critical", "namespace": "models-a", "isvc": "x"},
    ],
    ids=lambda labels: labels["alertname"],
)
def test_a_critical_without_a_team_pages_the_platform(labels: dict[str, str]) -> None:
    assert route_receivers(CONFIG["route"], labels) == [("platform-pager", "1h"), ("platform-chat", "4h")]


def test_watchdog_pings_the_heartbeat_check_every_minute_or_two() -> None:
    """The dead-man's switch: silence from Alertmanager must be noticed by someone outside it."""
    watchdog = alert("Watchdog", "none")
    assert route_receivers(CONFIG["route"], watchdog) == [("heartbeat", "1m")]
    (heartbeat,) = [r for r in CONFIG["receivers"] if r["name"] == "heartbeat"]
    assert heartbeat["webhook_configs"][0]["url_file"] == SECRET_DIR + "heartbeat-url"


def test_info_alerts_repeat_daily() -> None:
    routes = route_receivers(CONFIG["route"], {"alertname": "X", "severity": "info", "team": "fraud"})
    assert routes == [("team-chat", "24h")]


def test_critical_mutes_warning_of_the_same_alert_and_object_only() -> None:
    critical = alert("ModelServerHighErrorRate", "critical", namespace="models-a", isvc="x")
    warning = {**critical, "severity": "warning"}
    other_app = {**warning, "isvc": "y"}
    other_alert = {**warning, "alertname": "ModelReplicasAtMax"}
    firing = [critical, warning, other_app, other_alert]
    assert inhibited(warning, firing)
    assert not inhibited(other_app, firing)
    assert not inhibited(other_alert, firing)
    assert not inhibited(critical, firing)


def test_every_gpu_alert_names_its_node_and_gpu_so_an_inhibition_stays_on_one_gpu() -> None:
    """The GPU inhibition compares `node` and `gpu`, and a label missing on both alerts counts as equal
    (Alertmanager docs/configuration.md, inhibit_rule `equal`): a GPU alert without them would let a
    critical on one GPU mute the warnings of every GPU. Read from the alerts gpu.yaml's tests fire."""
    alerts = fired_alerts("gpu.test.yaml")
    assert alerts, "gpu.test.yaml fires no alert"
    assert [a["alertname"] for a in alerts if not {"node", "gpu"} <= a.keys()] == []


def test_gpu_critical_mutes_only_the_same_gpu_of_the_same_node() -> None:
    # GPU indices restart at 0 on every node: the node is half of a GPU's name. dcgm-exporter 4.x
    # calls its own host label `hostname`; every GPU series carries `node` from the scrape.
    hot = alert("GpuTemperatureHigh", "critical", node="n1", hostname="n1", gpu="0", team="platform")
    warm_same = {**hot, "severity": "warning"}
    warm_other_gpu = {**warm_same, "gpu": "1"}
    warm_other_node = {**warm_same, "node": "n2", "hostname": "n2"}
    assert inhibited(warm_same, [hot])
    assert not inhibited(warm_other_gpu, [hot])
    assert not inhibited(warm_other_node, [hot])


def test_no_ready_replicas_mutes_latency_of_the_same_app() -> None:
    down = {"alertname": "ModelNoReadyReplicas", "severity": "critical", "namespace": "models-a", "isvc": "x"}
    slow = {
        "alertname": "ModelLatencyP99AboveSlo",
        "severity": "warning",
        "namespace": "models-a",
        "isvc": "x",
    }
    assert inhibited(slow, [down])
    assert not inhibited({**slow, "isvc": "z"}, [down])


def test_no_ready_replicas_pages_once_not_again_for_the_gateway_errors_of_the_same_app() -> None:
    """The label sets are those the promtool cases expect: an `equal` label one side lacks would make
    the inhibition never hold (or hold for every app, when both lack it)."""
    (down,) = [a for a in fired_alerts("model-serving.test.yaml") if a["alertname"] == "ModelNoReadyReplicas"]
    failing = [
        a
        for a in fired_alerts("gateway.test.yaml")
        if a["alertname"] == "ModelVersionHighErrorRate" and a["severity"] == "critical"
    ]
    assert failing, "a promtool case must fire the gateway's critical ModelVersionHighErrorRate"
    for fired in failing:
        # The gateway's alert moved onto the app with no replica: only the values its labels hold change.
        same_app = {**fired, **{k: down[k] for k in ("namespace", "isvc", "team", "model") if k in fired}}
        other_app = {**same_app, "isvc": f"{down['isvc']}-other"}
        assert inhibited(same_app, [down]), f"{WHERE}: {down} does not mute {same_app}"
        assert not inhibited(other_app, [down]), f"{WHERE}: {down} mutes another app's {other_app}"


def _routes(route: dict[str, Any], path: str = "route") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, route)]
    for i, child in enumerate(route.get("routes", [])):
        found += _routes(child, f"{path}.routes[{i}]")
    return found


def test_structure() -> None:
    assert set(CONFIG) <= TOP_KEYS, f"{WHERE}: unknown top-level keys {sorted(set(CONFIG) - TOP_KEYS)}"
    defined = [r["name"] for r in CONFIG["receivers"]]
    assert len(defined) == len(set(defined)), f"{WHERE}: duplicate receiver names"
    assert "receiver" in CONFIG["route"], f"{WHERE}: route.receiver (the default) is required"
    used = set()
    for path, route in _routes(CONFIG["route"]):
        unknown = set(route) - ROUTE_KEYS
        assert not unknown, (
            f"{WHERE}: {path} has unknown keys {sorted(unknown)} (match/match_re are deprecated)"
        )
        for matcher in route.get("matchers", []):
            parse_matcher(matcher)
        if "receiver" in route:
            assert route["receiver"] in defined, (
                f"{WHERE}: {path}.receiver {route['receiver']!r} is not defined"
            )
            used.add(route["receiver"])
    assert set(defined) == used, f"{WHERE}: receivers never routed to: {sorted(set(defined) - used)}"
    for i, rule in enumerate(CONFIG["inhibit_rules"]):
        assert set(rule) <= INHIBIT_KEYS, (
            f"{WHERE}: inhibit_rules[{i}] unknown keys {sorted(set(rule) - INHIBIT_KEYS)}"
        )
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            parse_matcher(matcher)


def test_receivers_hold_no_secrets() -> None:
    for receiver in CONFIG["receivers"]:
        for kind, configs in receiver.items():
            if kind == "name":
                continue
            assert kind in RECEIVER_KEYS, f"{WHERE}: receiver {receiver['name']} uses unreviewed {kind}"
            for config in configs:
                where = f"{WHERE}: receiver {receiver['name']} {kind}"
                if kind == "webhook_configs" and IN_CLUSTER_URL.match(str(config.get("url", ""))):
                    assert set(config) <= IN_CLUSTER_WEBHOOK_KEYS, f"{where}: unknown keys"
                    auth = config["http_config"]["authorization"]
                    assert set(auth) == {"type", "credentials_file"}, f"{where}: inline credentials"
                    assert auth["credentials_file"].startswith(SECRET_DIR), where
                    continue
                inline = set(config) & SECRET_FIELDS
                assert not inline, f"{where}: {sorted(inline)} would hold a secret; use the *_file field"
                unknown = set(config) - RECEIVER_KEYS[kind]
                assert not unknown, f"{where}: unknown keys {sorted(unknown)}"
                files = [v for k, v in config.items() if k.endswith("_file")]
                assert files, f"{where}: no credential file configured"
                for value in files:
                    assert value.startswith(SECRET_DIR), (
                        f"{where}: {value} is not in the mounted secret {SECRET_DIR}"
                    )


def test_the_matcher_rejects_bad_syntax() -> None:
    with pytest.raises(ValueError, match="is not"):
        parse_matcher("severity=critical")


RECEIVERS_RULE = REPO / "platform" / "prometheus" / "rules" / "alerting.yaml"


def test_the_receivers_secret_is_where_the_config_reads_it() -> None:
    # The label the rule watches is exported by kube-state-metrics only when allowlisted.
    values = load_yaml(REPO / "platform" / "kube-prometheus-stack" / "values.yaml")
    assert "secrets=[mlplat/alerting-receivers]" in values["kube-state-metrics"]["metricLabelsAllowlist"]
    assert SECRET_DIR == "/etc/alertmanager/secrets/alertmanager-receivers/"
    rule = iter_rules(RECEIVERS_RULE)[0]["expr"]
    assert 'secret="alertmanager-receivers"' in rule  # pragma: allowlist secret


def test_a_served_version_never_judged_reaches_its_team_and_retrains_nothing() -> None:
    """ModelMonitoringNoVerdict as its promtool test fires it (labels from the drift job's series): the
    app's team hears it like the other model-monitoring alerts, and no pipeline starts on it."""
    alerts = [
        a for a in fired_alerts("model-monitoring.test.yaml") if a["alertname"] == "ModelMonitoringNoVerdict"
    ]
    assert alerts
    for labels in alerts:
        assert _receivers(labels) == ["team-chat"], f"{WHERE}: {labels} routed to {_receivers(labels)}"


def test_a_second_drift_alert_of_one_app_never_resends_the_first_to_the_retraining_webhook() -> None:
    """Grouped by [alertname, model], a second quality alert of one app (another metric) joined the
    first's group, which Alertmanager re-sent after group_interval with `max_alerts: 1`'s first alert:
    the Sensor's create of that already-started Workflow failed, and RetrainingTriggerFailed warned of
    a run that had started. Each alert of the retraining route is a group of its own now, so each is
    sent once, then only after repeat_interval (Alertmanager groups by the route's `group_by` labels,
    or every label for `...`: dispatch/dispatch.go getGroupLabels, v0.34.0)."""
    (route,) = [r for r in CONFIG["route"]["routes"] if r.get("receiver") == "retraining"]
    accuracy = alert(
        "ModelQualityBelowThreshold", "warning", model="churn-gbm", metric="accuracy", team="core-ml"
    )
    f1 = accuracy | {"metric": "f1"}

    def group(labels: dict[str, str]) -> dict[str, str]:
        names = route["group_by"]
        return dict(labels) if names == ["..."] else {n: labels[n] for n in names if n in labels}

    assert group(accuracy) != group(f1), f"{WHERE}: two alerts of one app share a retraining group"
    assert route["repeat_interval"] == "24h"
