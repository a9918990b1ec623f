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
L106); an Ingress would need a controller for its class, which the platform does not install
either. `ingress_values` therefore turns both off until the inference gateway exists.

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

NAMESPACE = "kserve"
# Runtimes the apps under apps/ name in `spec.predictor.model.runtime`; every other runtime of the
# chart is disabled, so a model can only land on a runtime whose image we pinned.
RUNTIMES = {"mlserver": "kserve-mlserver", "huggingfaceserver": "kserve-huggingfaceserver"}


@dataclass(frozen=True)
class KserveArgs(ServiceArgs):
    cert_manager: pulumi.Resource | None = None
    # The internal CA's certificate (cert_manager.py), which MinIO's certificate chains to.
    ca_cert_pem: pulumi.Input[str] = ""
    # Hook for the inference gateway: the resource installing the Gateway API CRDs and the Gateway
    # `GATEWAY` (with a controller serving it). None: no gateway, KServe creates no route at all.
    gateway_api: pulumi.Resource | None = None


# The key the controller copies from the CA ConfigMap (constants.DefaultCaBundleFileName).
CA_BUNDLE_KEY = "cabundle.crt"

# The Gateway KServe attaches its HTTPRoutes to once Gateway API mode is on (`namespace/name`).
GATEWAY = "kserve/kserve-ingress-gateway"


def ingress_values(gateway_api: bool) -> dict[str, Any]:
    """`kserve.controller.gateway` values: Gateway API HTTPRoutes exactly when its CRDs are installed.

    Without them: no Gateway API (the controller would exit at start), no Ingress creation (nothing
    serves an Ingress class), no Istio VirtualService (no Istio; KServe would warn on every
    reconcile, controller.go L366-371). An InferenceService then gets its in-cluster address only.
    """
    gateway: dict[str, Any] = {
        "ingressGateway": {"enableGatewayApi": gateway_api, "kserveGateway": GATEWAY, "createGateway": False},
        "disableIngressCreation": not gateway_api,
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
        cert_manager = [args.cert_manager] if args.cert_manager else []
        # No values files for the CRD chart (it has no values).
        crds = self.install(
            "crd", "kserve-crd", "kserve-crd", depends_on=[self.namespace, *args.after, *cert_manager]
        )
        gateway = [args.gateway_api] if args.gateway_api else []
        if not args.ca_cert_pem:
            raise ValueError("KserveArgs.ca_cert_pem: model downloads verify MinIO against the internal CA")
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
            computed=deep_merge(ingress_values(gateway_api=bool(gateway)), storage),
            depends_on=[crds, self.ca_bundle, *gateway],
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
