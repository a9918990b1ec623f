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

Inference logs are uploaded by the agent KServe injects beside a logged predictor, and it verifies
MinIO against the same CA. Its S3 client is aws-sdk-go v1's `session.NewSession` (kserve/kserve v0.20.0
pkg/agent/storage/utils.go L209-245), which trusts only the PEM file named by `AWS_CA_BUNDLE` when
that is set (aws/aws-sdk-go v1.55.6 aws/session/session.go NewSessionWithOptions, "Only use
AWS_CA_BUNDLE if session option is not provided"). The agent gets that variable from the logger
Secret's `serving.kserve.io/s3-cabundle` annotation (pkg/credentials/s3/utils.go L99-105; the
component apps/components/inference-logging sets it), and the file from the `logger.caBundle`
ConfigMap, which the webhook mounts into the agent at /etc/tls/logger (pkg/webhook/admission/pod/
agent_injector.go L440-463, constants.go LoggerCaCertMountPath). The chart renders `logger` without
that key (charts/kserve-resources/files/common/configmap-patch.yaml `logger`), so `logger_config`
is patched into `inferenceservice-config` after the release: the chart's own fields, plus the CA
ConfigMap the controller already copies into every model namespace (`global-ca-bundle`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.services.cert_manager import CA_BUNDLE_CONFIGMAP, InternalCa
from infra.services.chart import ChartService, ServiceArgs, deep_merge
from infra.services.gateway import GATEWAY_NAME, GATEWAY_NAMESPACE

NAMESPACE = "kserve"
# Runtimes the apps under apps/ name in `spec.predictor.model.runtime`; every other runtime of the
# chart is disabled, so a model can only land on a runtime whose image we pinned.
RUNTIMES = {"mlserver": "kserve-mlserver", "huggingfaceserver": "kserve-huggingfaceserver"}


@dataclass(frozen=True, kw_only=True)
class KserveArgs(ServiceArgs):
    # cert-manager's release: its CRDs and webhook issue the certificates of KServe's webhooks.
    cert_manager: pulumi.Resource
    # The internal CA (cert_manager.py), which MinIO's certificate chains to: model downloads verify
    # MinIO against its certificate.
    ca: InternalCa


# The key the controller copies from the CA ConfigMap (constants.DefaultCaBundleFileName).
CA_BUNDLE_KEY = "cabundle.crt"

# KServe's configuration ConfigMap (chart kserve-resources templates/common/configmap.yaml), and the
# CA bundle the controller writes into each model namespace from `caBundleConfigMapName`
# (constants.go DefaultGlobalCaBundleConfigMapName, cabundle_configmap_reconciler.go L86-108).
INFERENCE_SERVICE_CONFIG = "inferenceservice-config"
# Which revision of the KServe release the logger patch was last applied after (see KServeService).
RELEASE_REVISION_ANNOTATION = "mlplat/kserve-release-revision"
MODEL_NAMESPACE_CA_BUNDLE = "global-ca-bundle"
# Where the agent injector mounts `logger.caBundle` (pkg/constants/constants.go LoggerCaCertMountPath).
LOGGER_CA_DIR = "/etc/tls/logger"


def logger_config() -> dict[str, Any]:
    """`inferenceservice-config`'s `logger`: the chart's v0.20.0 values, plus the internal CA bundle.

    The chart's fields are repeated because a ConfigMap key is one JSON string: the patch replaces it
    whole (configmap-patch.yaml `logger`: the agent image of `kserve.agent.image`:`kserve.version`).
    `caCertFile` is the file the agent reads from that folder for https logger URLs (cmd/agent/main.go
    `--logger-ca-cert-file`); S3 uploads read the same file through `AWS_CA_BUNDLE`.
    """
    return {
        "image": f"kserve/agent:{versions.CHARTS['kserve'].version}",
        "memoryRequest": "100Mi",
        "memoryLimit": "1Gi",
        "cpuRequest": "100m",
        "cpuLimit": "1",
        "defaultUrl": "http://default-broker",
        "caBundle": MODEL_NAMESPACE_CA_BUNDLE,
        "caCertFile": CA_BUNDLE_KEY,
    }


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
        super().__init__(
            "mlplat:services:Kserve", name, NAMESPACE, args.cluster, [args.monitoring_crds], opts
        )
        # No values files for the CRD chart (it has no values). Its CRDs are templates (kserve v0.20.0
        # charts/kserve-crd/templates/serving.kserve.io_*.yaml, no `helm.sh/resource-policy: keep`), so
        # uninstalling or replacing the release deletes them and with them every InferenceService:
        # protected wherever state is, as the Gateway API CRDs are (gateway.py).
        crds = self.install(
            "crd",
            "kserve-crd",
            "kserve-crd",
            depends_on=[self.namespace, args.monitoring_crds, args.cert_manager],
            protect=args.cluster.protect_stateful,
        )
        self.ca_bundle = args.ca.bundle(self, f"{name}-internal-ca", self.namespace, CA_BUNDLE_KEY)
        storage = {"kserve": {"storage": {"caBundleConfigMapName": CA_BUNDLE_CONFIGMAP}}}
        self.release = self.install(
            "release",
            "kserve",
            "kserve",
            computed=deep_merge(ingress_values(), storage),
            depends_on=[crds, self.ca_bundle],
        )
        # Server-side apply of the one key, forced over the chart's (helm) ownership of it. Every
        # Helm upgrade writes the chart's `logger` back (Helm 3's three-way merge resets fields the
        # chart renders), and a patch whose inputs did not change is not applied again: so the
        # patch carries the release's revision (helm.v3.Release `status.revision`), and each upgrade
        # re-applies it in the same `pulumi up`.
        self.logger_config = k8s.core.v1.ConfigMapPatch(
            f"{name}-logger-config",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=INFERENCE_SERVICE_CONFIG,
                namespace=NAMESPACE,
                annotations={
                    "pulumi.com/patchForce": "true",
                    RELEASE_REVISION_ANNOTATION: self.release.status.apply(
                        lambda status: str(status.revision)
                    ),
                },
            ),
            data={"logger": json.dumps(logger_config(), indent=2)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, args.monitoring_crds]),
        )
        self.register_outputs({"release": self.release.status, "runtimes": self.runtimes.status})


# Every runtime kserve-runtime-configs v0.20.0 renders (its values.yaml `kserve.servingruntime.*`
# entries with a `disabled` switch); tests/infra/services check this list against the chart's defaults.
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
