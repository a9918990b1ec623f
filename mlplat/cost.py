"""`mlplat cost`: the monthly cost of an environment, read off its offline plan and priced from a pinned table.

Two figures per line: **idle** (managed node groups at their minimum, Karpenter pools at their static
`replicas` or zero) and **max** (every pool at its ceiling: node groups at `max_size`, Karpenter pools
filled up to their `limits`), both for an average month (the table's `hours_per_month`, 730). The budget
in the stack file (`cost.max_monthly_usd`) is checked against max over a 31-day month (744 hours): the
owner of the GPU budget needs to know what the platform *can* spend in any month without anyone asking
first, and the pools' limits are exactly that promise.

Prices come from `infra/cost_prices.yaml` (read by infra/prices.py; dated, each with its source and
whether it was confirmed); a line resting on an unconfirmed price is marked. The EKS control plane is priced for the
day the estimate is for (today unless `--on` says otherwise): a cluster whose Kubernetes version is
past standard support on that day pays the extended support price (infra/versions.py
`EKS_SUPPORT_CALENDAR`). Charges that depend on traffic (NAT
and load balancer data processing, data transfer, KMS requests, snapshots) are listed, not guessed.

`--env` runs the Pulumi program under mocks (no policy pack: a few seconds) so the figure is never
that of a stale plan file; `--plan FILE` prices a plan someone already wrote (CI compares two).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from infra import versions
from infra.contract import ENVIRONMENTS
from infra.instance_types import NODE_SHAPES, NodeShape
from infra.prices import (
    LONGEST_MONTH_HOURS,
    PRICES,
    REPO,
    CostError,
    Price,
    PriceTable,
    RegionPrices,
    dearest_gpu,
    load_prices,
)
from mlplat import checkout


class BudgetExceeded(CostError):
    """The environment could cost more at its maximum than its stack file allows."""


# --- line items ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One item of the bill: its monthly cost idle and at maximum (None: no maximum exists)."""

    key: str  # stable across changes (the item's text holds figures), so two estimates can be compared
    item: str
    idle: float
    max: float | None
    unverified: bool = False


@dataclass
class Estimate:
    """Every priced line of one environment, and what the figures leave out (`notes`)."""

    stack: str
    region: str
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def idle(self) -> float:
        return sum(line.idle for line in self.lines)

    @property
    def max(self) -> float | None:
        maxima = [line.max for line in self.lines]
        return None if any(m is None for m in maxima) else sum(m for m in maxima if m is not None)

    @property
    def unverified(self) -> bool:
        return any(line.unverified for line in self.lines)


@dataclass(frozen=True)
class _Rates:
    """The prices of the environment's region, and the arithmetic from hourly to monthly."""

    region: RegionPrices
    name: str
    hours: float  # in the month priced

    def month(self, price: Price, hourly: bool = True) -> float:
        return price.usd * self.hours if hourly else price.usd

    def steady(self, key: str, item: str, count: int, price: Price, hourly: bool = True) -> Line:
        """`count` of a thing billed whether used or not: the same cost idle and at maximum."""
        usd = count * self.month(price, hourly)
        return Line(key, item, usd, usd, not price.verified)

    def instance(self, instance_type: str, where: str) -> Price:
        return self.region.instance(instance_type, self.name, where)


def dearest_gpu_month(
    instance_types: Iterable[str], region: str, prices: PriceTable, where: str
) -> tuple[str, float]:
    """The type among `instance_types` whose GPU costs most in `region`, and that cost per GPU and month
    (infra.prices.dearest_gpu says why the dearest)."""
    gpu = dearest_gpu(instance_types, region, prices, where)
    return gpu.instance_type, gpu.usd_per_hour * prices.hours_per_month


def _resources(plan: Mapping[str, Any], type_: str) -> Iterator[dict[str, Any]]:
    for resource in plan["resources"]:
        if resource["type"] == type_:
            yield resource


def _count(plan: Mapping[str, Any], type_: str) -> int:
    return sum(1 for _ in _resources(plan, type_))


def _gib(quantity: Any, where: str) -> float:
    """A Kubernetes quantity of bytes ("200Gi", "1Ti", "500M", or a number of GiB for EC2) in GiB."""
    units: dict[str, float] = {
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
    }
    text, scale = str(quantity).strip(), float(2**30)
    if not isinstance(quantity, int | float):
        suffix = next((u for u in sorted(units, key=len, reverse=True) if text.endswith(u)), None)
        if suffix is None:
            raise CostError(f"{where}: cannot read the size {quantity!r}")
        text, scale = text[: -len(suffix)], units[suffix]
    try:
        gib = float(text) * scale / 2**30
    except ValueError:
        raise CostError(f"{where}: cannot read the size {quantity!r}") from None
    if not 0 <= gib < 2**40:
        raise CostError(f"{where}: the size {quantity!r} is not a size a volume can have")
    return gib


# --- compute: managed node groups and Karpenter pools ----------------------------------------------


def _gp3_gib(mappings: Iterable[Mapping[str, Any]], where: str) -> float:
    """The GiB of a node's EBS block device mappings. Each must say `volumeType: gp3`, the one volume type
    the table prices: another type, or none (the launch then takes EC2's or the AMI's), is refused."""
    total = 0.0
    for mapping in mappings:
        ebs = mapping.get("ebs")
        if not ebs:
            continue  # an instance store device: part of the instance's price
        volume_type = ebs.get("volumeType")
        if volume_type != "gp3":
            raise CostError(
                f"{where}: block device {mapping.get('deviceName', '?')} has volume type {volume_type!r}; "
                f"only gp3 has a price in {PRICES.name} (set `volumeType: gp3`)"
            )
        total += _gib(ebs.get("volumeSize", 0), where)
    return total


def _root_volume_gib(plan: Mapping[str, Any], node_group: Mapping[str, Any]) -> float:
    """Root volume of a managed node group's nodes: its launch template's, or EKS's `diskSize` (default 20 GiB,
    https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateNodegroup.html) when it has none."""
    template = node_group["inputs"].get("launchTemplate")
    if not template:
        return float(node_group["inputs"].get("diskSize", 20))
    # The offline plan holds the template's mock ID, `<resource name>-<hex>` (mlplat/mocks.py).
    for resource in _resources(plan, "aws:ec2/launchTemplate:LaunchTemplate"):
        if re.fullmatch(rf"{re.escape(resource['name'])}-[0-9a-f]+", str(template.get("id", ""))):
            return _gp3_gib(resource["inputs"].get("blockDeviceMappings") or [], resource["urn"])
    raise CostError(
        f"{node_group['urn']}: its launch template is not in the plan; cannot size its root volumes"
    )


def _node_groups(plan: Mapping[str, Any], rates: _Rates) -> Iterator[Line]:
    for group in _resources(plan, "aws:eks/nodeGroup:NodeGroup"):
        inputs, where = group["inputs"], group["urn"]
        scaling = inputs.get("scalingConfig") or {}
        low, high = int(scaling.get("minSize", 0)), int(scaling.get("maxSize", 0))
        types = list(inputs.get("instanceTypes") or [])
        if not types:
            raise CostError(f"{where}: no instanceTypes; cannot price the node group")
        prices = {t: rates.instance(t, where) for t in types}
        # On-demand managed node groups launch the first listed type ("prioritized" allocation,
        # https://docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html#managed-node-group-capacity-types);
        # at maximum we assume the dearest, so the ceiling holds whatever the allocation does.
        first, dearest = types[0], max(types, key=lambda t: prices[t].usd)
        unverified = not (prices[first].verified and prices[dearest].verified)
        group_name = inputs.get("nodeGroupName", group["name"])
        yield Line(
            f"node group {group_name}",
            f"node group {group_name}: {low}..{high} x {'/'.join(types)}",
            low * rates.month(prices[first]),
            high * rates.month(prices[dearest]),
            unverified,
        )
        disk = _root_volume_gib(plan, group)
        gp3 = rates.region.ebs_gp3_gib_month
        yield Line(
            f"node group {group_name} root volumes",
            f"root volumes of node group {group_name}: {disk:g} GiB gp3 per node",
            low * disk * gp3.usd,
            high * disk * gp3.usd,
            not gp3.verified,
        )


# Karpenter NodePool `limits` keys we can turn into instances, and what one instance adds to each
# (aws/karpenter-provider-aws v1.14.1 website/content/en/docs/concepts/nodepools.md, "spec.limits":
# cpu, memory, nvidia.com/gpu and nodes; no limits means no ceiling but the account's quotas).
LIMIT_KEYS = ("cpu", "memory", "nvidia.com/gpu", "nodes")


# Larger limits are not priced exactly (the fill below walks every unit): 100,000 vCPUs, GiB or GPUs is
# far beyond any pool the stack config allows, and a plan file claiming more is refused, not computed.
MAX_LIMIT_UNITS = 100_000


NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"


def _limit_units(key: str, value: Any, where: str) -> int:
    """A NodePool limit in whole units: vCPUs, GiB, GPUs or nodes (rounded down: a partial unit buys nothing)."""
    if key == "memory":
        units = int(_gib(value, where))
    else:
        text = str(value).strip()
        try:
            units = int(float(text[:-1]) / 1000) if text.endswith("m") else int(float(text))
        except (ValueError, OverflowError):
            raise CostError(f"{where}: limit {key}={value!r} is not a quantity") from None
    if not 0 <= units <= MAX_LIMIT_UNITS:
        raise CostError(f"{where}: limit {key}={value!r} is outside 0..{MAX_LIMIT_UNITS} units; not priced")
    return units


def _weight(shape: NodeShape, key: str) -> int:
    return {"cpu": shape.vcpus, "memory": shape.memory_gib, "nvidia.com/gpu": shape.gpus, "nodes": 1}[key]


def _fill(capacity: int, options: Mapping[str, tuple[int, float]]) -> tuple[float, dict[str, int]] | None:
    """Dearest set of instances whose `weight` adds up to at most `capacity` (unbounded knapsack).

    None when an instance type weighs nothing on this limit: it could be launched without end.
    """
    if any(weight == 0 for weight, _ in options.values()):
        return None
    best: list[tuple[float, dict[str, int]]] = [(0.0, {})]
    for room in range(1, capacity + 1):
        top = best[room - 1]
        for name, (weight, price) in options.items():
            if weight <= room:
                cost, mix = best[room - weight]
                if cost + price > top[0]:
                    top = (cost + price, {**mix, name: mix.get(name, 0) + 1})
        best.append(top)
    return best[capacity]


def _pool_types(pool: Mapping[str, Any], rates: _Rates) -> list[str]:
    """The instance types a NodePool may launch: those its `In` requirements on the type and the family
    admit (Karpenter ANDs requirements). Other requirements only narrow the set further, so ignoring them
    keeps a ceiling. Every type it admits needs a price: one left out would lower the ceiling."""
    requirements = pool["inputs"].get("spec", {}).get("template", {}).get("spec", {}).get("requirements", [])
    types: set[str] | None = None
    families: set[str] | None = None
    for requirement in requirements:
        key, values = requirement.get("key"), set(requirement.get("values") or [])
        if requirement.get("operator") != "In":
            continue
        if key == "node.kubernetes.io/instance-type":
            types = values if types is None else types & values
        elif key == "karpenter.k8s.aws/instance-family":
            families = values if families is None else families & values
    if types is None and families is None:
        raise CostError(
            f"{pool['urn']}: no instance-type or instance-family requirement; its nodes cannot be priced "
            "(any instance type in the region could be launched)"
        )
    priced = set(rates.region.ec2_instance_hour)
    if types is None:
        # A family admits every size AWS sells in it, more than infra/instance_types.py lists.
        unpriced = sorted(t for t in NODE_SHAPES if _family(t) in (families or set()) and t not in priced)
        raise CostError(
            f"{pool['urn']}: karpenter.k8s.aws/instance-family In {sorted(families or [])} admits every size of "
            f"the family, and these have no {rates.name} price in {PRICES.name}: "
            f"{', '.join([*unpriced, 'any size infra/instance_types.py does not list'])}; name the types it "
            "may launch with a node.kubernetes.io/instance-type requirement"
        )
    if families is not None:
        types = {t for t in types if _family(t) in families}
    for unpriced_type in sorted(types - priced)[:1]:
        rates.instance(unpriced_type, pool["urn"])  # raises: every type the pool may launch needs a price
    if not types:
        raise CostError(f"{pool['urn']}: its requirements admit no instance type")
    return sorted(types)


def _family(instance_type: str) -> str:
    return instance_type.split(".")[0]


def _node_pools(plan: Mapping[str, Any], rates: _Rates) -> Iterator[Line]:
    classes = {
        r["inputs"].get("metadata", {}).get("name"): r
        for r in _resources(plan, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    }
    gp3 = rates.region.ebs_gp3_gib_month
    for pool in _resources(plan, NODE_POOL):
        spec, where = pool["inputs"].get("spec", {}), pool["urn"]
        name = pool["inputs"].get("metadata", {}).get("name", pool["name"])
        types = _pool_types(pool, rates)
        prices = {t: rates.instance(t, where) for t in types}
        # Spot capacity is priced at the on-demand price, its ceiling: Karpenter's CreateFleet request sets
        # no maximum price (aws/karpenter-provider-aws v1.14.1 pkg/providers/instance/types.go, SpotOptions
        # has only an allocation strategy), and a fleet without one uses the on-demand price
        # (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-fleet-price-overrides.html).
        monthly = {t: rates.month(p) for t, p in prices.items()}
        static = int(spec.get("replicas", 0))  # static capacity (spec.replicas, nodepools.md as above)
        limits = {
            k: _limit_units(k, v, where) for k, v in (spec.get("limits") or {}).items() if k in LIMIT_KEYS
        }
        fills = [
            _fill(units, {t: (_weight(NODE_SHAPES[t], key), monthly[t]) for t in types})
            for key, units in limits.items()
        ]
        bounded = [f for f in fills if f is not None]
        # Each limit alone bounds the pool; the tightest of them is a ceiling for all of them together.
        top = min(bounded, key=lambda f: f[0]) if bounded else None
        dearest = max(types, key=lambda t: monthly[t])
        idle = static * monthly[dearest]
        unverified = any(not p.verified for p in prices.values())
        shown = ", ".join(f"{k}={v}" for k, v in (spec.get("limits") or {}).items()) or "none"
        if top is None:
            yield Line(
                f"pool {name}", f"Karpenter pool {name}: limits {shown}: NO MAXIMUM", idle, None, unverified
            )
            continue
        cost, mix = top
        filled = " + ".join(f"{n} x {t}" for t, n in sorted(mix.items())) or "0 nodes"
        yield Line(
            f"pool {name}",
            f"Karpenter pool {name}: limits {shown} → {filled}",
            idle,
            max(cost, idle),
            unverified,
        )
        disk = _node_class_disk_gib(classes, pool)
        nodes = sum(mix.values())
        yield Line(
            f"pool {name} root volumes",
            f"root volumes of pool {name}: {disk:g} GiB gp3 per node",
            static * disk * gp3.usd,
            max(nodes, static) * disk * gp3.usd,
            not gp3.verified,
        )


# What Karpenter attaches to a node whose EC2NodeClass lists no blockDeviceMappings: its AMI family's
# defaults (aws/karpenter-provider-aws v1.14.1, pkg/providers/amifamily/resolver.go `DefaultEBS`: gp3,
# 20Gi; al2023.go and al2.go use it alone, bottlerocket.go adds a 4Gi OS volume; resolver.go applies them
# when `nodeClass.Spec.BlockDeviceMappings` is empty). Keyed by the family of the `alias` AMI selector
# term (`al2023@v20251108`). A custom AMI keeps the AMI's own volumes (custom.go), which no plan holds.
KARPENTER_DEFAULT_ROOT_GIB = {"al2023": 20.0, "al2": 20.0, "bottlerocket": 24.0}


def _node_class_disk_gib(classes: Mapping[str, Mapping[str, Any]], pool: Mapping[str, Any]) -> float:
    ref = (
        pool["inputs"].get("spec", {}).get("template", {}).get("spec", {}).get("nodeClassRef", {}).get("name")
    )
    node_class = classes.get(ref)
    if node_class is None:
        raise CostError(
            f"{pool['urn']}: its EC2NodeClass {ref!r} is not in the plan; cannot size its volumes"
        )
    spec = node_class["inputs"].get("spec", {})
    mappings = spec.get("blockDeviceMappings")
    if mappings:
        return _gp3_gib(mappings, node_class["urn"])
    aliases = [str(term["alias"]) for term in spec.get("amiSelectorTerms") or [] if term.get("alias")]
    family = aliases[0].split("@")[0] if aliases else None
    if family not in KARPENTER_DEFAULT_ROOT_GIB:
        raise CostError(
            f"{node_class['urn']}: no blockDeviceMappings, and its AMI family ({family or 'no alias'}) has no "
            "default volumes mlplat cost knows; cannot size its root volumes (list them in blockDeviceMappings)"
        )
    return KARPENTER_DEFAULT_ROOT_GIB[family]


# --- persistent volumes from the Helm releases -----------------------------------------------------


def value_at(values: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """The value at a dotted path of Helm chart values (`server.ha.replicas`), `default` where the path
    stops: what a release's values leave unset, the chart's own default decides."""
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _minio_claims(values: Mapping[str, Any]) -> int:
    # Chart defaults (../shared/reference/charts/minio/values.yaml, chart 5.4.0): mode distributed,
    # replicas 16, drivesPerNode 1, pools 1; standalone runs one drive.
    if value_at(values, "mode", "distributed") == "standalone":
        return 1
    return (
        int(value_at(values, "replicas", 16))
        * int(value_at(values, "drivesPerNode", 1))
        * int(value_at(values, "pools", 1))
    )


def _vault_claims(values: Mapping[str, Any]) -> int:
    # Chart defaults (../shared/reference/charts/vault/values.yaml, chart 0.34.1): server.ha.enabled
    # false (one server), server.ha.replicas 3; each server has its own claims.
    return (
        int(value_at(values, "server.ha.replicas", 3)) if value_at(values, "server.ha.enabled", False) else 1
    )


@dataclass(frozen=True)
class Claim:
    """A persistent volume a chart of ours creates: where its size and class are, and how many there are."""

    chart: str
    label: str
    size: str
    storage_class: str
    count: Callable[[Mapping[str, Any]], int]
    # The values that must be true for the chart to create the claim, with the chart's own default.
    switches: tuple[tuple[str, bool], ...] = ()

    def enabled(self, values: Mapping[str, Any]) -> bool:
        return all(value_at(values, path, default) is True for path, default in self.switches)


# Replica defaults are the charts' own (kube-prometheus-stack 88.5.3: prometheusSpec.replicas and
# alertmanagerSpec.replicas 1, shards 1; mlflow 1.11.5: one PostgreSQL primary). A chart with volumes
# that is not listed here is not priced: tests/mlplat/cost checks that every claim in the plans is.
# Switch defaults, from ../shared/reference/charts/*/values.yaml: vault 0.34.1 server.dataStorage.enabled
# true, server.auditStorage.enabled false; minio 5.4.0 persistence.enabled true; mlflow 1.11.5
# postgresql.enabled false, postgresql.primary.persistence.enabled true. Prometheus and Alertmanager
# claim a volume exactly when their volumeClaimTemplate is set.
_PROMETHEUS = "prometheus.prometheusSpec"
_ALERTMANAGER = "alertmanager.alertmanagerSpec"
CLAIMS = (
    Claim(
        "kube-prometheus-stack",
        "Prometheus",
        f"{_PROMETHEUS}.storageSpec.volumeClaimTemplate.spec.resources.requests.storage",
        f"{_PROMETHEUS}.storageSpec.volumeClaimTemplate.spec.storageClassName",
        lambda v: (
            int(value_at(v, f"{_PROMETHEUS}.replicas", 1)) * int(value_at(v, f"{_PROMETHEUS}.shards", 1))
        ),
    ),
    Claim(
        "kube-prometheus-stack",
        "Alertmanager",
        f"{_ALERTMANAGER}.storage.volumeClaimTemplate.spec.resources.requests.storage",
        f"{_ALERTMANAGER}.storage.volumeClaimTemplate.spec.storageClassName",
        lambda v: int(value_at(v, f"{_ALERTMANAGER}.replicas", 1)),
    ),
    Claim(
        "vault",
        "Vault data",
        "server.dataStorage.size",
        "server.dataStorage.storageClass",
        _vault_claims,
        (("server.dataStorage.enabled", True),),
    ),
    Claim(
        "vault",
        "Vault audit",
        "server.auditStorage.size",
        "server.auditStorage.storageClass",
        _vault_claims,
        (("server.auditStorage.enabled", False),),
    ),
    Claim(
        "minio",
        "MinIO drives",
        "persistence.size",
        "persistence.storageClass",
        _minio_claims,
        (("persistence.enabled", True),),
    ),
    Claim(
        "mlflow",
        "MLflow PostgreSQL",
        "postgresql.primary.persistence.size",
        "postgresql.primary.persistence.storageClass",
        lambda v: 1,
        (("postgresql.enabled", False), ("postgresql.primary.persistence.enabled", True)),
    ),
)


def _chart_name(chart: str) -> str:
    return chart.rstrip("/").rsplit("/", 1)[-1]


def _volume_type(plan: Mapping[str, Any], storage_class: str, where: str) -> str:
    for resource in _resources(plan, "kubernetes:storage.k8s.io/v1:StorageClass"):
        if resource["inputs"].get("metadata", {}).get("name") == storage_class:
            return str(resource["inputs"].get("parameters", {}).get("type", "gp3"))
    raise CostError(f"{where}: storage class {storage_class!r} is not in the plan; cannot price its volumes")


def _claims(plan: Mapping[str, Any], rates: _Rates) -> Iterator[Line]:
    gp3 = rates.region.ebs_gp3_gib_month
    for release in _resources(plan, "kubernetes:helm.sh/v3:Release"):
        chart, values = (
            _chart_name(str(release["inputs"].get("chart", ""))),
            release["inputs"].get("values") or {},
        )
        for claim in CLAIMS:
            size = value_at(values, claim.size)
            if claim.chart != chart or size is None or not claim.enabled(values):
                continue
            where = f"{release['urn']} values.{claim.size}"
            volume_type = _volume_type(plan, str(value_at(values, claim.storage_class, "")), where)
            if volume_type != "gp3":
                raise CostError(
                    f"{where}: volume type {volume_type} has no price in {PRICES.name} (gp3 only)"
                )
            gib, count = _gib(size, where), claim.count(values)
            monthly = count * gib * gp3.usd
            yield Line(
                f"{release['name']} {claim.label}",
                f"{claim.label}: {count} x {gib:g} GiB gp3",
                monthly,
                monthly,
                not gp3.verified,
            )


# --- network, load balancers, logs, keys -----------------------------------------------------------

# The inference gateway's NLB: the AWS Load Balancer Controller makes one for a Service of type
# LoadBalancer, which Envoy Gateway creates for each Gateway (its EnvoyProxy `envoyService.type` defaults
# to LoadBalancer: envoyproxy/gateway v1.9.0 api/v1alpha1/shared_types.go, KubernetesServiceSpec.Type).
# Any of these in the plan means one NLB for the environment.
NLB_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-type"


def _has_load_balancer(plan: Mapping[str, Any]) -> bool:
    for resource in plan["resources"]:
        if resource["type"].startswith("kubernetes:gateway.networking.k8s.io/") and resource["type"].endswith(
            ":Gateway"
        ):
            return True
        if (
            resource["type"] == "kubernetes:core/v1:Service"
            and resource["inputs"].get("spec", {}).get("type") == "LoadBalancer"
        ):
            return True
        if NLB_ANNOTATION in json.dumps(resource["inputs"]):
            return True
    return False


def _control_planes(plan: Mapping[str, Any], rates: _Rates, day: date) -> Iterator[Line]:
    """Each cluster at the price of the support window its Kubernetes version is in on `day`."""
    windows = [_support(cluster, day) for cluster in _resources(plan, "aws:eks/cluster:Cluster")]
    for window in sorted(set(windows), key=lambda w: w.value):
        count = windows.count(window)
        standard = window is versions.EksSupport.STANDARD
        price = rates.region.eks_cluster_hour if standard else rates.region.eks_cluster_extended_hour
        item = f"EKS control plane: {count} cluster(s), {window.value} support on {day.isoformat()}"
        yield rates.steady("eks" if standard else "eks extended", item, count, price)


def _support(cluster: Mapping[str, Any], day: date) -> versions.EksSupport:
    version = cluster["inputs"].get("version")
    calendar = versions.EKS_SUPPORT_CALENDAR.get(str(version))
    if calendar is None:
        raise CostError(
            f"{cluster['urn']}: Kubernetes version {version!r} has no support dates in infra/versions.py "
            "EKS_SUPPORT_CALENDAR, so its control plane cannot be priced"
        )
    return calendar.on(day)


def _network(plan: Mapping[str, Any], rates: _Rates, estimate: Estimate) -> Iterator[Line]:
    region = rates.region
    nats = _count(plan, "aws:ec2/natGateway:NatGateway")
    yield rates.steady("nat", f"NAT gateways: {nats}", nats, region.nat_gateway_hour)
    addresses = _count(plan, "aws:ec2/eip:Eip")
    item = f"public IPv4 addresses (Elastic IPs): {addresses}"
    yield rates.steady("public ipv4", item, addresses, region.public_ipv4_hour)
    if _has_load_balancer(plan):
        yield rates.steady("nlb", "NLB of the inference gateway: 1", 1, region.nlb_hour)
    else:
        estimate.notes.append("no load balancer in the plan (no Gateway, no Service of type LoadBalancer)")
    zones = 0
    for endpoint in _resources(plan, "aws:ec2/vpcEndpoint:VpcEndpoint"):
        if endpoint["inputs"].get("vpcEndpointType") == "Interface":
            zones += len(endpoint["inputs"].get("subnetIds") or [])
    if zones:
        item = f"VPC interface endpoints: {zones} endpoint-zones"
        yield rates.steady("vpc endpoints", item, zones, region.vpc_interface_endpoint_az_hour)


def _logs_and_keys(plan: Mapping[str, Any], rates: _Rates, ingest_gib: int) -> Iterator[Line]:
    region = rates.region
    groups = list(_resources(plan, "aws:cloudwatch/logGroup:LogGroup"))
    if groups:
        # Kept for the longest retention of the groups (never-expiring groups: a year, and say so).
        days = max(int(g["inputs"].get("retentionInDays") or 365) for g in groups)
        stored = ingest_gib * min(days, 365) / 30
        logs = (
            ingest_gib * region.cloudwatch_logs_ingest_gib.usd
            + stored * region.cloudwatch_logs_storage_gib_month.usd
        )
        unverified = not (
            region.cloudwatch_logs_ingest_gib.verified and region.cloudwatch_logs_storage_gib_month.verified
        )
        yield Line(
            "logs",
            f"CloudWatch Logs: {len(groups)} group(s), assumed {ingest_gib} GiB/month kept {days} days",
            logs,
            logs,
            unverified,
        )
    keys = list(_resources(plan, "aws:kms/key:Key"))
    rotated = sum(1 for key in keys if key["inputs"].get("enableKeyRotation") is True)
    plain, ceiling = region.kms_key_month, region.kms_rotated_key_month
    usd = (len(keys) - rotated) * plain.usd + rotated * ceiling.usd
    unverified = (rotated < len(keys) and not plain.verified) or (rotated > 0 and not ceiling.verified)
    item = f"KMS customer managed keys: {len(keys)}, {rotated} rotated (at the price after two rotations)"
    yield Line("kms", item, usd, usd, unverified)


# --- the estimate ----------------------------------------------------------------------------------

NOT_INCLUDED = (
    "not included (they depend on traffic): NAT gateway and load balancer data processing, data transfer "
    "out and across zones, KMS and CloudWatch API requests, EBS snapshots, S3"
)
# aws/karpenter-provider-aws v1.14.1 website/content/en/docs/concepts/nodepools.md, spec.limits: "limit
# checking is eventually consistent, which can result in overrun during rapid scale outs".
LIMITS_OVERRUN = (
    "Karpenter checks a pool's limits eventually, not before each launch: a rapid scale-out can overrun "
    "them, so for a while a pool can cost more than its maximum here"
)


def estimate(
    plan: Mapping[str, Any],
    region: str,
    log_ingest_gib: int,
    prices: PriceTable,
    on: date | None = None,
    hours: float | None = None,
) -> Estimate:
    """Price one plan document in `region`, as billed on day `on` (default: the UTC day,
    infra.versions.calendar_today), for a month of `hours` (default: the table's average month)."""
    if not isinstance(plan, Mapping) or not isinstance(plan.get("resources"), list):
        raise CostError("not an offline plan: no `resources` list (write one with `mlplat plan`)")
    region_prices = prices.regions.get(region)
    if region_prices is None:
        raise CostError(f"region {region} has no prices in {PRICES.name} (priced: {sorted(prices.regions)})")
    rates = _Rates(region_prices, region, hours or prices.hours_per_month)
    result = Estimate(str(plan.get("stack", "?")), region)
    try:
        result.lines += [
            *_control_planes(plan, rates, on or versions.calendar_today()),
            *_network(plan, rates, result),
            *_node_groups(plan, rates),
            *_node_pools(plan, rates),
            *_claims(plan, rates),
            *_logs_and_keys(plan, rates, log_ingest_gib),
        ]
    except (KeyError, TypeError, AttributeError, ValueError, ArithmeticError) as err:
        raise CostError(
            f"the plan is not shaped as `mlplat plan` writes it ({type(err).__name__}: {err})"
        ) from None
    if _count(plan, NODE_POOL):
        result.notes.append(LIMITS_OVERRUN)
    result.notes.append(NOT_INCLUDED)
    return result


def _config(stack: str, checkout: Path | None = None) -> Any:
    """The stack's validated config: from this checkout's stack file, or from `checkout`'s."""
    from infra.config import load_environment, load_stack_config, read_stack_file, stack_file

    if checkout is None:
        return load_environment(stack)
    path = checkout / stack_file(stack).relative_to(REPO)
    return load_stack_config(read_stack_file(path), str(path), stack)


def price_plan(
    plan: Mapping[str, Any],
    prices: PriceTable | None = None,
    on: date | None = None,
    checkout: Path | None = None,
) -> Estimate:
    """Price a plan with its environment's region and log assumption (from the stack file of this
    checkout, or of `checkout`), on day `on`."""
    config = _config(str(plan.get("stack")), checkout)
    ingest = config.cost.log_ingest_gib_per_month if config.cost else 0
    return estimate(plan, config.aws.region, ingest, prices or load_prices(), on)


@dataclass(frozen=True)
class Budget:
    """A stack's budget, and the maximum it is held to: every pool full for a whole 31-day month (the
    dearest month of the year: a 730-hour average lets a maximum through that July bills above it)."""

    usd: float
    maximum: float | None

    @property
    def kept(self) -> bool:
        return self.maximum is not None and self.maximum <= self.usd


def budget_of(
    plan: Mapping[str, Any], stack: str, prices: PriceTable, on: date | None = None
) -> Budget | None:
    """The plan's maximum over the longest month beside `cost.max_monthly_usd` of its stack file (None: no
    budget set), as billed on day `on`."""
    config = _config(stack)
    if config.cost is None:
        return None
    longest = estimate(
        plan, config.aws.region, config.cost.log_ingest_gib_per_month, prices, on, LONGEST_MONTH_HOURS
    )
    return Budget(config.cost.max_monthly_usd, longest.max)


def enforce_budget(plan: Mapping[str, Any], stack: str) -> Budget | None:
    """Refuse a plan whose maximum exceeds `cost.max_monthly_usd` of its stack file (None: no budget set)."""
    from infra.config import stack_file

    budget = budget_of(plan, stack, load_prices())
    if budget is not None and not budget.kept:
        could = (
            "has no maximum (a pool without limits)"
            if budget.maximum is None
            else f"could cost ${budget.maximum:,.2f} in a {LONGEST_MONTH_HOURS}-hour month"
        )
        raise BudgetExceeded(
            f"{stack} {could} with every pool at its maximum, above cost.max_monthly_usd (${budget.usd:,.2f}) in "
            f"{stack_file(stack)}; lower the pools' maxima or raise the budget in a reviewed change "
            f"(`mlplat cost --env {stack}` itemises it)"
        )
    return budget


# --- output ----------------------------------------------------------------------------------------


def _usd(value: float | None) -> str:
    return "no maximum" if value is None else f"${value:,.2f}"


def render_text(result: Estimate, source: str, prices: PriceTable, budget: Budget | None) -> str:
    width = max([len(line.item) for line in result.lines] + [40]) + 2
    lines = [
        f"mlplat cost {result.stack} ({result.region}), monthly USD, from {source}",
        f"prices of {prices.taken} from {PRICES.name}; * = price not confirmed (see the table's `basis`)",
        f"  {'item':<{width}} {'idle':>12} {'max':>12}",
    ]
    for line in result.lines:
        mark = " *" if line.unverified else ""
        lines.append(f"  {line.item:<{width}} {_usd(line.idle):>12} {_usd(line.max):>12}{mark}")
    lines.append(
        f"  {'TOTAL':<{width}} {_usd(result.idle):>12} {_usd(result.max):>12}{' *' if result.unverified else ''}"
    )
    if budget is not None:
        lines.append(
            f"budget cost.max_monthly_usd: {_usd(budget.usd)} — the maximum over a {LONGEST_MONTH_HOURS}-hour "
            f"month (31 days), {_usd(budget.maximum)}, is {'within' if budget.kept else 'ABOVE'} it"
        )
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def _by_item(result: Estimate) -> dict[str, Line]:
    return {line.key: line for line in result.lines}


def render_diff(base: Estimate, head: Estimate, prices_changed: bool = False) -> str:
    """Markdown: what a change does to the environment's monthly cost, idle and at maximum; with
    `prices_changed`, that part of it is the price table's, not the plans'."""

    def delta(a: float | None, b: float | None) -> str:
        if a is None or b is None:
            return "n/a" if a is b else ("now bounded" if b is not None else "NOW UNBOUNDED")
        return f"{b - a:+,.2f}"

    rows = [
        f"### Cost of `{head.stack}` ({head.region}), USD per month",
        "",
        "| | idle | max |",
        "|---|---:|---:|",
        f"| base | {_usd(base.idle)} | {_usd(base.max)} |",
        f"| head | {_usd(head.idle)} | {_usd(head.max)} |",
        f"| **change** | **{delta(base.idle, head.idle)}** | **{delta(base.max, head.max)}** |",
    ]
    old, new = _by_item(base), _by_item(head)
    gone = Line("", "", 0.0, 0.0)
    changed = [
        k
        for k in sorted(set(old) | set(new))
        if (old.get(k, gone).idle, old.get(k, gone).max) != (new.get(k, gone).idle, new.get(k, gone).max)
    ]
    if changed:
        rows += ["", "| item (head; ~~removed~~) | idle | max |", "|---|---:|---:|"]
        for key in changed:
            a, b = old.get(key, gone), new.get(key)
            label = b.item if b else f"~~{a.item}~~"
            b = b or gone
            rows.append(f"| {label} | {delta(a.idle, b.idle)} | {delta(a.max, b.max)} |")
    else:
        rows += ["", "No priced item changed."]
    if prices_changed:
        rows += [
            "",
            f"**Price table changed** (`infra/{PRICES.name}`): the base is priced with its own table, the head with its own.",
        ]
    if head.unverified:
        rows += ["", "Some prices are not confirmed (`verified: false` in `infra/cost_prices.yaml`)."]
    return "\n".join(rows) + "\n"


# --- command line ----------------------------------------------------------------------------------


def _read_plan(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(256 * 2**20 + 1)
    except OSError as err:
        raise CostError(
            f"{path}: cannot read the plan: {err.strerror} (write it with `mlplat plan`)"
        ) from None
    try:
        plan = json.loads(raw)
    except (ValueError, RecursionError):
        raise CostError(f"{path}: not a JSON plan file (write it with `mlplat plan`)") from None
    if not isinstance(plan, dict) or plan.get("kind") != "offline-plan":
        raise CostError(f"{path}: not an offline plan written by `mlplat plan`")
    return plan


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("cost", help="monthly cost of an environment, idle and at its maximum")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--env", choices=ENVIRONMENTS, help="plan the environment now and price it")
    source.add_argument("--plan", type=Path, help="price a plan file written by `mlplat plan`")
    source.add_argument(
        "--diff", nargs=2, type=Path, metavar=("BASE_PLAN", "HEAD_PLAN"), help="markdown cost change"
    )
    parser.add_argument(
        "--base-checkout",
        type=Path,
        metavar="DIR",
        help="with --diff: the base's checkout, whose infra/cost_prices.yaml and stack file price BASE_PLAN "
        "(default: this checkout's)",
    )
    parser.add_argument(
        "--on",
        type=_day,
        metavar="YYYY-MM-DD",
        help="price the EKS control planes as billed on this day (their versions' support window; "
        "default: today in UTC)",
    )
    parser.set_defaults(func=run)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def run(args: argparse.Namespace) -> int:
    from infra.config import ConfigError
    from mlplat.plan import PlanError, run_program

    # The stack files it checks budgets against are read from beside the code that runs (infra.config).
    checkout.own_code(args, "mlplat cost reads the stack files beside its own code")
    try:
        if args.base_checkout and not args.diff:
            raise CostError("--base-checkout prices the base of a --diff; it goes with --diff only")
        prices = load_prices()
        if args.diff:
            base, head = (_read_plan(p) for p in args.diff)
            if base.get("stack") != head.get("stack"):
                raise CostError(
                    f"{args.diff[0]} plans {base.get('stack')}, {args.diff[1]} plans {head.get('stack')}"
                )
            # The base priced as the base would price itself: its own price table and stack settings.
            base_prices = (
                load_prices(args.base_checkout / PRICES.relative_to(REPO)) if args.base_checkout else prices
            )
            print(
                render_diff(
                    price_plan(base, base_prices, args.on, args.base_checkout),
                    price_plan(head, prices, args.on),
                    base_prices != prices,
                ),
                end="",
            )
            return 0
        plan, source = (
            (run_program(args.env), "a fresh offline plan")
            if args.env
            else (_read_plan(args.plan), str(args.plan))
        )
        result = price_plan(plan, prices, args.on)
        budget = budget_of(plan, result.stack, prices, args.on)
    except (ConfigError, PlanError, CostError) as err:
        print(f"mlplat cost: {err}", file=sys.stderr)
        return 2
    print(render_text(result, source, prices, budget))
    return 1 if budget is not None and not budget.kept else 0
