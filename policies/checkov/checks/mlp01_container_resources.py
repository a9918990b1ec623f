"""CKV_MLP_1: every serving container sets CPU and memory requests and limits.

Without requests the scheduler packs pods blindly; without limits one model can starve its
neighbours on a shared node.
"""

from __future__ import annotations

from typing import Any

from _mlplat import ISVC, MlplatCheck, pod_specs, quantity


class ContainerResources(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Serving containers set CPU and memory requests and limits",
            id="CKV_MLP_1",
            supported_entities=(ISVC,),
            fix="set resources.requests and resources.limits for cpu and memory on the model spec "
            "and on every container of predictor, transformer and explainer",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        problems = []
        for pod in pod_specs(conf):
            containers = pod.containers()
            if not containers:
                problems.append(f"{pod.path} (declares no model or container)")
            for container in containers:
                for section in ("requests", "limits"):
                    values = container.resources(section)
                    problems += [
                        f"{container.path}/resources/{section}/{name}"
                        for name in ("cpu", "memory")
                        if not quantity(values.get(name))
                    ]
        return problems


check = ContainerResources()
