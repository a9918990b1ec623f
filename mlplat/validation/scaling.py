"""Does a GPU model scale on its load, within what the environment allows?

GPU model servers scale through a KEDA ScaledObject on their own metrics (vLLM's queue), with
KServe's HPA switched off (`serving.kserve.io/autoscalerClass: external`, KServe v0.20.0
pkg/constants/constants.go). The ScaledObject's schema is checked against the KEDA CRD like every
custom resource (mlplat/validation/schemas.py); this module checks what a schema cannot know:

- MLP-SCALING-TARGET: a ScaledObject scales something other than a predictor Deployment of an
  InferenceService of the same app and namespace (`<name>-predictor`), or that InferenceService leaves
  KServe's HPA on (two autoscalers fighting over one Deployment), or a GPU InferenceService handed to
  an external autoscaler has no ScaledObject (it would never scale);
- MLP-SCALING-BOUNDS: the ScaledObject's min/maxReplicaCount outside the environment's caps
  (`apps.*`), outside its InferenceService's min/maxReplicas (what MLP-GPU-CAP counts), at zero where
  `apps.scale_to_zero` is off, or a maximum whose GPUs alone exceed `gpu.max_total_gpus`;
- MLP-SCALING-METRIC: a GPU predictor scaled on CPU or memory (KServe's default HPA, or a ScaledObject
  with a cpu/memory trigger) or without a Prometheus trigger: GPU servers queue work with idle CPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra.config import StackConfig
from mlplat.findings import Finding, RenderedDoc
from mlplat.validation.capacity import AUTOSCALER_CLASS, autoscaler_class, gpus_per_replica, replica_range
from mlplat.validation.render import SourceIndex

EXTERNAL = "external"
PREDICTOR_SUFFIX = "-predictor"  # KServe RawDeployment: Deployment `<InferenceService>-predictor`
RESOURCE_TRIGGERS = frozenset({"cpu", "memory"})
# KEDA's defaults when a ScaledObject leaves them out: minReplicaCount 0, maxReplicaCount 100, target
# apps/v1 Deployment (https://keda.sh/docs/latest/reference/scaledobject-spec; the 100 also in the CRD's
# CEL rule, ../shared/reference/crds/keda/keda.sh_scaledobjects.yaml).
KEDA_MIN, KEDA_MAX = 0, 100


def _meta(doc: RenderedDoc) -> dict[str, Any]:
    meta = doc.doc.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(doc: RenderedDoc) -> dict[str, Any]:
    spec = doc.doc.get("spec")
    return spec if isinstance(spec, dict) else {}


def _predictor(doc: RenderedDoc) -> dict[str, Any]:
    predictor = _spec(doc).get("predictor")
    return predictor if isinstance(predictor, dict) else {}


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _class(isvc: RenderedDoc) -> str:
    return autoscaler_class(isvc.doc)


def check(docs: Sequence[RenderedDoc], config: StackConfig, env: str, index: SourceIndex) -> list[Finding]:
    """Every scaling finding of one environment's rendered documents, app by app."""
    findings: list[Finding] = []
    by_target: dict[str, list[RenderedDoc]] = {}
    for doc in docs:
        by_target.setdefault(doc.target, []).append(doc)
    for mine in by_target.values():
        services = {
            (_meta(d).get("namespace"), _meta(d).get("name")): d
            for d in mine
            if d.doc.get("kind") == "InferenceService"
        }
        scaled: set[tuple[Any, Any]] = set()
        for doc in (d for d in mine if d.doc.get("kind") == "ScaledObject"):
            findings += _scaled_object(doc, services, scaled, config, env, index)
        for key, isvc in services.items():
            findings += _unscaled(isvc, key in scaled, env, index)
    return findings


def _finding(
    doc: RenderedDoc, env: str, index: SourceIndex, rule: str, message: str, fix: str, path: str
) -> Finding:
    return Finding(doc.source_file, doc.ref, rule, message, fix, env, index.line(doc), path)


def _scaled_object(
    doc: RenderedDoc,
    services: dict[tuple[Any, Any], RenderedDoc],
    scaled: set[tuple[Any, Any]],
    config: StackConfig,
    env: str,
    index: SourceIndex,
) -> list[Finding]:
    spec = _spec(doc)
    given = spec.get("scaleTargetRef")
    ref: dict[str, Any] = given if isinstance(given, dict) else {}
    name = str(ref.get("name", ""))
    namespace = _meta(doc).get("namespace")
    isvc_name = name.removesuffix(PREDICTOR_SUFFIX) if name.endswith(PREDICTOR_SUFFIX) else None
    isvc = services.get((namespace, isvc_name))
    kind = (ref.get("apiVersion", "apps/v1"), ref.get("kind", "Deployment"))
    if isvc is None or kind != ("apps/v1", "Deployment"):
        names = ", ".join(f"{n}{PREDICTOR_SUFFIX}" for ns, n in services if ns == namespace) or "none"
        return [
            _finding(
                doc, env, index, "MLP-SCALING-TARGET",
                f"scales {kind[1]} {name!r}, not the predictor Deployment of an InferenceService of this app "
                f"in {namespace} (predictors: {names})",
                "set scaleTargetRef to apiVersion apps/v1, kind Deployment, name <InferenceService>-predictor",
                "spec/scaleTargetRef/name",
            )
        ]  # fmt: skip
    scaled.add((namespace, isvc_name))
    findings = []
    if _class(isvc) != EXTERNAL:
        findings.append(
            _finding(
                isvc, env, index, "MLP-SCALING-TARGET",
                f"a ScaledObject scales its predictor, but autoscalerClass is {_class(isvc)!r}: KServe's own "
                "HPA would fight KEDA over the replicas",
                f"annotate the InferenceService `{AUTOSCALER_CLASS}: {EXTERNAL}`",
                "metadata/annotations",
            )
        )  # fmt: skip
    findings += _bounds(doc, isvc, config, env, index)
    gpus = gpus_per_replica(_predictor(isvc))
    if gpus:
        findings += _metric(doc, env, index)
    return findings


def _bounds(
    doc: RenderedDoc, isvc: RenderedDoc, config: StackConfig, env: str, index: SourceIndex
) -> list[Finding]:
    spec, predictor, caps = _spec(doc), _predictor(isvc), config.apps
    low = _int(spec.get("minReplicaCount"), KEDA_MIN)
    high = _int(spec.get("maxReplicaCount"), KEDA_MAX)
    isvc_low, isvc_high = replica_range(isvc.doc)
    problems: list[tuple[str, str]] = []  # (why, the key that says it)
    if low == 0 and not caps.scale_to_zero:
        problems.append(
            (f"minReplicaCount 0 (KEDA's default when unset) scales to zero, which {env} does not allow "
             "(apps.scale_to_zero)", "minReplicaCount")
        )  # fmt: skip
    elif low and low < max(caps.min_replicas, isvc_low):
        problems.append(
            (f"minReplicaCount {low} is below {env}'s floor of {caps.min_replicas} or the InferenceService's "
             f"minReplicas {isvc_low}", "minReplicaCount")
        )  # fmt: skip
    if high > caps.max_replicas_per_app:
        problems.append(
            (f"maxReplicaCount {high} is above {env}'s cap of {caps.max_replicas_per_app} per app", "maxReplicaCount")
        )  # fmt: skip
    if high > isvc_high:
        problems.append(
            (f"maxReplicaCount {high} is above the InferenceService's maxReplicas {isvc_high}, which the GPU "
             "cap (MLP-GPU-CAP) counts", "maxReplicaCount")
        )  # fmt: skip
    if low > high:
        problems.append((f"minReplicaCount {low} exceeds maxReplicaCount {high}", "minReplicaCount"))
    gpus = gpus_per_replica(predictor)
    if gpus * high > config.gpu.max_total_gpus:
        problems.append(
            (f"{high} replicas x {gpus} GPU(s) = {gpus * high} GPUs, above {env}'s gpu.max_total_gpus "
             f"{config.gpu.max_total_gpus}", "maxReplicaCount")
        )  # fmt: skip
    fix = (
        f"keep {'0 or ' if caps.scale_to_zero else ''}{caps.min_replicas} <= minReplicaCount <= maxReplicaCount "
        f"<= min(InferenceService maxReplicas, {caps.max_replicas_per_app}) in {env}"
    )
    return [_finding(doc, env, index, "MLP-SCALING-BOUNDS", why, fix, f"spec/{key}") for why, key in problems]


def _metric(doc: RenderedDoc, env: str, index: SourceIndex) -> list[Finding]:
    triggers = [t for t in _spec(doc).get("triggers") or [] if isinstance(t, dict)]
    types = [str(t.get("type")) for t in triggers]
    resource = sorted(RESOURCE_TRIGGERS & set(types))
    if not resource and "prometheus" in types:
        return []
    why = (
        f"scales a GPU predictor on {' and '.join(resource)}"
        if resource
        else "has no prometheus trigger: nothing reads the model server's queue"
    )
    return [
        _finding(
            doc, env, index, "MLP-SCALING-METRIC", why,
            "scale on the server's requests in flight (e.g. vLLM's vllm:num_requests_running + "
            "vllm:num_requests_waiting) with a prometheus trigger; see apps/llm-chat/base/scaledobject.yaml",
            "spec/triggers",
        )
    ]  # fmt: skip


def _unscaled(isvc: RenderedDoc, scaled: bool, env: str, index: SourceIndex) -> list[Finding]:
    """A GPU predictor that may change its replica count but no ScaledObject scales."""
    predictor = _predictor(isvc)
    if scaled or not gpus_per_replica(predictor):
        return []
    floor, ceiling = replica_range(isvc.doc)
    if ceiling == floor:
        return []  # a fixed replica count (class `none` always is: it holds minReplicas): nothing scales it
    if _class(isvc) == EXTERNAL:
        return [
            _finding(
                isvc, env, index, "MLP-SCALING-TARGET",
                f"autoscalerClass {EXTERNAL} hands the replicas to an external autoscaler, but no ScaledObject "
                f"of this app scales {_meta(isvc).get('name')}{PREDICTOR_SUFFIX}: it never scales",
                "add a ScaledObject for the predictor (see apps/llm-chat/base/scaledobject.yaml)",
                "metadata/annotations",
            )
        ]  # fmt: skip
    how = (
        "i.e. on CPU: a GPU server queues requests while its CPUs idle (kserve#3561)"
        if _class(isvc) == "hpa"
        else "whose scaler KServe builds at run time, out of validate's sight"
    )
    return [
        _finding(
            isvc, env, index, "MLP-SCALING-METRIC",
            f"a GPU predictor scaled by KServe's {_class(isvc)!r} autoscaler, {how}",
            f"annotate `{AUTOSCALER_CLASS}: {EXTERNAL}` and add a ScaledObject on the server's queue, or fix "
            "minReplicas = maxReplicas",
            "spec/predictor/maxReplicas",
        )
    ]  # fmt: skip
