"""CKV_MLP_6: models are loaded only from the platform's model store, at `<store>/<model>/<version>`.

Artifacts from public hubs, other buckets or plain URLs bypass the registry's promotion gate and
its audit trail; the path must name the model and version the manifest claims to serve.
"""

from __future__ import annotations

from typing import Any

from _mlplat import (
    DNS_LABEL,
    ISVC,
    MODEL_LABEL,
    MODEL_VERSION,
    MODEL_VERSION_ANNOTATION,
    MlplatCheck,
    annotations_of,
    dicts,
    env_params,
    labels,
    mapping,
    pod_specs,
)


def storage_uris(conf: dict[str, Any]) -> list[tuple[str, Any]]:
    """(key path, value) of every storage URI: model specs, the component, STORAGE_URI env vars."""
    found = []
    for pod in pod_specs(conf):
        if "storageUri" in pod.conf:
            found.append((f"{pod.path}/storageUri", pod.conf["storageUri"]))
        for container in pod.containers():
            if "storageUri" in container.conf:
                found.append((f"{container.path}/storageUri", container.conf["storageUri"]))
            for i, var in enumerate(dicts(container.conf.get("env"))):
                if var.get("name") == "STORAGE_URI" and "value" in var:
                    found.append((f"{container.path}/env/[{i}]/value", var["value"]))
    return found


def canary_uris(conf: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(key path, value, version) of each `spec.canary` predictor's model; the version is its `v<N>` name."""
    found = []
    for i, entry in enumerate(dicts(mapping(conf.get("spec")).get("canary"))):
        predictor = mapping(entry.get("predictor"))
        model = mapping(predictor.get("model"))
        if "storageUri" in model:
            version = str(predictor.get("name", "")).removeprefix("v")
            found.append((f"spec/canary/[{i}]/predictor/model/storageUri", model["storageUri"], version))
    return found


def expected_path(conf: dict[str, Any]) -> str | None:
    """`<model>/<version>` from the labels, when both are well-formed (CKV_MLP_9 reports them otherwise)."""
    model = str(labels(conf).get(MODEL_LABEL, ""))
    version = annotations_of(conf).get(MODEL_VERSION_ANNOTATION)
    if DNS_LABEL.match(model) and isinstance(version, str) and MODEL_VERSION.match(version):
        return f"{model}/{version}"
    return None


class ModelStore(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name="storageUri points into the platform model store as <store>/<model>/<version>",
            id="CKV_MLP_6",
            supported_entities=(ISVC,),
            fix=f"register the model in MLflow and use storageUri: s3://mlplat-models/<{MODEL_LABEL}>/"
            f"<{MODEL_VERSION_ANNOTATION}> (no http(s)://, hf://, gs:// or other buckets)",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        model_label = str(labels(conf).get(MODEL_LABEL, ""))
        # A canary serves the same model at its own version, named by the canary (`v<N>`).
        uris = [(path, uri, expected_path(conf)) for path, uri in storage_uris(conf)]
        uris += [(path, uri, f"{model_label}/{version}") for path, uri, version in canary_uris(conf)]
        if not uris:
            return []
        params, why = env_params(conf)
        if params is None:
            return [why]
        problems = []
        for path, uri, expected in uris:
            prefix = f"{params.model_store_uri}/"
            rest = uri[len(prefix) :].rstrip("/") if isinstance(uri, str) and uri.startswith(prefix) else None
            if rest is None:
                problems.append(f"{path} (not under {prefix})")
                continue
            model, _, version = rest.partition("/")
            if not DNS_LABEL.match(model) or not MODEL_VERSION.match(version):
                problems.append(f"{path} (want {prefix}<model>/<version>)")
            elif expected is not None and rest != expected:
                problems.append(f"{path} (labels say {prefix}{expected})")
        return problems


check = ModelStore()
