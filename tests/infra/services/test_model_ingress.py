"""Who may call a model server: the rendered NetworkPolicies of every overlay of a real app, evaluated
as Kubernetes would (netpol.py). Only the platform Gateway's Envoy proxies (inference) and Prometheus
(scrapes) reach the predictor's port; before issue 16 the whole VPC CIDR did, so with the VPC CNI any
pod of the cluster could call a model around the gateway.

Envoy proxy pod labels and namespace as Envoy Gateway v1.9.0 sets them (envoyproxy/gateway, tag
v1.9.0): internal/infrastructure/kubernetes/proxy/resource.go EnvoyAppLabel, internal/gatewayapi/
translator.go buildIR + helpers.go GatewayOwnerLabels, proxy_infra.go GetResourceNamespace (the
controller's namespace unless GatewayNamespaceMode).
"""

from __future__ import annotations

import pytest

from tests.support.netpol import Cluster, Pod
from tests.support.netpol_world import APP, MODEL_NAMESPACE, model_policies

PORT = 8080
PROXY_LABELS = {
    "app.kubernetes.io/name": "envoy",
    "app.kubernetes.io/component": "proxy",
    "app.kubernetes.io/managed-by": "envoy-gateway",
    "gateway.envoyproxy.io/owning-gateway-name": "inference",
    "gateway.envoyproxy.io/owning-gateway-namespace": "mlplat-gateway",
}
MODEL = Pod(
    MODEL_NAMESPACE,
    {"serving.kserve.io/inferenceservice": APP, "component": "predictor"},
    "10.10.8.10",
    "model",
)
CANARY = Pod(MODEL_NAMESPACE, {"serving.kserve.io/inferenceservice": APP, "component": "predictor",
                               "app": f"isvc.{APP}-v2-predictor"}, "10.10.8.11", "canary")  # fmt: skip
PROXY = Pod("envoy-gateway-system", PROXY_LABELS, "10.10.8.20", "inference proxy")
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"}, "10.10.8.30", "prometheus")
OUTSIDERS = [
    # A proxy of another Gateway the controller may run one day (e.g. a public one).
    Pod(
        "envoy-gateway-system",
        {**PROXY_LABELS, "gateway.envoyproxy.io/owning-gateway-name": "public"},
        "10.10.8.21",
        "proxy of another Gateway",
    ),
    # The Envoy Gateway controller itself (chart gateway-helm) in the same namespace.
    Pod(
        "envoy-gateway-system",
        {"control-plane": "envoy-gateway", "app.kubernetes.io/name": "gateway-helm"},
        "10.10.8.22",
        "gateway controller",
    ),
    # Any pod with a VPC address (VPC CNI), which the old VPC-CIDR rule admitted.
    Pod("default", {"app": "anything"}, "10.10.8.40", "stranger"),
    Pod("models-growth", {"serving.kserve.io/inferenceservice": "churn-gbm"}, "10.10.8.41", "another model"),
    # A pod copying the proxy's labels outside the controller's namespace.
    Pod("models-growth", PROXY_LABELS, "10.10.8.42", "impostor with proxy labels"),
]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_only_the_gateway_proxies_and_prometheus_reach_a_model(env: str) -> None:
    cluster = Cluster(model_policies(env))
    for model in (MODEL, CANARY):  # the policies select every pod of the namespace: the canary's too
        assert cluster.may_reach(PROXY, model, PORT), "the Gateway cannot reach the model server"
        assert cluster.may_reach(PROMETHEUS, model, PORT), "Prometheus cannot scrape the model server"
        leaks = [p.name for p in OUTSIDERS if cluster.may_reach(p, model, PORT)]
        assert not leaks, f"{env}: reach {model.name}:{PORT} around the gateway: {leaks}"
        assert not cluster.may_reach(PROXY, model, 9000), (
            "the proxies reach more than the model server's port"
        )
