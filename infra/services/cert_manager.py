"""cert-manager: issues the webhook certificates KServe needs; installed (with its CRDs) before KServe."""

from __future__ import annotations

import pulumi

from infra.services.chart import ChartService, ServiceArgs

NAMESPACE = "cert-manager"


class CertManager(ChartService):
    """cert-manager with its CRDs (`crds.enabled`) and ServiceMonitor."""

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:CertManager", name, args, NAMESPACE, opts)
        self.release = self.install("release", "cert-manager", "cert-manager")
        self.register_outputs({"release": self.release.status})
