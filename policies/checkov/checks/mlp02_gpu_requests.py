"""CKV_MLP_2: a GPU is requested through limits, request equals limit, and the GPU taint is tolerated.

Kubernetes schedules extended resources by their limit and refuses request != limit; GPU nodes
carry the taint `nvidia.com/gpu=true:NoSchedule`, so without the toleration the pod never schedules.
"""

from __future__ import annotations

from typing import Any

from _mlplat import GPU_RESOURCE, POD_KINDS, MlplatCheck, dicts, pod_specs, quantity


def tolerates_gpu_taint(toleration: dict[str, Any]) -> bool:
    if toleration.get("key") != GPU_RESOURCE or toleration.get("effect") not in (None, "", "NoSchedule"):
        return False
    if toleration.get("operator") == "Exists":
        return True
    return toleration.get("operator") in (None, "Equal") and str(toleration.get("value")) == "true"


class GpuRequests(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name="GPU requests are whole limits equal to the request, with the nvidia.com/gpu toleration",
            id="CKV_MLP_2",
            supported_entities=POD_KINDS,
            fix="set resources.limits['nvidia.com/gpu'] to a whole number (requests equal or unset) and "
            "add the toleration {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        problems = []
        for pod in pod_specs(conf):
            gpu_containers = pod.gpu_containers()
            for container in gpu_containers:
                limit = quantity(container.resources("limits").get(GPU_RESOURCE))
                request = quantity(container.resources("requests").get(GPU_RESOURCE))
                if not limit.isdigit() or int(limit) < 1:
                    problems.append(f"{container.path}/resources/limits/{GPU_RESOURCE}")
                elif request and request != limit:
                    problems.append(f"{container.path}/resources/requests/{GPU_RESOURCE}")
            if gpu_containers and not any(tolerates_gpu_taint(t) for t in dicts(pod.conf.get("tolerations"))):
                problems.append(f"{pod.path}/tolerations")
        return problems


check = GpuRequests()
