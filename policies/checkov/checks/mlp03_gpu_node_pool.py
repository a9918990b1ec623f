"""CKV_MLP_3: a pod that requests a GPU selects one of the environment's GPU pools.

Tolerating the GPU taint only permits GPU nodes; pinning `mlplat/gpu-pool` keeps a one-GPU model
off the expensive multi-GPU pool and fails fast when a pool does not exist in the environment.
"""

from __future__ import annotations

from typing import Any

from _mlplat import GPU_POOL_LABEL, POD_KINDS, MlplatCheck, PodSpec, dicts, env_params, mapping, pod_specs


def required_pool_values(pod: PodSpec) -> list[list[str]] | None:
    """The pool values of each required node-affinity term; None when there is no required affinity."""
    node_affinity = mapping(mapping(pod.conf.get("affinity")).get("nodeAffinity"))
    required = mapping(node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"))
    terms = dicts(required.get("nodeSelectorTerms"))
    if not terms:
        return None
    values = []
    for term in terms:
        term_values: list[str] = []
        for expression in dicts(term.get("matchExpressions")):
            if expression.get("key") == GPU_POOL_LABEL and expression.get("operator") == "In":
                term_values += [str(v) for v in expression.get("values") or []]
        values.append(term_values)
    return values


class GpuNodePool(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name=f"GPU pods select an existing GPU node pool ({GPU_POOL_LABEL})",
            id="CKV_MLP_3",
            supported_entities=POD_KINDS,
            fix=f"add nodeSelector {{{GPU_POOL_LABEL}: <pool>}} (or a required node affinity with key "
            f"{GPU_POOL_LABEL}, operator In) naming a pool of the environment, e.g. gpu-small",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        gpu_pods = [pod for pod in pod_specs(conf) if pod.gpu_containers()]
        if not gpu_pods:
            return []
        params, why = env_params(conf)
        if params is None:
            return [why]
        problems = []
        for pod in gpu_pods:
            selected = mapping(pod.conf.get("nodeSelector")).get(GPU_POOL_LABEL)
            terms = required_pool_values(pod)
            if selected is not None:
                ok = str(selected) in params.gpu_pools
            elif terms is not None:
                # Terms are ORed: every one of them must land on a known GPU pool.
                ok = all(values and set(values) <= set(params.gpu_pools) for values in terms)
            else:
                ok = False
            if not ok:
                problems.append(f"{pod.path}/nodeSelector/{GPU_POOL_LABEL}")
        return problems


check = GpuNodePool()
