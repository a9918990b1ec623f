"""KServe in Standard (raw Deployment) mode, and the two serving runtimes the model apps use.

Order: cert-manager (webhook certificates) -> kserve-crd -> kserve-resources (controller) ->
kserve-runtime-configs (ClusterServingRuntimes, which the controller's webhook validates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.services.chart import ChartService, ServiceArgs

NAMESPACE = "kserve"
# Runtimes the apps under apps/ name in `spec.predictor.model.runtime`; every other runtime of the
# chart is disabled, so a model can only land on a runtime whose image we pinned.
RUNTIMES = {"mlserver": "kserve-mlserver", "huggingfaceserver": "kserve-huggingfaceserver"}


@dataclass(frozen=True)
class KserveArgs(ServiceArgs):
    cert_manager: pulumi.Resource | None = None


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
        self.release = self.install("release", "kserve", "kserve", depends_on=[crds])
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
