"""Will a model pod ever start? Its node pool, its CPU and memory quantities, and whether they fit a node.

Rules (apps/README.md):
- MLP-NODE-POOL: a CPU model pod selects the CPU model pool (`mlplat/pool: models-cpu`) and tolerates
  its taint; one that selects no pool would land on the system node group that runs the platform.
- MLP-RESOURCE-QUANTITY: a CPU or memory request/limit the quantity grammar admits but that makes no
  sense (negative; memory in thousandths of a byte, `512m` meant as `512Mi`). A value outside the
  grammar (`4 cores`, a bare float `0.5`) is MLP-SCHEMA's: the CRD's pattern refuses it, and that
  finding says how to write it; such a value is left out of the fit.
- MLP-RESOURCE-LIMITS: a limit below its request (the API server rejects the pod).
- MLP-RESOURCE-FIT: the pod's requests do not fit one node of the pool it can land on.

What a node offers comes from infra/instance_types.py (the pool's instance types in the same typed stack
config the Pulumi program reads): Karpenter's own estimate of allocatable memory, since it launches a node
only for a pod that fits that estimate, minus what the DaemonSets every node runs request.
A pod requests the sum of its containers' requests, or its largest init container's when that is more
(https://kubernetes.io/docs/concepts/workloads/pods/init-containers/#resource-sharing-within-containers);
a container with a limit and no request requests its limit (Kubernetes defaulting). KServe's own injected
containers (storage initializer, agent) are not in the manifest and are not counted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from infra.config import (
    CPU_MODEL_POOL_NAME,
    CPU_MODEL_POOL_TAINT_EFFECT,
    GPU_POOL_LABEL,
    NODE_POOL_LABEL,
    SYSTEM_POOL_NAME,
    StackConfig,
)
from infra.instance_types import DAEMONSET_ALLOWANCE_CPU_M, DAEMONSET_ALLOWANCE_MEMORY_MIB, NODE_SHAPES
from mlplat.validation.podsecurity import containers, pod_templates

NODE_POOL = "MLP-NODE-POOL"
QUANTITY = "MLP-RESOURCE-QUANTITY"
LIMITS = "MLP-RESOURCE-LIMITS"
FIT = "MLP-RESOURCE-FIT"
GPU = "nvidia.com/gpu"
COMPONENT = "apps/components/cpu-model-pool"
MIB = 2**20

# The quantity grammar of k8s.io/apimachinery/pkg/api/resource (quantity.go, `ParseQuantity`):
# a signed decimal number, then a binary SI suffix, a decimal SI suffix or a decimal exponent.
_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<decimal>[mkMGTPE])|[eE](?P<exponent>[+-]?[0-9]+))?",
    re.ASCII,
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: dict[str, Fraction] = {
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}


def parse_quantity(value: Any) -> Fraction | None:
    """The exact value of a Kubernetes quantity (`100m`, `4Ti`, `1.5`, `2e3`, `512Mi` vs `512M`); None
    when Kubernetes could not read it. YAML numbers count (the API server reads JSON numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value)) if math.isfinite(value) else None
    if not isinstance(value, str) or len(value) > 64:
        return None
    match = _QUANTITY.fullmatch(value)
    if match is None:
        return None
    number = Fraction(match["number"])
    if match["binary"]:
        number *= _BINARY[match["binary"]]
    elif match["decimal"]:
        number *= _DECIMAL[match["decimal"]]
    elif match["exponent"]:
        exponent = int(match["exponent"])
        if abs(exponent) > 30:  # beyond any real resource; keeps the arithmetic small
            return None
        number *= Fraction(10**exponent) if exponent >= 0 else Fraction(1, 10**-exponent)
    return -number if match["sign"] == "-" else number


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class Demand:
    """What one container asks for: CPU in millicores and memory in MiB (rounded up, as the
    scheduler counts), with the key path that sets each."""

    cpu_m: int
    memory_mib: int
    cpu_path: str | None
    memory_path: str | None


@dataclass(frozen=True)
class Problem:
    rule: str
    path: str | None  # None: a key that is missing; the finding names the object's own line
    message: str
    fix: str


def _container_demand(path: str, container: dict[str, Any], problems: list[Problem]) -> Demand:
    resources = container.get("resources")
    resources = resources if isinstance(resources, dict) else {}
    values: dict[tuple[str, str], tuple[Fraction, str]] = {}
    for kind in ("requests", "limits"):
        section = resources.get(kind)
        for name in ("cpu", "memory"):
            if not isinstance(section, dict) or name not in section:
                continue
            raw, where = section[name], f"{path}/resources/{kind}/{name}"
            amount = None if isinstance(raw, float) else parse_quantity(raw)
            if amount is None:
                # MLP-SCHEMA owns values outside the quantity grammar (the CRD's pattern, integer or
                # string): it names the key and says how to write it, e.g. to quote a bare float.
                continue
            example = "`500m` or `2`" if name == "cpu" else "`512Mi` or `4Gi`"
            if amount < 0:
                problems.append(
                    Problem(
                        QUANTITY,
                        where,
                        f"{kind}.{name} {raw!r} is negative",
                        f"write a positive quantity, e.g. {name}: {example}",
                    )
                )
                continue
            if name == "memory" and isinstance(raw, str) and raw.endswith("m"):
                problems.append(Problem(
                    QUANTITY, where, f"{kind}.memory {raw!r} is {raw[:-1]} thousandths of a byte (`m` is milli)",
                    f"write mebibytes as `{raw[:-1]}Mi` (or gibibytes as `Gi`)",
                ))  # fmt: skip
                continue
            values[(kind, name)] = (amount, where)
    for name in ("cpu", "memory"):
        request, limit = values.get(("requests", name)), values.get(("limits", name))
        if request and limit and limit[0] < request[0]:
            problems.append(Problem(
                LIMITS, limit[1], f"limits.{name} {_show(name, limit[0])} is below requests.{name} "
                f"{_show(name, request[0])}: the API server rejects the pod",
                f"raise limits.{name} to at least requests.{name}, or lower the request",
            ))  # fmt: skip
    wanted = {
        name: values.get(("requests", name)) or values.get(("limits", name)) for name in ("cpu", "memory")
    }
    cpu, memory = wanted["cpu"], wanted["memory"]
    return Demand(
        math.ceil(cpu[0] * 1000) if cpu else 0,
        math.ceil(memory[0] / MIB) if memory else 0,
        cpu[1] if cpu else None,
        memory[1] if memory else None,
    )


def _show(name: str, amount: Fraction) -> str:
    return f"{math.ceil(amount * 1000)}m" if name == "cpu" else f"{math.ceil(amount / MIB)}Mi"


def _gpus(pod_path: str, pod: dict[str, Any]) -> bool:
    for _, container in containers(pod_path, pod):
        resources = container.get("resources")
        for kind in ("requests", "limits"):
            section = resources.get(kind) if isinstance(resources, dict) else None
            if isinstance(section, dict) and parse_quantity(section.get(GPU, 0)):
                return True
    return False


def _merged(base: Any, override: Any) -> Any:
    """A canary predictor as KServe runs it: its own fields over the predictor's (`mergo.Merge`, lists
    and scalars taken whole when set)."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in override.items()}}
    return base if override in (None, [], {}, "") else override


def _pods(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    predictor = (doc.get("spec") or {}).get("predictor") if isinstance(doc.get("spec"), dict) else None
    for path, pod in pod_templates(doc):
        if path.startswith("spec/canary/") and isinstance(predictor, dict):
            pod = _merged(predictor, pod)
        yield path, pod


@dataclass(frozen=True)
class Pool:
    name: str
    instance_types: tuple[str, ...]
    what: str  # how a finding names it


def problems(doc: dict[str, Any], config: StackConfig) -> list[Problem]:
    """Every pod of an InferenceService: its pool, its quantities, and its fit on that pool's nodes."""
    if doc.get("kind") != "InferenceService":
        return []
    found: list[Problem] = []
    for pod_path, pod in _pods(doc):
        mine: list[Problem] = []
        parts = [(path, _container_demand(path, c, mine)) for path, c in containers(pod_path, pod)]
        if not parts:
            continue
        pool = _pool(pod_path, pod, config, mine)
        if pool is not None:
            mine += _fit(pod_path, parts, pool)
        if pod_path.startswith("spec/canary/"):
            # A canary inherits the predictor's values: a mistake is reported where it is written, once.
            mine = [p for p in mine if _written(doc, p.path or f"{pod_path}/nodeSelector")]
        found += mine
    return found


def _written(doc: dict[str, Any], path: str) -> bool:
    """Whether the object itself holds the key path (list items as [N], "/" in a key as ~1)."""
    node: Any = doc
    for part in path.split("/"):
        if part.startswith("[") and isinstance(node, list):
            index = int(part[1:-1])
            node = node[index] if index < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part.replace("~1", "/").replace("~0", "~"))
        else:
            return False
        if node is None:
            return False
    return True


def _pool(pod_path: str, pod: dict[str, Any], config: StackConfig, found: list[Problem]) -> Pool | None:
    """The node pool the pod can land on (None when it can land nowhere we can size)."""
    selector = pod.get("nodeSelector")
    selector = selector if isinstance(selector, dict) else {}
    where = f"{pod_path}/nodeSelector"
    component = pod_path.removeprefix("spec/")
    # The component sets the predictor's placement; any other pod (transformer, explainer) sets its own.
    how = (
        f"include {COMPONENT} in the app's base"
        if component == "predictor"
        else f"set `nodeSelector: {{{NODE_POOL_LABEL}: {CPU_MODEL_POOL_NAME}}}` and the toleration of "
        f"{COMPONENT} on spec.{component.replace('/', '.')} (the component places the predictor only)"
    )
    if pod.get("nodeName"):
        found.append(Problem(
            NODE_POOL, f"{pod_path}/nodeName",
            f"{component} pins its pod to node {pod['nodeName']!r}: nodeName skips the scheduler, pools and taints",
            f"remove nodeName; {how}",
        ))  # fmt: skip
        return None
    if _gpus(pod_path, pod):
        wanted = selector.get(GPU_POOL_LABEL)
        pools = [p for p in config.gpu.pools if wanted in (None, p.name) and p.max_size > 0]
        if not pools:
            return None  # no such pool: CKV_MLP_3's finding; one at max_size 0: MLP-GPU-FIT's
        types = tuple(t for p in pools for t in p.instance_types)
        return Pool(wanted or "any GPU pool", types, f"GPU pool {wanted}" if wanted else "the GPU pools")
    if GPU_POOL_LABEL in selector:
        found.append(Problem(
            NODE_POOL, f"{where}/{_escape(GPU_POOL_LABEL)}",
            f"selects GPU pool {selector[GPU_POOL_LABEL]!r} but requests no {GPU}: it would hold a GPU node for CPU work",
            f"remove the GPU pool selector and include {COMPONENT}, or request {GPU}",
        ))  # fmt: skip
        return None
    chosen = selector.get(NODE_POOL_LABEL)
    if chosen is None:
        found.append(Problem(
            NODE_POOL, where if selector else None,
            f"{component} selects no node pool: the pod would land on the system node group that runs the platform "
            f"(no `{NODE_POOL_LABEL}: {CPU_MODEL_POOL_NAME}` in nodeSelector)",
            f"{how} (nodeSelector and toleration of the CPU model pool)",
        ))  # fmt: skip
        return None
    if chosen != CPU_MODEL_POOL_NAME:
        why = (
            "the system node group, which runs the platform" if chosen == SYSTEM_POOL_NAME else "no node pool"
        )
        found.append(Problem(
            NODE_POOL, f"{where}/{_escape(NODE_POOL_LABEL)}",
            f"selects `{NODE_POOL_LABEL}: {chosen}`: that is {why}",
            f"select `{NODE_POOL_LABEL}: {CPU_MODEL_POOL_NAME}` through {COMPONENT}",
        ))  # fmt: skip
        return None
    if not _tolerates(pod.get("tolerations")):
        found.append(Problem(
            NODE_POOL, f"{pod_path}/tolerations" if pod.get("tolerations") else None,
            f"{component} selects the CPU model pool but does not tolerate its taint "
            f"{NODE_POOL_LABEL}={CPU_MODEL_POOL_NAME}:{CPU_MODEL_POOL_TAINT_EFFECT}: the pod would stay Pending",
            how,
        ))  # fmt: skip
        return None
    return Pool(
        CPU_MODEL_POOL_NAME,
        tuple(config.cpu_pool.instance_types),
        f"the CPU model pool ({CPU_MODEL_POOL_NAME})",
    )


def _tolerates(tolerations: Any) -> bool:
    """Kubernetes' ToleratesTaint for the CPU model pool's taint."""
    for toleration in tolerations if isinstance(tolerations, list) else []:
        if not isinstance(toleration, dict):
            continue
        effect = toleration.get("effect")
        if effect not in (None, "", CPU_MODEL_POOL_TAINT_EFFECT):
            continue
        key, operator = toleration.get("key"), toleration.get("operator") or "Equal"
        if operator == "Exists" and key in (None, "", NODE_POOL_LABEL):
            return True
        if operator == "Equal" and key == NODE_POOL_LABEL and toleration.get("value") == CPU_MODEL_POOL_NAME:
            return True
    return False


def _fit(pod_path: str, parts: list[tuple[str, Demand]], pool: Pool) -> list[Problem]:
    init = [d for path, d in parts if "/initContainers/" in path]
    main = [d for path, d in parts if "/initContainers/" not in path and "/ephemeralContainers/" not in path]
    cpu = max([sum(d.cpu_m for d in main), *(d.cpu_m for d in init)])
    memory = max([sum(d.memory_mib for d in main), *(d.memory_mib for d in init)])
    shapes = {t: NODE_SHAPES[t] for t in pool.instance_types if t in NODE_SHAPES}
    if not shapes or len(shapes) < len(set(pool.instance_types)):
        return []  # a size we do not know: no verdict rather than a guess
    room = {
        t: (
            s.allocatable_cpu_m - DAEMONSET_ALLOWANCE_CPU_M,
            s.karpenter_memory_mib - DAEMONSET_ALLOWANCE_MEMORY_MIB,
        )
        for t, s in shapes.items()
    }
    if any(cpu <= c and memory <= m for c, m in room.values()):
        return []
    sizes = ", ".join(f"{t} {c}m/{m}Mi" for t, (c, m) in sorted(room.items()))
    key = "cpu_pool.instance_types" if pool.name == CPU_MODEL_POOL_NAME else "gpu.pools[].instance_types"
    # No environment name in the text: environments whose pools are alike get one finding listing them.
    fix_pool = f"or give the pool a larger instance type ({key} in environments/Pulumi.<env>.yaml)"
    what = (
        f"the {pod_path.removeprefix('spec/')} pod requests {cpu}m CPU and {memory}Mi memory; no node of "
        f"{pool.what} holds it: per node, after kube-reserved, the eviction threshold and "
        f"{DAEMONSET_ALLOWANCE_CPU_M}m/{DAEMONSET_ALLOWANCE_MEMORY_MIB}Mi for DaemonSets, pods get {sizes}"
    )
    # Point at the container asking for the most of what does not fit: that is the value to change.
    found = []
    if cpu > max(c for c, _ in room.values()):
        path = max(parts, key=lambda p: p[1].cpu_m)[1].cpu_path
        most = max(c for c, _ in room.values())
        found.append(
            Problem(FIT, path or pod_path, f"CPU: {what}", f"request at most {most}m CPU per pod, {fix_pool}")
        )
    if memory > max(m for _, m in room.values()) or not found:
        path = max(parts, key=lambda p: p[1].memory_mib)[1].memory_path
        most = max([m for c, m in room.values() if cpu <= c] or [m for _, m in room.values()])
        found.append(
            Problem(
                FIT,
                path or pod_path,
                f"memory: {what}",
                f"request at most {most}Mi memory per pod, {fix_pool}",
            )
        )
    return found
