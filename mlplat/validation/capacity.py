"""Will the environment run it? GPU fit per pool and the environment's GPU cap, and
(mlplat.validation.resources) each pod's node pool and its CPU/memory fit on that pool's nodes,
all read from the same typed stack config the Pulumi program uses (`infra.config`).

Each rule has one engine: replica bounds are checkov's CKV_MLP_4 and CKV_MLP_5 (every component, not
only the predictor), and "a GPU pod selects an existing GPU pool" is CKV_MLP_3
(policies/checkov/checks), both run by `mlplat validate`'s scan; this module judges only what they
cannot (whether the pool's nodes hold the pod, and the environment's GPU total).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra.config import GpuPoolConfig, StackConfig
from infra.contract import GPU_MEMORY_ANNOTATION as GPU_MEMORY
from infra.contract import GPU_POOL_LABEL as POOL_LABEL
from mlplat.findings import Finding, RenderedDoc
from mlplat.validation import resources
from mlplat.validation.render import SourceIndex

GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class GpuDemand:
    doc: RenderedDoc
    gpus: int  # per replica
    max_replicas: int


def _quantity(value: Any) -> int:
    """A count read the way Kubernetes reads the quantity (`"1e1"` and `"10000m"` are 10, not 0 as
    `int()` made them, which let them past GPU-FIT, GPU-CAP and scaling when CKV_MLP_2 was waived),
    rounded up so a fraction never counts for less than asked. 0 for what is no quantity at all: the
    schema check (MLP-SCHEMA) and CKV_MLP_2 report that."""
    amount = resources.parse_quantity(value)
    return max(0, math.ceil(amount)) if amount is not None else 0


def _predictor_containers(predictor: dict[str, Any]) -> list[dict[str, Any]]:
    containers = [c for c in predictor.get("containers") or [] if isinstance(c, dict)]
    model = predictor.get("model")
    return containers + ([model] if isinstance(model, dict) else [])


AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"


def autoscaler_class(isvc: dict[str, Any]) -> str:
    """KServe's autoscaler class of an InferenceService; `hpa` when unset (Standard mode's default)."""
    meta = isvc.get("metadata")
    annotations = (meta.get("annotations") if isinstance(meta, dict) else None) or {}
    return str(annotations.get(AUTOSCALER_CLASS, "hpa"))


def replica_range(isvc: dict[str, Any]) -> tuple[int, int]:
    """The fewest and the most predictor replicas KServe runs for an InferenceService (kserve/kserve
    v0.20.0, pkg/controller/v1beta1/inferenceservice/reconcilers/):
    - class `none`: exactly `minReplicas` (deployment/deployment_reconciler.go sets the Deployment's
      replicas to it, 0 included; unset leaves Kubernetes' default of 1);
    - otherwise the HPA's bounds (hpa/hpa_reconciler.go `createHPA`; keda/keda_reconciler.go does the
      same): `minReplicas` unset or below `constants.DefaultMinReplicas` (1) is 1, and a `maxReplicas`
      unset or below that floor is raised to it. So `minReplicas: 3` alone runs 3 replicas, not 1: the
      GPU cap and the ScaledObject bounds count what runs.
    A value that is not an integer (refused by the CRD's schema, reported by validate's schema check)
    counts as unset."""
    spec = isvc.get("spec")
    predictor = (spec.get("predictor") if isinstance(spec, dict) else None) or {}

    def integer(key: str) -> int | None:
        value = predictor.get(key) if isinstance(predictor, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    low, high = integer("minReplicas"), integer("maxReplicas")
    if autoscaler_class(isvc) == "none":
        fixed = 1 if low is None else low
        return fixed, fixed
    floor = 1 if low is None else max(low, 1)
    return floor, floor if high is None else max(high, floor)


def gpus_per_replica(predictor: dict[str, Any]) -> int:
    """GPUs a predictor pod asks for: the larger of request and limit, summed over containers."""
    total = 0
    for container in _predictor_containers(predictor):
        resources = container.get("resources") or {}
        total += max(_quantity((resources.get(k) or {}).get(GPU, 0)) for k in ("requests", "limits"))
    return total


def check(
    docs: Sequence[RenderedDoc],
    config: StackConfig,
    env: str,
    index: SourceIndex,
    others: Sequence[RenderedDoc] = (),
) -> list[Finding]:
    """MLP-GPU-FIT, MLP-NODE-POOL and MLP-RESOURCE-* per InferenceService; MLP-GPU-CAP once for the
    environment.

    `others` are the environment's apps outside this run: they count towards the cap only.
    """
    findings: list[Finding] = []
    demands = [d for d in map(demand, others) if d is not None]
    for doc in docs:  # demand() and resources.problems() judge InferenceServices only

        def finding(
            rule: str, message: str, fix: str, path: str | None = None, doc: RenderedDoc = doc
        ) -> Finding:
            return Finding(doc.source_file, doc.ref, rule, message, fix, env, index.line(doc), path)

        findings += [finding(p.rule, p.message, p.fix, p.path) for p in resources.problems(doc.doc, config)]
        wants = demand(doc)
        if wants is not None:
            predictor = (doc.doc.get("spec") or {}).get("predictor") or {}
            findings += _fit(doc, predictor, wants.gpus, config, env, finding)
            demands.append(wants)
    return findings + _cap(demands, config, env)


def demand(doc: RenderedDoc) -> GpuDemand | None:
    """The GPUs an InferenceService asks for per replica and the most replicas it runs; None without GPUs."""
    if doc.doc.get("kind") != "InferenceService":
        return None
    predictor = (doc.doc.get("spec") or {}).get("predictor") or {}
    gpus = gpus_per_replica(predictor)
    return GpuDemand(doc, gpus, replica_range(doc.doc)[1]) if gpus else None


def _fit(
    doc: RenderedDoc, predictor: dict[str, Any], gpus: int, config: StackConfig, env: str, finding: Any
) -> list[Finding]:
    """MLP-GPU-FIT: some pool the predictor may land on holds its GPUs (and GPU memory) on one node.
    Selecting no pool or one that does not exist is CKV_MLP_3's finding; a pool that exists but may
    not grow (max_size 0) is this one's."""
    wanted = (predictor.get("nodeSelector") or {}).get(POOL_LABEL)
    pools = landing_pools(predictor, config)
    names = ", ".join(f"{p.name} ({p.gpus_per_node} x {p.gpu_memory_gib} GiB)" for p in config.gpu.pools)
    if not pools:
        if wanted not in {p.name for p in config.gpu.pools}:
            return []
        return [
            finding(
                "MLP-GPU-FIT",
                f"GPU pool {wanted!r} in {env} has max_size 0: it never launches a node (pools: {names})",
                f"select a pool that may grow, or raise gpu.pools[{wanted}].max_size in environments/Pulumi.{env}.yaml",
                _gpu_choice(predictor, True),
            )
        ]
    memory = _quantity(((doc.doc.get("metadata") or {}).get("annotations") or {}).get(GPU_MEMORY, 0))
    if any(_holds(p, gpus, memory) for p in pools):
        return []
    need = f"{gpus} GPU(s)" + (f" of {memory} GiB" if memory else "")
    return [
        finding(
            "MLP-GPU-FIT",
            f"no node of {'pool ' + repr(wanted) if wanted else 'any GPU pool'} in {env} holds {need} per replica "
            f"(pools: {names})",
            "request fewer GPUs or less memory per replica, or select a larger pool",
            _gpu_choice(predictor, bool(wanted)),
        )
    ]


def _gpu_choice(predictor: dict[str, Any], selects: bool) -> str | None:
    """Where the pod chose what does not fit: its pool selector, else its first GPU request."""
    if selects:
        return "spec/predictor/nodeSelector/" + POOL_LABEL.replace("/", "~1")
    models = [("model", predictor.get("model"))]
    containers = [(f"containers/[{i}]", c) for i, c in enumerate(predictor.get("containers") or [])]
    for where, container in models + containers:
        resources = container.get("resources") if isinstance(container, dict) else None
        for kind in ("requests", "limits"):
            if GPU in ((resources or {}).get(kind) or {}):
                return f"spec/predictor/{where}/resources/{kind}/{GPU.replace('/', '~1')}"
    return None


def landing_pools(predictor: dict[str, Any], config: StackConfig) -> list[GpuPoolConfig]:
    """The GPU pools a predictor may land on: the one its nodeSelector names, else every pool that is not
    time-sliced (a time-sliced pool's nodes carry an extra taint: only a predictor naming it lands there)."""
    wanted = (predictor.get("nodeSelector") or {}).get(POOL_LABEL)
    return [
        p
        for p in config.gpu.pools
        if (wanted == p.name or (wanted is None and not p.time_slicing_replicas)) and p.max_size > 0
    ]


def _holds(pool: GpuPoolConfig, gpus: int, memory: int) -> bool:
    """One node of `pool` holds a replica: on a time-sliced pool one slice (the device plugin refuses more,
    infra/services/gpu_operator.py) and its share of the GPU's memory, which the slices do not isolate."""
    if pool.time_slicing_replicas:
        return gpus == 1 and memory <= pool.gpu_memory_gib // pool.time_slicing_replicas
    return gpus <= pool.gpus_per_node and memory <= pool.gpu_memory_gib


def _physical_gpus(demand: GpuDemand, config: StackConfig) -> float:
    """GPUs one replica holds: a slice of a time-sliced pool is 1/time_slicing_replicas of a GPU."""
    predictor = (demand.doc.doc.get("spec") or {}).get("predictor") or {}
    wanted = (predictor.get("nodeSelector") or {}).get(POOL_LABEL)
    pool = next((p for p in config.gpu.pools if p.name == wanted), None)
    return demand.gpus / pool.time_slicing_replicas if pool and pool.time_slicing_replicas else demand.gpus


def _cap(demands: list[GpuDemand], config: StackConfig, env: str) -> list[Finding]:
    """MLP-GPU-CAP: every GPU app at maxReplicas together stays within gpu.max_total_gpus."""
    total = sum(_physical_gpus(d, config) * d.max_replicas for d in demands)
    cap = config.gpu.max_total_gpus
    if total <= cap:
        return []
    parts = ", ".join(f"{d.doc.doc['metadata'].get('name')}={d.gpus}x{d.max_replicas}" for d in demands)
    return [
        Finding(
            f"environments/Pulumi.{env}.yaml", "-", "MLP-GPU-CAP",
            f"GPU apps of {env} need {total:g} GPUs at maxReplicas, above gpu.max_total_gpus {cap} ({parts})",
            "lower maxReplicas or GPUs per replica of a GPU app, or raise the cap in the stack config",
            env,
        )
    ]  # fmt: skip
