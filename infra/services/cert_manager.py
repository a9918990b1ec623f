"""cert-manager: issues the webhook certificates KServe needs; installed (with its CRDs) before KServe."""

from __future__ import annotations

import pulumi

from infra.services.chart import ServiceArgs, helm_release, namespace, values_files

NAMESPACE = "cert-manager"


class CertManager(pulumi.ComponentResource):
    """cert-manager with its CRDs (`crds.enabled`) and ServiceMonitor."""

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:CertManager", name, None, opts)
        ns = namespace(self, f"{name}-ns", NAMESPACE)
        values = values_files("cert-manager", args.config.environment)
        self.release = helm_release(
            self,
            f"{name}-release",
            "cert-manager",
            "cert-manager",
            ns.metadata.name,
            values,
            [ns, *args.after],
        )
        self.register_outputs({"release": self.release.status})
