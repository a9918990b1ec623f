"""KServe in Standard (raw Deployment) mode, and the two serving runtimes the model apps use.

Order: cert-manager (webhook certificates) -> kserve-crd -> kserve-resources (controller) ->
kserve-runtime-configs (ClusterServingRuntimes, which the controller's webhook validates).

The controller only runs in modes whose prerequisites this program installs. KServe v0.20.0
checks them at start: with `enableGatewayApi` on and no `gateway.networking.k8s.io/v1` HTTPRoute
CRD, `SetupWithManager` returns an error (kserve/kserve v0.20.0
pkg/controller/v1beta1/inferenceservice/controller.go L707-717) and the manager exits
(cmd/manager/main.go L186-188), so the atomic release rolls back. With Gateway API off it owns
plain `networking.k8s.io` Ingresses (controller.go L719-721), built into Kubernetes, and creates
them only when `disableIngressCreation` is false (reconcilers/ingress/kube_ingress_reconciler.go
L106). KServe creates no route at all, by design: each model app owns its HTTPRoute to the inference
gateway (docs/adr/0005-inference-gateway.md), because v0.20.0's HTTPRoutes do not weight a canary
and carry a filter and timeouts only some implementations accept. `ingress_values` turns off Gateway
API mode and Ingress creation; the InferenceService still gets its in-cluster address and becomes
Ready (kube_ingress_reconciler.go L106-140: URL, address and IngressReady set with or without an Ingress).

Model downloads verify MinIO against the internal CA. The storage initializer trusts a custom CA
only from a ConfigMap: `storageInitializer.caBundleConfigMapName` names one in the KServe namespace
whose `cabundle.crt` the controller copies into each model namespace as `global-ca-bundle`, and the
webhook mounts it into the init container (kserve/kserve v0.20.0
pkg/controller/v1beta1/inferenceservice/reconcilers/cabundleconfigmap/cabundle_configmap_reconciler.go
L86-108, pkg/webhook/admission/pod/storage_initializer_injector.go L598-612). The program writes
that ConfigMap from the CA certificate before the controller starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.services.cert_manager import CA_BUNDLE_CONFIGMAP, ca_bundle
from infra.services.chart import ChartService, ServiceArgs, deep_merge
from infra.services.gateway import GATEWAY_NAME, GATEWAY_NAMESPACE

NAMESPACE = "kserve"
# Runtimes the apps under apps/ name in `spec.predictor.model.runtime`; every other runtime of the
# chart is disabled, so a model can only land on a runtime whose image we pinned.
RUNTIMES = {"mlserver": "kserve-mlserver", "huggingfaceserver": "kserve-huggingfaceserver"}


@dataclass(frozen=True, kw_only=True)
class KserveArgs(ServiceArgs):
    cert_manager: pulumi.Resource
    # The internal CA's certificate (cert_manager.py), which MinIO's certificate chains to: model
    # downloads verify MinIO against it.
    ca_cert_pem: pulumi.Input[str]


# The key the controller copies from the CA ConfigMap (constants.DefaultCaBundleFileName).
CA_BUNDLE_KEY = "cabundle.crt"

# The platform's Gateway (`namespace/name`, the form KServe's ingress config takes).
GATEWAY = f"{GATEWAY_NAMESPACE}/{GATEWAY_NAME}"


def ingress_values() -> dict[str, Any]:
    """`kserve.controller.gateway` values: KServe creates no route; the apps' HTTPRoutes are the routes.

    No Gateway API mode (KServe would create its own HTTPRoute next to the app's), no Ingress creation
    (nothing serves an Ingress class), no Istio VirtualService (no Istio; KServe would warn on every
    reconcile, controller.go L366-371), no Gateway of its own. `kserveGateway` is read only in
    Gateway API mode; it names the platform's Gateway anyway, so the ingress config KServe loads never
    points at a Gateway nobody creates (the chart's default is `kserve/kserve-ingress-gateway`).
    """
    gateway: dict[str, Any] = {
        "ingressGateway": {"enableGatewayApi": False, "kserveGateway": GATEWAY, "createGateway": False},
        "disableIngressCreation": True,
        "disableIstioVirtualHost": True,
    }
    return {"kserve": {"controller": {"gateway": gateway}}}


def runtime_values() -> dict[str, Any]:
    """`kserve.servingruntime` values: enable the chart, keep only RUNTIMES, pin their images."""
    runtimes: dict[str, Any] = {key: {"disabled": key not in RUNTIMES} for key in RUNTIME_KEYS}
    for key, image_name in RUNTIMES.items():
        repository, tag = versions.image(image_name)
        runtimes[key] = {**runtimes[key], "image": repository, "tag": tag}
    return {"kserve": {"servingruntime": {"enabled": True, **runtimes}}}


class Kserve(ChartService):
    """KServe controller (Standard mode, metrics scraped) and its pinned runtimes."""

    def __init__(self, name: str, args: KserveArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:Kserve", name, args, NAMESPACE, opts)
        # No values files for the CRD chart (it has no values).
        crds = self.install(
            "crd", "kserve-crd", "kserve-crd", depends_on=[self.namespace, *args.after, args.cert_manager]
        )
        self.ca_bundle = ca_bundle(
            self,
            f"{name}-internal-ca",
            CA_BUNDLE_CONFIGMAP,
            self.namespace.metadata.name,
            CA_BUNDLE_KEY,
            args.ca_cert_pem,
            [self.namespace],
        )
        storage = {"kserve": {"storage": {"caBundleConfigMapName": CA_BUNDLE_CONFIGMAP}}}
        self.release = self.install(
            "release",
            "kserve",
            "kserve",
            computed=deep_merge(ingress_values(), storage),
            depends_on=[crds, self.ca_bundle],
        )
        self.runtimes = self.install(
            "runtimes",
            "kserve-runtimes",
            "kserve-runtimes",
            values_dir="kserve/runtimes",
            computed=runtime_values(),
            depends_on=[self.release],
        )
        # The chart has no ServiceMonitor switch; the controller serves metrics behind kube-rbac-proxy.
        self.monitor = k8s.apiextensions.CustomResource(
            f"{name}-controller-metrics",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata={"name": "kserve-controller-manager", "namespace": NAMESPACE},
            spec={
                "selector": {"matchLabels": {"control-plane": "kserve-controller-manager"}},
                "endpoints": [
                    {
                        "port": "https",
                        "scheme": "https",
                        "path": "/metrics",
                        "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
                        # kube-rbac-proxy serves a self-signed certificate.
                        "tlsConfig": {"insecureSkipVerify": True},
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, *args.after]),
        )
        self.register_outputs({"release": self.release.status, "runtimes": self.runtimes.status})


# Every runtime kserve-runtime-configs v0.20.0 renders (its values.yaml `kserve.servingruntime.*`
# entries with a `disabled` switch); tests/services check this list against the chart's defaults.
RUNTIME_KEYS = (
    "tensorflow",
    "mlserver",
    "sklearnserver",
    "xgbserver",
    "huggingfaceserver",
    "huggingfaceserver_multinode",
    "tritonserver",
    "pmmlserver",
    "predictiveserver",
    "paddleserver",
    "lgbserver",
    "autogluonserver",
    "torchserve",
    "vllmserver",
)
