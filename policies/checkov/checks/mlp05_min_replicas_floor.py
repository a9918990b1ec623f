"""CKV_MLP_5: every component runs at least the environment's minimum replicas (2 in prod).

One replica means every node drain, spot reclaim or rollout is an outage of the model.
"""

from __future__ import annotations

from typing import Any

from _mlplat import ISVC, MlplatCheck, env_params, is_int, pod_specs

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
        params, why = env_params(conf)
        if params is None:
            return [why]
        problems = []
        for pod in pod_specs(conf):
            low = pod.conf.get("minReplicas", KSERVE_DEFAULT_MIN_REPLICAS)
            if not is_int(low) or low < params.min_replicas:
                problems.append(f"{pod.path}/minReplicas (floor {params.min_replicas} in {params.name})")
        return problems


check = MinReplicasFloor()
