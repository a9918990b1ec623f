"""The GPU fleet dashboard's idle cost rests on the platform's own prices: the program records each GPU pool's
GPU-hour price from the stack file's pools and the price table (infra/services/gpu_prices.py), and refuses
a pool the table cannot price.

Dev's pools (environments/Pulumi.dev.yaml): gpu-small [g5.2xlarge, g6.2xlarge], gpu-multi [g5.12xlarge,
4 GPUs], gpu-shared [g4dn.xlarge]. Prices below are round test prices, so each figure is checked by hand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import prices
from infra.config import load_environment
from tests.support.checkout_copy import checkout_copy, edit, mlplat
from tests.support.harness import Plan, build_config
from tests.support.obs_helpers import RULES_DIR, extract_rule_file, run_promtool
from tests.support.prices import price_table

PRICE_RULE = "mlplat-gpu-prices"
# USD an hour, verified: gpu-small's dearest GPU is g5.2xlarge ($2.00 a GPU), gpu-multi's g5.12xlarge
# ($8.00 / 4 GPUs = $2.00), gpu-shared's g4dn.xlarge ($0.50, not confirmed).
ROUND = {
    "g5.2xlarge": ("2.00", True),
    "g6.2xlarge": ("1.00", True),
    "g5.12xlarge": ("8.00", True),
    "g4dn.xlarge": ("0.50", False),
}


def _dev_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instances: dict[str, tuple[str, bool]]
) -> Plan:
    table = tmp_path / "prices.yaml"
    table.write_text(price_table("eu-west-1", instances))
    monkeypatch.setattr(prices, "PRICES", table)
    return build_config(load_environment("dev"))


def _price_rule(plan: Plan) -> dict[str, Any]:
    (rule,) = [
        r
        for r in plan.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
        if r.inputs["metadata"]["name"] == PRICE_RULE
    ]
    return rule.inputs


def _series(rule: dict[str, Any]) -> dict[str, tuple[str, dict[str, str]]]:
    """gpu_pool -> (expression, labels) of each recorded price."""
    return {
        r["labels"]["gpu_pool"]: (r["expr"], r["labels"])
        for group in rule["spec"]["groups"]
        for r in group["rules"]
    }


def test_each_gpu_pool_is_priced_at_its_dearest_gpu_from_the_price_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    series = _series(_price_rule(_dev_plan(tmp_path, monkeypatch, ROUND)))
    taken = {"prices_taken": "2026-12-01"}
    assert series == {
        "gpu-small": (
            "vector(2)",
            {"gpu_pool": "gpu-small", "instance_type": "g5.2xlarge", **taken, "price_verified": "true"},
        ),
        "gpu-multi": (
            "vector(2)",
            {"gpu_pool": "gpu-multi", "instance_type": "g5.12xlarge", **taken, "price_verified": "true"},
        ),
        "gpu-shared": (
            "vector(0.5)",
            {"gpu_pool": "gpu-shared", "instance_type": "g4dn.xlarge", **taken, "price_verified": "false"},
        ),
    }


def test_a_price_change_in_the_table_changes_the_recorded_price(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dearer_g6 = {**ROUND, "g6.2xlarge": ("3.25", False)}
    series = _series(_price_rule(_dev_plan(tmp_path, monkeypatch, dearer_g6)))
    expr, labels = series["gpu-small"]
    assert (expr, labels["instance_type"], labels["price_verified"]) == (
        "vector(3.25)",
        "g6.2xlarge",
        "false",
    )


def test_the_price_rule_says_what_it_is_generated_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = _price_rule(_dev_plan(tmp_path, monkeypatch, ROUND))
    (origin,) = rule["metadata"]["annotations"].values()
    assert origin == (
        f"infra/services/gpu_prices.py from gpu.pools of environments/Pulumi.dev.yaml and {tmp_path}/prices.yaml "
        "(taken 2026-12-01); change those, not this rule"
    )
    assert not list(RULES_DIR.glob(f"*{PRICE_RULE.removeprefix('mlplat-')}*")), (
        "the price rule is rendered by the program: no copy of it belongs under platform/prometheus/rules/"
    )


def test_the_rendered_prices_price_idle_gpus_in_prometheus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """promtool evaluates the rule the program rendered together with gpu.yaml: two idle GPUs of a gpu-multi
    node cost 2 x $2.00 an hour, labelled with the price they rest on."""
    rule = _price_rule(_dev_plan(tmp_path, monkeypatch, ROUND))
    rendered = tmp_path / "gpu-prices.yaml"
    rendered.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    gpu_rules = extract_rule_file(RULES_DIR / "gpu.yaml", tmp_path)
    utilisation = [
        ("gpu-multi", "ip-10-0-2-20", gpu, util) for gpu, util in (("0", 1), ("1", 2), ("2", 70), ("3", 90))
    ]
    test = {
        "rule_files": [str(gpu_rules), str(rendered)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'kube_node_labels{{node="{node}", label_mlplat_gpu_pool="{pool}"}}',
                        "values": "1x10",
                    }
                    for pool, node in {(p, n) for p, n, _, _ in utilisation}
                ]
                + [
                    {
                        # What the pinned exporter sends, with the `node` its ServiceMonitor relabels in.
                        "series": f'DCGM_FI_DEV_GPU_UTIL{{hostname="{node}", node="{node}", gpu="{gpu}"}}',
                        "values": f"{util}x10",
                    }
                    for _, node, gpu, util in utilisation
                ],
                "promql_expr_test": [
                    {
                        "expr": "mlplat:gpu_pool_idle_cost:usd_per_hour",
                        "eval_time": "5m",
                        "exp_samples": [
                            {
                                "labels": 'mlplat:gpu_pool_idle_cost:usd_per_hour{gpu_pool="gpu-multi", '
                                'instance_type="g5.12xlarge", prices_taken="2026-12-01", price_verified="true"}',
                                "value": 4,
                            }
                        ],
                    }
                ],
            }
        ],
    }
    test_file = tmp_path / "gpu-prices.test.yaml"
    test_file.write_text(yaml.safe_dump(test, sort_keys=False))
    result = run_promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_gpu_pool_type_without_a_price_stops_the_plan_naming_the_pool_and_the_type(tmp_path: Path) -> None:
    """`mlplat plan` (the program under mocks, as `pulumi preview` runs it) refuses with exit 2 and a message,
    never a traceback or a pool priced at nothing."""
    repo = checkout_copy(tmp_path / "checkout")
    table = repo / "infra" / "cost_prices.yaml"
    (g6,) = re.findall(r"\n      g6\.2xlarge:\n(?:        .*\n)+", table.read_text())
    edit(table, g6, "\n")
    result = mlplat(repo, "plan", "--env", "dev", "--no-policies")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert (
        "environments/Pulumi.dev.yaml: gpu.pools[0] (GPU pool gpu-small): instance type g6.2xlarge has no "
        "eu-west-1 price in cost_prices.yaml" in result.stderr
    ), result.stderr
