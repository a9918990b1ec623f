"""Per-version metrics from the gateway: the HTTPRoute layout the rules read, and the canary dashboard.

Envoy Gateway names an Envoy cluster after the position of a backendRef in the app's HTTPRoute
(`httproute/<ns>/<route>/rule/<i>/backend/<j>`, v1.9.0 internal/gatewayapi/helpers.go), and
platform/prometheus/rules/gateway.yaml turns backend 0 into `variant="stable"` and backend 1 into
`variant="canary"`. These tests hold the three sides together: every rendered route keeps that
layout, the dashboard's queries return both variants from the series Envoy serves (so renaming a
rule or a label breaks a test, not the dashboard), and the dashboard's thresholds are the alert's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.alertmanager import alert, fired_alerts, inhibited, route_receivers
from tests.support.obs_helpers import (
    ALERTMANAGER_CONFIG,
    DASHBOARDS_DIR,
    PROMTOOL_TESTS_DIR,
    REPO,
    RULES_DIR,
    all_rules,
    as_promql,
    extract_rule_file,
    load_yaml,
    rel,
    run_promtool,
)

CANARY_DASHBOARD = DASHBOARDS_DIR / "model-canary.json"
GATEWAY_RULES = RULES_DIR / "gateway.yaml"
OVERLAYS = sorted(p for p in (REPO / "apps").glob("*/overlays/*") if (p / "kustomization.yaml").is_file())


def predictor_service(isvc: str, predictor_name: str | None) -> str:
    """The predictor Service KServe v0.20.0 creates (pkg/constants/constants.go PredictorServiceName):
    `<isvc>-predictor`, or `<isvc>-<name>-predictor` for a named predictor such as a canary `v<N>`."""
    return f"{isvc}-{predictor_name}-predictor" if predictor_name else f"{isvc}-predictor"


def route_layout_problems(route: dict[str, Any], isvc: dict[str, Any]) -> list[str]:
    """Where the route would make the gateway rules count one version as the other."""
    name = isvc["metadata"]["name"]
    where = f"HTTPRoute {route['metadata'].get('namespace')}/{route['metadata']['name']}"
    problems = []
    if route["metadata"]["name"] != name:
        problems.append(f"{where}: must be named after its InferenceService {name!r} (the rules' isvc label)")
    canaries = isvc["spec"].get("canary") or []
    if len(canaries) > 1:
        problems.append(f"{where}: {len(canaries)} canaries; the rules know one, backend 1")
    expected = [predictor_service(name, isvc["spec"]["predictor"].get("name"))] + [
        predictor_service(name, c["predictor"]["name"]) for c in canaries[:1]
    ]
    for i, rule in enumerate(route["spec"].get("rules", [])):
        refs = rule.get("backendRefs") or []
        names = [ref.get("name") for ref in refs]
        if names != expected[: len(names)]:
            problems.append(
                f"{where} rule {i}: backendRefs {names}, the rules need {expected} in this order or its "
                "first entry alone (backend 0 is counted as stable, 1 as canary; weight an unused one 0)"
            )
        unfiltered = [ref.get("name") for ref in refs if not ref.get("filters")]
        if len(refs) > 1 and unfiltered:
            problems.append(
                f"{where} rule {i}: backendRefs {unfiltered} carry no filters of their own, so Envoy Gateway "
                "puts the rule's backends in one cluster and the versions cannot be told apart"
            )
    return problems


def _ref(service: str, version: str) -> dict[str, Any]:
    header = {"name": "x-mlplat-model-version", "value": version}
    return {
        "name": service,
        "port": 80,
        "weight": 50,
        "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [header]}}],
    }


ISVC = {
    "metadata": {"name": "fraud", "namespace": "models-fraud"},
    "spec": {"predictor": {}, "canary": [{"predictor": {"name": "v4"}, "trafficPercent": 10}]},
}
STABLE, CANARY = _ref("fraud-predictor", "3"), _ref("fraud-v4-predictor", "4")


def _route(*rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "fraud", "namespace": "models-fraud"},
        "spec": {"rules": [{"backendRefs": refs} for refs in rules]},
    }


def test_a_route_with_stable_then_canary_in_every_rule_is_read_as_it_is() -> None:
    ab_rules = ([{**STABLE, "weight": 0}, CANARY], [STABLE])
    assert route_layout_problems(_route([STABLE, CANARY], *ab_rules), ISVC) == []


def test_a_canary_listed_first_would_be_counted_as_stable() -> None:
    (problem,) = route_layout_problems(_route([CANARY, STABLE]), ISVC)
    assert "rule 0: backendRefs ['fraud-v4-predictor', 'fraud-predictor']" in problem


def test_an_ab_rule_with_only_the_canary_would_be_counted_as_stable() -> None:
    (problem,) = route_layout_problems(_route([STABLE, CANARY], [CANARY]), ISVC)
    assert "rule 1: backendRefs ['fraud-v4-predictor']" in problem


def test_backends_without_their_own_filters_would_merge_both_versions() -> None:
    bare = [{k: v for k, v in ref.items() if k != "filters"} for ref in (STABLE, CANARY)]
    (problem,) = route_layout_problems(_route(bare), ISVC)
    assert "carry no filters of their own" in problem


def test_a_route_not_named_after_its_inferenceservice_loses_the_app() -> None:
    route = _route([STABLE, CANARY])
    route["metadata"]["name"] = "fraud-route"
    assert any(
        "must be named after its InferenceService 'fraud'" in p for p in route_layout_problems(route, ISVC)
    )


def _rendered(overlay: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (for kubectl kustomize) is not on the PATH"
    result = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"kubectl kustomize {rel(overlay)}: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: rel(p))
def test_rendered_routes_keep_the_layout_the_gateway_rules_read(overlay: Path) -> None:
    docs = _rendered(overlay)
    isvcs = {
        (d["metadata"].get("namespace"), d["metadata"]["name"]): d
        for d in docs
        if d["kind"] == "InferenceService"
    }
    problems = []
    for route in (d for d in docs if d["kind"] == "HTTPRoute"):
        key = (route["metadata"].get("namespace"), route["metadata"]["name"])
        if key not in isvcs:
            problems.append(
                f"HTTPRoute {key[0]}/{key[1]}: no InferenceService of that name in {rel(overlay)}"
            )
            continue
        problems += route_layout_problems(route, isvcs[key])
    assert not problems, "\n".join(problems)


# --- the dashboard against the series Envoy serves ----------------------------------------------
def _envoy_case() -> dict[str, Any]:
    """The promtool case that feeds both variants' responses and latency, as Envoy exports them (the one
    with a canary's latency: the streaming case has stable versions only)."""
    cases = load_yaml(PROMTOOL_TESTS_DIR / "gateway.test.yaml")["tests"]
    (case,) = [
        c
        for c in cases
        if any(
            "upstream_rq_time_bucket" in s["series"] and "/backend/1" in s["series"]
            for s in c["input_series"]
        )
    ]
    return case


def _panel_targets() -> list[dict[str, Any]]:
    dashboard = json.loads(CANARY_DASHBOARD.read_text())
    return [
        t for p in dashboard["panels"] for t in p.get("targets", []) if not t["expr"].startswith("ALERTS")
    ]


def test_canary_dashboard_panels_show_both_versions_from_envoy_series(tmp_path: Path) -> None:
    """Each panel query, as an alert `count by (variant) (query)`, must fire for stable and canary (or
    once, for a query that compares them) on the series Envoy serves: a renamed recording rule or label
    empties the panel and fails here."""
    targets = _panel_targets()
    assert targets, f"{rel(CANARY_DASHBOARD)} has no panel queries"
    rules, expected = [], []
    for i, target in enumerate(targets):
        name = f"DashboardQuery{i}"
        rules.append({"alert": name, "expr": f"count by (variant) ({as_promql(target['expr'])})"})
        per_variant = "{{variant}}" in target.get("legendFormat", "")
        alerts = [{"exp_labels": {"variant": v}} for v in ("canary", "stable")] if per_variant else [{}]
        expected.append({"alertname": name, "eval_time": "10m", "exp_alerts": alerts})
    queries = tmp_path / "dashboard.yaml"
    queries.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    case = _envoy_case()
    test = {
        "rule_files": [
            str(extract_rule_file(GATEWAY_RULES, tmp_path)),
            str(extract_rule_file(RULES_DIR / "model-serving.yaml", tmp_path)),
            str(queries),
        ],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": case["interval"], "input_series": case["input_series"], "alert_rule_test": expected}
        ],
    }
    test_file = tmp_path / "dashboard.test.yaml"
    test_file.write_text(yaml.safe_dump(test, sort_keys=False))
    result = run_promtool("test", "rules", str(test_file))
    shown = "\n".join(f"DashboardQuery{i}: {t['expr']}" for i, t in enumerate(targets))
    assert result.returncode == 0, f"{rel(CANARY_DASHBOARD)} panels without data:\n{result.stdout}{shown}"


def _red_threshold(title: str) -> float:
    dashboard = json.loads(CANARY_DASHBOARD.read_text())
    (panel,) = [p for p in dashboard["panels"] if p["title"] == title]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    (red,) = [s["value"] for s in steps if s["color"] == "red"]
    return float(red)


def test_dashboard_and_readme_state_the_thresholds_the_canary_alert_uses() -> None:
    (rule,) = [r for _, r in all_rules() if r.get("alert") == "ModelCanaryRegressed"]
    margin = re.search(r'ratio_rate5m\{variant="stable"\} \+ ([0-9.]+)\)', rule["expr"])
    factor = re.search(
        r'\(([0-9.]+) \* mlplat:gateway_request_duration_seconds:p99\{variant="stable"\}\)', rule["expr"]
    )
    assert margin and factor, "ModelCanaryRegressed no longer has the form this test reads; update both"
    assert _red_threshold("Canary 5xx ratio minus stable's") == float(margin.group(1))
    assert _red_threshold("Canary p99 / stable p99") == float(factor.group(1))
    readme = REPO / "apps" / "README.md"
    (_, section) = readme.read_text().split("\n## Deciding a canary\n", 1)
    points = f"**+ {float(margin.group(1)) * 100:g} percentage point**"
    assert points in section, f"{rel(readme)} 'Deciding a canary' must say {points}"
    times = f"**{factor.group(1)} \N{MULTIPLICATION SIGN} stable's p99**"
    assert times in section, f"{rel(readme)} 'Deciding a canary' must say {times}"


# --- who hears of it ----------------------------------------------------------------------------
def test_gateway_alerts_reach_the_apps_team_not_the_platform() -> None:
    fired = fired_alerts("gateway.test.yaml")
    assert {a["alertname"] for a in fired} == {
        r["alert"] for _, r in all_rules() if "alert" in r and "mlplat:gateway_" in r["expr"]
    }, "every gateway alert must fire in a promtool case"
    for labels in fired:
        receivers = [
            receiver for receiver, _ in route_receivers(load_yaml(ALERTMANAGER_CONFIG)["route"], labels)
        ]
        expected = ["team-pager", "team-chat"] if labels["severity"] == "critical" else ["team-chat"]
        assert labels.get("team") and receivers == expected, f"{labels} routed to {receivers}"


def test_a_failing_canary_does_not_mute_the_stable_versions_warning() -> None:
    stable = alert(
        "ModelVersionHighErrorRate", "warning", namespace="models-fraud", isvc="fraud", variant="stable"
    )
    canary_page = {**stable, "severity": "critical", "variant": "canary"}
    canary_warning = {**canary_page, "severity": "warning"}
    assert not inhibited(stable, [canary_page])
    assert inhibited(canary_warning, [canary_page])
