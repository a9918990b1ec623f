"""MLP-POD-SECURITY: every pod template meets the Pod Security Standards' `restricted` profile.

Model namespaces enforce `restricted` (apps/README.md), so the API server would reject any pod
that does not meet it; this rule says so before merge, for every container (init and ephemeral
too) of every pod template: KServe components (predictor, transformer, explainer, canary
predictors; their `model:`/framework specs are containers), ServingRuntimes and core workloads.
Absence counts: restricted requires `allowPrivilegeEscalation: false`, `runAsNonRoot: true`,
`capabilities.drop: [ALL]` and a RuntimeDefault/Localhost seccomp profile to be set.

The controls and their allowed values are those of the Kubernetes Pod Security Standards,
https://kubernetes.io/docs/concepts/security/pod-security-standards/ (Baseline and Restricted
tables). Not covered: sysctls and the Windows-only fields beyond hostProcess.
In validate this rule replaces CKV_MLP_8 (a subset of it), so one mistake is one finding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from mlplat.findings import Finding, RenderedDoc

RULE = "MLP-POD-SECURITY"
SUPERSEDED = "CKV_MLP_8"
DOC = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
KSERVE_COMPONENTS = ("predictor", "transformer", "explainer")
# Container-like model specs of a KServe component (KServe's ModelSpec and the per-framework specs
# embed corev1.Container), as in policies/checkov/checks/_mlplat.py.
MODEL_SPEC_KEYS = (
    "model", "sklearn", "xgboost", "lightgbm", "tensorflow", "pytorch", "triton",
    "onnx", "pmml", "paddle", "huggingface", "art", "alibi",
)  # fmt: skip
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SECCOMP_OK = ("RuntimeDefault", "Localhost")
SELINUX_TYPES = ("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t")
WORKLOAD_TEMPLATES = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def canary_predictor(stable: dict[str, Any], canary: dict[str, Any]) -> dict[str, Any]:
    """The predictor KServe runs for a canary: the canary's fields merged over the stable predictor's.

    kserve/kserve v0.20.0 pkg/controller/v1beta1/inferenceservice/components/predictor.go
    buildCanaryPredictor: `mergo.Merge(&stable copy, canary.Predictor, mergo.WithOverride)`, so what
    the canary leaves out (the security contexts set by apps/components/restricted-pod included) is
    the stable predictor's. mergo skips only empty values; security fields are pointers
    (`runAsUser: 0`, `runAsNonRoot: false` are set, not empty), so every value the canary writes wins
    here, which never judges a canary safer than KServe runs it.
    """
    merged = dict(stable)
    for key, value in canary.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = canary_predictor(merged[key], value)
        elif value is not None:
            merged[key] = value
    return merged


def pod_templates(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, pod spec) of every pod template of an object."""
    kind, spec = doc.get("kind"), _map(doc.get("spec"))
    if kind == "InferenceService":
        for name in KSERVE_COMPONENTS:
            if isinstance(spec.get(name), dict):
                yield f"spec/{name}", spec[name]
                # Multi-node serving: worker pods (spec.predictor.workerSpec, a PodSpec; kserve/kserve v0.20.0
                # config/crd/full/serving.kserve.io_inferenceservices.yaml).
                if isinstance(spec[name].get("workerSpec"), dict):
                    yield f"spec/{name}/workerSpec", spec[name]["workerSpec"]
        for i, canary in enumerate(spec.get("canary") or [] if isinstance(spec.get("canary"), list) else []):
            if isinstance(_map(canary).get("predictor"), dict):
                yield (
                    f"spec/canary/[{i}]/predictor",
                    canary_predictor(_map(spec.get("predictor")), canary["predictor"]),
                )
    elif kind == "ServingRuntime" or kind == "ClusterServingRuntime":
        yield "spec", spec
    elif kind in WORKLOAD_TEMPLATES:
        node: Any = doc
        for key in WORKLOAD_TEMPLATES[str(kind)]:
            node = _map(node).get(key)
        if isinstance(node, dict):
            yield "/".join(WORKLOAD_TEMPLATES[str(kind)]), node


def containers(pod_path: str, pod: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in MODEL_SPEC_KEYS:
        if isinstance(pod.get(key), dict):
            yield f"{pod_path}/{key}", pod[key]
    for key in CONTAINER_LISTS:
        items = pod.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict):
                yield f"{pod_path}/{key}/[{i}]", item


def problems(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key path, what is wrong, how to fix it) for every restricted control an object breaks."""
    found: list[tuple[str, str, str]] = []
    for pod_path, pod in pod_templates(doc):
        found += _pod_problems(pod_path, pod)
        pod_context = _map(pod.get("securityContext"))
        for path, container in containers(pod_path, pod):
            found += _container_problems(path, container, pod_context)
    return found


def _pod_problems(path: str, pod: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = [
        (f"{path}/{key}", f"{key}: true shares the node's namespace", f"remove {key}")
        for key in ("hostNetwork", "hostPID", "hostIPC")
        if pod.get(key)
    ]
    for i, volume in enumerate(pod.get("volumes") or [] if isinstance(pod.get("volumes"), list) else []):
        for kind in sorted(set(_map(volume)) - {"name"} - RESTRICTED_VOLUMES):
            found.append((
                f"{path}/volumes/[{i}]/{kind}", f"volume type {kind} is not allowed by restricted",
                f"use one of {', '.join(sorted(RESTRICTED_VOLUMES))} (model files come through the storage initializer)",
            ))  # fmt: skip
    context = _map(pod.get("securityContext"))
    found += _identity(f"{path}/securityContext", context)
    seccomp = _map(context.get("seccompProfile")).get("type")
    if seccomp is not None and seccomp not in SECCOMP_OK:
        found.append(
            (f"{path}/securityContext/seccompProfile/type", f"seccomp profile {seccomp}", SECCOMP_FIX)
        )
    return found


SECCOMP_FIX = "set securityContext.seccompProfile.type: RuntimeDefault (or Localhost)"


def _identity(where: str, context: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Controls that pod and container security contexts share."""
    found = []
    if context.get("runAsUser") == 0:
        found.append((f"{where}/runAsUser", "runAsUser: 0 runs as root", "run as a non-zero UID, e.g. 1000"))
    if context.get("runAsNonRoot") is False:
        found.append((f"{where}/runAsNonRoot", "runAsNonRoot: false", "set runAsNonRoot: true"))
    if _map(context.get("windowsOptions")).get("hostProcess"):
        found.append((f"{where}/windowsOptions/hostProcess", "a Windows HostProcess container", "remove it"))
    selinux = _map(context.get("seLinuxOptions"))
    if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        found.append(
            (f"{where}/seLinuxOptions", "custom SELinux user, role or type", "remove seLinuxOptions")
        )
    apparmor = _map(context.get("appArmorProfile")).get("type")
    if apparmor is not None and apparmor not in SECCOMP_OK:
        found.append(
            (f"{where}/appArmorProfile/type", f"AppArmor profile {apparmor}", "remove appArmorProfile")
        )
    return found


def _container_problems(
    path: str, container: dict[str, Any], pod_context: dict[str, Any]
) -> list[tuple[str, str, str]]:
    where = f"{path}/securityContext"
    if not isinstance(container.get("securityContext"), dict):
        return [(
            where,
            "no securityContext: restricted requires allowPrivilegeEscalation: false, runAsNonRoot: true, "
            "capabilities.drop: [ALL] and a RuntimeDefault seccomp profile",
            "include the apps/components/restricted-pod component (it sets them on the predictor's model), "
            "or set them on this container",
        )]  # fmt: skip
    context = container["securityContext"]
    found = _identity(where, context)
    if context.get("privileged"):
        found.append((f"{where}/privileged", "privileged: true", "remove privileged"))
    if context.get("allowPrivilegeEscalation") is not False:
        found.append((
            f"{where}/allowPrivilegeEscalation", "allowPrivilegeEscalation is not false",
            "set allowPrivilegeEscalation: false",
        ))  # fmt: skip
    if context.get("runAsNonRoot") is not True and pod_context.get("runAsNonRoot") is not True:
        found.append((
            f"{where}/runAsNonRoot", "runAsNonRoot is set neither here nor on the pod",
            "set runAsNonRoot: true (on the container or the pod's securityContext)",
        ))  # fmt: skip
    seccomp = _map(context.get("seccompProfile")).get("type")
    if seccomp is None:
        seccomp = _map(pod_context.get("seccompProfile")).get("type")
        if seccomp is None:
            found.append((f"{where}/seccompProfile", "no seccomp profile here nor on the pod", SECCOMP_FIX))
    elif seccomp not in SECCOMP_OK:
        found.append((f"{where}/seccompProfile/type", f"seccomp profile {seccomp}", SECCOMP_FIX))
    capabilities = _map(context.get("capabilities"))
    drop: list[Any] = capabilities["drop"] if isinstance(capabilities.get("drop"), list) else []
    if "ALL" not in drop:
        found.append(
            (
                f"{where}/capabilities/drop",
                "capabilities.drop does not hold ALL",
                "set capabilities.drop: [ALL]",
            )
        )
    added: list[Any] = capabilities["add"] if isinstance(capabilities.get("add"), list) else []
    extra = [str(c) for c in added if c != "NET_BIND_SERVICE"]
    if extra:
        found.append((
            f"{where}/capabilities/add", f"adds capabilities {', '.join(extra)}",
            "add none (restricted allows only NET_BIND_SERVICE)",
        ))  # fmt: skip
    if context.get("procMount") not in (None, "Default"):
        found.append((f"{where}/procMount", f"procMount {context['procMount']}", "remove procMount"))
    for i, port in enumerate(
        container.get("ports") or [] if isinstance(container.get("ports"), list) else []
    ):
        if _map(port).get("hostPort"):
            found.append(
                (f"{path}/ports/[{i}]/hostPort", "hostPort binds a port of the node", "remove hostPort")
            )
    return found


def check(docs: Iterable[RenderedDoc]) -> list[Finding]:
    return [
        Finding(
            doc.source_file,
            doc.ref,
            RULE,
            f"{what} (Pod Security restricted, {DOC})",
            fix,
            doc.env,
            None,
            path,
        )
        for doc in docs
        for path, what, fix in problems(doc.doc)
    ]
