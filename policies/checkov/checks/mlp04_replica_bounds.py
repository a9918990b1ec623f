"""CKV_MLP_4: every component sets minReplicas and maxReplicas, within the environment's cap.

An unbounded autoscaler can take every GPU of the environment; the cap per app keeps one
model's traffic spike from starving the others.
"""

from __future__ import annotations

from typing import Any

from _mlplat import ISVC, EnvParams, MlplatCheck, PodSpec, is_int, per_component


class ReplicaBounds(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name="minReplicas and maxReplicas are set and maxReplicas is within the environment's cap",
            id="CKV_MLP_4",
            supported_entities=(ISVC,),
            fix="set minReplicas and maxReplicas on predictor, transformer and explainer, with "
            "minReplicas <= maxReplicas <= apps.max_replicas_per_app of the environment",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        return per_component(conf, bounds)


def bounds(pod: PodSpec, params: EnvParams) -> list[str]:
    problems = []
    low, high = pod.conf.get("minReplicas"), pod.conf.get("maxReplicas")
    if not is_int(low) or low < 0:
        problems.append(f"{pod.path}/minReplicas (missing, or not an integer)")
    if not is_int(high) or high < 1:
        problems.append(f"{pod.path}/maxReplicas (missing, or not a positive integer)")
    elif high > params.max_replicas_per_app:
        problems.append(f"{pod.path}/maxReplicas (cap {params.max_replicas_per_app} in {params.name})")
    elif is_int(low) and low > high:
        problems.append(f"{pod.path}/minReplicas (above maxReplicas)")
    return problems


check = ReplicaBounds()
