"""Grafana dashboards are provisionable and their PromQL parses; every metric read anywhere is catalogued.

Dashboard queries are checked by promtool too: with Grafana's variables replaced by sample values,
each query becomes a recording rule in a temporary file that `promtool check rules` must accept.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.services import gpu_prices
from mlplat.monitoring import metrics as monitoring_metrics
from tests.support.obs_helpers import (
    CATALOG,
    DASHBOARDS_DIR,
    PROMTOOL_TESTS_DIR,
    all_rules,
    as_promql,
    load_yaml,
    metric_names,
    rel,
    run_promtool,
)

DASHBOARDS = sorted(DASHBOARDS_DIR.glob("*.json"))
SOURCES = {
    "kserve-model-server", "mlserver", "kube-state-metrics", "dcgm-exporter", "prometheus", "mlflow",
    "argocd-application-controller", "argocd-applicationset-controller", "vault", "minio", "falcosidekick", "mlplat-drift-job",
    "envoy-gateway-proxy", "keda-operator", "mlplat-program", "argo-workflows-controller",
    "argo-events-sensor",
}  # fmt: skip


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise AssertionError(f"{rel(path)}: not valid JSON: {err}") from None


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows
    return panels


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Panel target expressions, and the metric selector of each `label_values(...)` variable."""
    queries = [t["expr"] for p in _panels(dashboard) for t in p.get("targets", []) if t.get("expr")]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query.strip())
        assert match, (
            f"{dashboard['uid']}: variable {variable['name']} query {query!r} is not label_values(...)"
        )
        queries.append(match.group(1))
    return queries


def _catalog() -> dict[str, dict[str, Any]]:
    """The catalog file, plus the drift job's metrics (mlplat/monitoring/metrics.py is their one owner) and
    the GPU-hour price per pool the Pulumi program records (infra/services/gpu_prices.py, its owner)."""
    owned = [
        {"name": m.name, "source": "mlplat-drift-job", "type": "gauge", "help": m.help}
        for m in monitoring_metrics.ALL
    ]
    owned.append(
        {
            "name": gpu_prices.PRICE_SERIES,
            "source": "mlplat-program",
            "type": "gauge",
            "help": "USD per hour of one GPU of each GPU pool, from the stack file and the price table.",
        }
    )
    entries = load_yaml(CATALOG)["metrics"] + owned
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"{rel(CATALOG)}: duplicate entries"
    return {e["name"]: e for e in entries}


def test_there_are_three_dashboards() -> None:
    assert {p.stem for p in DASHBOARDS} >= {"model-serving", "gpu-fleet", "platform-health"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_provisionable(path: Path) -> None:
    dashboard = _load(path)
    where = rel(path)
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard.get("uid", "")), (
        f"{where}: uid must be 1-40 of [a-z0-9-]"
    )
    assert dashboard.get("title"), f"{where}: title missing"
    assert "id" not in dashboard or dashboard["id"] is None, f"{where}: drop the instance-specific `id`"
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    assert "datasource" in variables, f"{where}: needs a `datasource` variable, no hard-coded datasource"
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids)), f"{where}: duplicate panel ids"
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            assert target.get("datasource", {}).get("uid") == "${datasource}", (
                f"{where}: panel {panel['title']!r} must use the ${{datasource}} variable"
            )
        used = set(re.findall(r"\$(\w+)", json.dumps(panel.get("targets", []))))
        unknown = {v for v in used - variables if not v.startswith("__") and not v.isdigit()}
        assert not unknown, f"{where}: panel {panel['title']!r} uses undefined variables {sorted(unknown)}"


def test_dashboard_uids_are_unique() -> None:
    uids = [_load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids)), f"duplicate dashboard uids: {uids}"


def test_dashboard_queries_parse_with_promtool(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:{path.stem.replace('-', '_')}:q{i}", "expr": as_promql(query)}
        for path in DASHBOARDS
        for i, query in enumerate(dashboard_queries(_load(path)))
    ]
    rule_file = tmp_path / "dashboard-queries.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = run_promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, (
        f"dashboard queries that are not valid PromQL:\n{result.stdout}{result.stderr}"
    )


def test_catalog_entries_are_described() -> None:
    for name, entry in _catalog().items():
        assert entry.get("source") in SOURCES, (
            f"{rel(CATALOG)}: {name} source {entry.get('source')!r} not in {SOURCES}"
        )
        assert entry.get("type") in {"counter", "gauge", "histogram", "summary"}, (
            f"{rel(CATALOG)}: {name} type"
        )
        assert entry.get("help"), f"{rel(CATALOG)}: {name} needs help text"


def _used_metrics() -> dict[str, set[str]]:
    """metric name -> where it is read (rule or dashboard)."""
    used: dict[str, set[str]] = {}
    for path, rule in all_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"{rel(path)}:{rule.get('alert') or rule.get('record')}")
    for path in DASHBOARDS:
        for query in dashboard_queries(_load(path)):
            for name in metric_names(query):
                used.setdefault(name, set()).add(rel(path))
    return used


def test_every_metric_read_is_in_the_catalog() -> None:
    recorded = {rule["record"] for _, rule in all_rules() if "record" in rule}
    missing = {n: sorted(w) for n, w in _used_metrics().items() if n not in _catalog() and n not in recorded}
    assert not missing, f"metrics read but not in {rel(CATALOG)}: {missing}"


def test_every_catalog_entry_is_used() -> None:
    stale = sorted(set(_catalog()) - set(_used_metrics()))
    assert not stale, f"{rel(CATALOG)} lists metrics nothing reads: {stale}"


def test_every_recording_rule_is_used() -> None:
    recorded = {rule["record"] for _, rule in all_rules() if "record" in rule}
    unused = sorted(recorded - set(_used_metrics()))
    assert not unused, f"recording rules no alert or dashboard reads: {unused}"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            'sum by (le) (rate(a_bucket{job="x", le!="1"}[5m])) / on (pod) group_left (team) b',
            {"a_bucket", "b"},
        ),
        ('label_replace(c, "node", "$1", "Hostname", "(.+)") > bool 1e3 or d offset 5m', {"c", "d"}),
        ('histogram_quantile(0.99, mlplat:x:rate5m{isvc=~"$isvc"}) * $gpu_hour_price', {"mlplat:x:rate5m"}),
        ("sum without (instance) (up) unless ignoring (job) absent(e)", {"up", "e"}),
    ],
)
def test_metric_name_extraction(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_drift_metrics_in_rule_tests_are_the_ones_the_job_publishes() -> None:
    # The promtool tests feed the rules the series the job would push; a renamed metric on either side
    # must fail here rather than leave an alert that can never fire.
    published = {m.name for m in monitoring_metrics.ALL}
    tested = set(
        re.findall(r"\b(mlplat_model_\w+)\{", (PROMTOOL_TESTS_DIR / "model-monitoring.test.yaml").read_text())
    )
    assert tested and tested <= published, sorted(tested - published)
    read_by_rules = {
        n for _, rule in all_rules() for n in metric_names(rule["expr"]) if n.startswith("mlplat_model_")
    }
    assert read_by_rules <= published, sorted(read_by_rules - published)


def test_quality_alert_waits_for_as_many_labels_as_the_job_reports_on() -> None:
    (rule,) = [r for _, r in all_rules() if r.get("alert") == "ModelQualityBelowThreshold"]
    assert f"mlplat_model_quality_labelled_rows >= {monitoring_metrics.MIN_LABELLED_ROWS}" in rule["expr"]


def test_every_series_the_drift_job_publishes_is_on_the_model_monitoring_dashboard() -> None:
    """A version the job cannot judge (no reference data, too few rows) had no panel: on-call saw its
    drift and quality panels empty with nothing saying why, and `too_few_rows` alerts nobody."""
    dashboard = _load(DASHBOARDS_DIR / "model-monitoring.json")
    shown = {name for query in dashboard_queries(dashboard) for name in metric_names(query)}
    published = {m.name for m in monitoring_metrics.ALL}
    assert published <= shown, f"published by the drift job, on no panel: {sorted(published - shown)}"
