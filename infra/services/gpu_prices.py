"""What one GPU of each GPU pool costs an hour, as a Prometheus series the program renders per environment.

The GPU fleet dashboard prices idle GPUs with it (`mlplat:gpu_pool_idle_cost:usd_per_hour`,
platform/prometheus/rules/gpu.yaml, joins it on `gpu_pool`). Its facts have owners already: the pools
and their instance types are `gpu.pools` of the stack file (infra/config.py), the prices
`infra/cost_prices.yaml` (infra/prices.py). So the rule is rendered from them when the program runs,
never written down: no file under platform/ holds a copy that a price or pool change could leave
behind, and the rule says where it comes from (annotation GENERATED_FROM). A pool with a type the
table does not price stops the program (CostError, naming the pool and the type) rather than showing
an idle cost of nothing.

The price of a pool is the on-demand price of one GPU of the dearest of its instance types
(infra.prices.dearest_gpu: what a GPU of the pool can cost, spot priced at on-demand, the ceiling
`mlplat cost` uses too), with the type, the table's date and whether the table confirmed the figure as
labels, so the dashboard shows which price it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import prices
from infra.config import GpuConfig
from infra.contract import KEY_PREFIX
from infra.prices import REPO, GpuPrice, dearest_gpu

GENERATOR = Path(__file__).resolve()
RULE_NAME = "mlplat-gpu-prices"
# The series: one per GPU pool, USD per GPU and hour; the label names are the dashboard's columns.
PRICE_SERIES = "mlplat:gpu_pool_gpu_price:usd_per_hour"
GENERATED_FROM = f"{KEY_PREFIX}/generated-from"


@dataclass(frozen=True)
class PoolGpuPrice:
    pool: str
    gpu: GpuPrice


@dataclass(frozen=True)
class GpuPoolPrices:
    """Every GPU pool's GPU-hour price in one environment, and where the figures come from."""

    pools: tuple[PoolGpuPrice, ...]
    taken: str  # the price table's date
    stack_file: str  # the stack file the pools come from
    price_file: str  # the price table


def _shown(path: Path) -> str:
    """A path as the rule and the messages show it: in the repository when it is there."""
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def gpu_pool_prices(gpu: GpuConfig, region: str, stack_file: Path) -> GpuPoolPrices:
    """Price every pool of `gpu` in `region` from the price table (infra.prices.PRICES); CostError for a
    broken table or a pool one of whose types has no price."""
    price_file = prices.PRICES
    table = prices.load_prices(price_file)
    where = _shown(stack_file)
    return GpuPoolPrices(
        pools=tuple(
            PoolGpuPrice(
                pool.name,
                dearest_gpu(
                    pool.instance_types, region, table, f"{where}: gpu.pools[{i}] (GPU pool {pool.name})"
                ),
            )
            for i, pool in enumerate(gpu.pools)
        ),
        taken=table.taken,
        stack_file=where,
        price_file=_shown(price_file),
    )


def price_rule(pools: GpuPoolPrices, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """The PrometheusRule recording PRICE_SERIES for every pool: a constant (`vector(<usd>)`) whose labels
    the rule sets (the prometheus-operator CRD's `rules[].labels`, "labels to add or overwrite":
    ../shared/reference/crds/prometheus-operator/monitoring.coreos.com_prometheusrules.yaml)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": RULE_NAME,
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                GENERATED_FROM: (
                    f"{_shown(GENERATOR)} from gpu.pools of {pools.stack_file} and {pools.price_file} "
                    f"(taken {pools.taken}); change those, not this rule"
                )
            },
        },
        "spec": {
            "groups": [
                {
                    "name": "mlplat-gpu.prices",
                    "rules": [
                        {
                            "record": PRICE_SERIES,
                            "expr": f"vector({entry.gpu.usd_per_hour:.10g})",  # no float noise (1.4180000000000001)
                            "labels": {
                                "gpu_pool": entry.pool,
                                "instance_type": entry.gpu.instance_type,
                                "prices_taken": pools.taken,
                                "price_verified": str(entry.gpu.verified).lower(),
                            },
                        }
                        for entry in pools.pools
                    ],
                }
            ]
        },
    }
