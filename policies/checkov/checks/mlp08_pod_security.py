"""CKV_MLP_8: no privileged, root, host-namespace, hostPath or added-capability pods.

Model servers run third-party code on shared GPU nodes; any of these turns a compromised model
server into a compromised node.
"""

from __future__ import annotations

from typing import Any

from _mlplat import POD_KINDS, MlplatCheck, dicts, mapping, pod_specs


def root_settings(path: str, security_context: dict[str, Any]) -> list[str]:
    problems = []
    if security_context.get("runAsUser") == 0:
        problems.append(f"{path}/securityContext/runAsUser")
    if security_context.get("runAsNonRoot") is False:
        problems.append(f"{path}/securityContext/runAsNonRoot")
    return problems


class PodSecurity(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name="No privileged or root containers, privilege escalation, host namespaces, hostPath "
            "volumes or added capabilities",
            id="CKV_MLP_8",
            supported_entities=POD_KINDS,
            fix="remove privileged, allowPrivilegeEscalation: true, runAsUser: 0, runAsNonRoot: false, "
            "hostNetwork/hostPID/hostIPC, hostPath volumes and capabilities.add; mount data via the "
            "storage initializer or a PVC",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        problems = []
        for pod in pod_specs(conf):
            problems += [
                f"{pod.path}/{key}" for key in ("hostNetwork", "hostPID", "hostIPC") if pod.conf.get(key)
            ]
            problems += [
                f"{pod.path}/volumes/[{i}]/hostPath"
                for i, volume in enumerate(dicts(pod.conf.get("volumes")))
                if "hostPath" in volume
            ]
            problems += root_settings(pod.path, mapping(pod.conf.get("securityContext")))
            for container in pod.containers():
                context = mapping(container.conf.get("securityContext"))
                where = f"{container.path}/securityContext"
                if context.get("privileged"):
                    problems.append(f"{where}/privileged")
                if context.get("allowPrivilegeEscalation"):
                    problems.append(f"{where}/allowPrivilegeEscalation")
                if mapping(context.get("capabilities")).get("add"):
                    problems.append(f"{where}/capabilities/add")
                problems += root_settings(container.path, context)
        return problems


check = PodSecurity()
