"""The pinned price table (`infra/cost_prices.yaml`): its model, its loader and the GPU price of a pool.

Here, below the tools, because two layers price things from it: `mlplat cost` and MLP-COST-GPU-MAX
(mlplat/cost.py, mlplat/validation/gpu_cost.py) and the Pulumi program, which publishes each
GPU pool's GPU-hour price to Prometheus for the GPU fleet dashboard's idle-cost panels
(infra/services/gpu_prices.py). The program never imports `mlplat` (tests/infra/test_layers.py), and
`mlplat/cost.py` imports the CLI's checkout handling, so the table's one owner is this module: pydantic,
PyYAML through infra/stack_file.py and infra/instance_types.py only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra.instance_types import NODE_SHAPES
from infra.stack_file import ConfigError, parse_stack_yaml

REPO = Path(__file__).resolve().parent.parent
# Beside the command that prices plans with it (`mlplat cost`), where the pull-request cost loop and the
# docs point; the program reads it from there too (mlplat/generate.py PROGRAM_INPUTS lists it).
PRICES = REPO / "infra" / "cost_prices.yaml"


class CostError(Exception):
    """The cost cannot be computed (bad plan, bad price table, unpriced resource); the message says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Strict):
    usd: Annotated[float, Field(ge=0)]
    verified: bool
    source: Annotated[str, Field(pattern=r"^https://")]
    basis: Annotated[str, Field(min_length=1)]


class RegionPrices(_Strict):
    eks_cluster_hour: Price  # a cluster whose version is in standard support
    eks_cluster_extended_hour: Price  # in extended support (or past it: AWS upgrades to an extended version)
    kms_key_month: Price
    kms_rotated_key_month: Price  # a key with automatic rotation, at the most it can cost
    ec2_instance_hour: dict[str, Price]
    nat_gateway_hour: Price
    public_ipv4_hour: Price
    nlb_hour: Price
    ebs_gp3_gib_month: Price
    cloudwatch_logs_ingest_gib: Price
    cloudwatch_logs_storage_gib_month: Price
    vpc_interface_endpoint_az_hour: Price

    def instance(self, instance_type: str, region: str, where: str) -> Price:
        """The on-demand hourly price of `instance_type`; a type without one stops whoever prices it."""
        price = self.ec2_instance_hour.get(instance_type)
        if price is None:
            raise CostError(
                f"{where}: instance type {instance_type} has no {region} price in {PRICES.name}; add it "
                "(with its source) before this environment can be priced"
            )
        return price


# The hours of a 31-day month: what a resource running all month is billed for at most. The table's
# `hours_per_month` (AWS's 730-hour average) gives the figures a month costs on average; a budget is
# checked against this one, so no month of the year bills above it (mlplat/cost.py).
LONGEST_MONTH_HOURS = 31 * 24


class PriceTable(_Strict):
    taken: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    hours_per_month: Annotated[float, Field(gt=0, le=LONGEST_MONTH_HOURS)]
    regions: dict[str, RegionPrices]

    def region(self, region: str, where: str) -> RegionPrices:
        prices = self.regions.get(region)
        if prices is None:
            raise CostError(
                f"{where}: region {region} has no prices in {PRICES.name} (priced: {sorted(self.regions)})"
            )
        return prices


def load_prices(path: Path | None = None) -> PriceTable:
    """The price table, validated; any problem is a CostError naming the file and the key path."""
    path = path or PRICES
    # The stack files' reader: bounded before it is built, and a duplicated key (a second price for
    # the same thing, the last one silently winning) is refused.
    try:
        document = parse_stack_yaml(path)
    except ConfigError as err:
        problems = "; ".join(f"{where}: {reason}" for where, reason in err.problems)
        raise CostError(f"price table {path}: {problems}") from None
    try:
        table = PriceTable.model_validate(document)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()
        )
        raise CostError(f"price table {path}: {problems}") from None
    unsized = sorted({t for r in table.regions.values() for t in r.ec2_instance_hour} - set(NODE_SHAPES))
    if unsized:
        raise CostError(f"price table {path}: no size for {unsized} in infra/instance_types.py")
    return table


@dataclass(frozen=True)
class GpuPrice:
    """What one GPU of a pool can cost an hour: the dearest per GPU of the pool's instance types."""

    instance_type: str
    usd_per_hour: float
    verified: bool  # the price table confirmed the figure (`verified: true`)


def dearest_gpu(instance_types: Iterable[str], region: str, prices: PriceTable, where: str) -> GpuPrice:
    """The type among `instance_types` whose GPU costs most per hour in `region`, on demand.

    A GPU pool may launch any of its types (Karpenter leaves the choice to EC2 Fleet, lowest-price or
    price-capacity-optimized: aws/karpenter-provider-aws v1.14.1 pkg/providers/instance/types.go), so
    the dearest GPU is what a replica can cost: the same ceiling `mlplat cost` puts on a pool's maximum,
    spot priced at on-demand as there. Raises CostError for a type without a price or without GPUs.
    """
    region_prices = prices.region(region, where)
    per_gpu: dict[str, tuple[float, bool]] = {}
    for instance_type in instance_types:
        shape = NODE_SHAPES.get(instance_type)
        if shape is None or not shape.gpus:
            raise CostError(f"{where}: {instance_type} has no GPUs in infra/instance_types.py")
        price = region_prices.instance(instance_type, region, where)
        per_gpu[instance_type] = (price.usd / shape.gpus, price.verified)
    if not per_gpu:
        raise CostError(f"{where}: no instance types")
    dearest = max(sorted(per_gpu), key=lambda t: per_gpu[t][0])
    usd, verified = per_gpu[dearest]
    return GpuPrice(dearest, usd, verified)
