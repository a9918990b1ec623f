"""CKV_MLP_5: every component runs at least the environment's minimum replicas (2 in prod).

One replica means every node drain, spot reclaim or rollout is an outage of the model.
"""

from __future__ import annotations

from typing import Any

from _mlplat import ISVC, EnvParams, MlplatCheck, PodSpec, is_int, per_component

KSERVE_DEFAULT_MIN_REPLICAS = 1


class MinReplicasFloor(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name="minReplicas is at least the environment's min_replicas (2 in prod)",
            id="CKV_MLP_5",
            supported_entities=(ISVC,),
            fix="raise minReplicas of every component to apps.min_replicas of the environment (2 in prod)",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        return per_component(conf, floor)


def floor(pod: PodSpec, params: EnvParams) -> list[str]:
    low = pod.conf.get("minReplicas", KSERVE_DEFAULT_MIN_REPLICAS)
    if is_int(low) and low >= params.min_replicas:
        return []
    return [f"{pod.path}/minReplicas (floor {params.min_replicas} in {params.name})"]


check = MinReplicasFloor()
