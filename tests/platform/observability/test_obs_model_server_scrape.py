"""Prometheus scrapes each model server pod once, on the port its runtime serves /metrics on.

The PodMonitor the program renders is run over the scrape targets Prometheus's pod discovery makes for
a predictor pod of every rendered app overlay: one target per declared container port, one port-free
target per container without ports, init containers included (prometheus/prometheus v3.14.0
discovery/kubernetes/pod.go buildPod). A predictor pod of KServe v0.20.0 holds the model server
(`kserve-container`), the app's own containers (spec.predictor.containers), the logger `agent` on 9081
when the logger is on (pkg/webhook/admission/pod/agent_injector.go, constants
InferenceServiceDefaultAgentPort) and the `storage-initializer` init container for a storageUri; its
annotations are the InferenceService's, overridden by the predictor's (components/predictor.go
buildObjectMeta).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from infra.services.monitoring import RUNTIME_METRICS_PORTS
from tests.support.harness import build
from tests.support.obs_helpers import REPO, rel
from tests.support.relabel import relabel
from tests.support.validate_helpers import kustomize

OVERLAYS = sorted(p for p in (REPO / "apps").glob("*/overlays/*") if (p / "kustomization.yaml").is_file())
POD_IP = "10.0.0.7"
PORT_ANNOTATION = "prometheus.kserve.io/port"


def discovered(pod: dict[str, Any]) -> list[dict[str, str]]:
    """The targets Prometheus's pod role makes of `pod` (containers, init containers and annotations)."""
    common = {"__meta_kubernetes_namespace": pod["namespace"]} | {
        "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", key): value
        for key, value in pod["annotations"].items()
    }
    targets = []
    for container in pod["containers"] + pod["init_containers"]:
        meta = common | {"__meta_kubernetes_pod_container_name": container["name"]}
        ports = container.get("ports") or []
        if not ports:
            targets.append(meta | {"__address__": POD_IP})
        for port in ports:
            targets.append(meta | {"__address__": f"{POD_IP}:{port['containerPort']}"})
    return targets


def predictor_pod(isvc: dict[str, Any]) -> dict[str, Any]:
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    containers = [{"name": "kserve-container", "ports": model.get("ports")}, *predictor.get("containers", [])]
    if "logger" in predictor:
        containers.append({"name": "agent", "ports": [{"containerPort": 9081}]})
    return {
        "namespace": isvc["metadata"]["namespace"],
        "annotations": {**isvc["metadata"].get("annotations", {}), **predictor.get("annotations", {})},
        "containers": containers,
        "init_containers": [{"name": "storage-initializer"}] if "storageUri" in model else [],
    }


def podmonitor_relabelings(env: str) -> list[dict[str, Any]]:
    (monitor,) = [
        r
        for r in build(env).of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")
        if r.inputs["metadata"]["name"] == "kserve-model-servers"
    ]
    (endpoint,) = monitor.inputs["spec"]["podMetricsEndpoints"]
    rules: list[dict[str, Any]] = endpoint["relabelings"]
    return rules


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[rel(p) for p in OVERLAYS])
def test_each_model_server_pod_is_scraped_once_on_its_runtimes_metrics_port(overlay: Path) -> None:
    (isvc,) = [d for d in kustomize(overlay) if d["kind"] == "InferenceService"]
    runtime = isvc["spec"]["predictor"]["model"]["runtime"]
    assert runtime in RUNTIME_METRICS_PORTS, f"{rel(overlay)}: runtime {runtime} has no known metrics port"
    pod = predictor_pod(isvc)
    assert PORT_ANNOTATION in pod["annotations"], (
        f"{rel(overlay)}: the InferenceService names no {PORT_ANNOTATION} (the runtime's may be wrong)"
    )
    rules = podmonitor_relabelings(overlay.name)
    scraped = [t for t in (relabel(t, rules) for t in discovered(pod)) if t is not None]
    assert [t["__address__"] for t in scraped] == [f"{POD_IP}:{RUNTIME_METRICS_PORTS[runtime]}"], (
        f"{rel(overlay)}: a {runtime} pod is scraped at {[t['__address__'] for t in scraped]}"
    )
