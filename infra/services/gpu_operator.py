"""NVIDIA GPU Operator: device plugin, GPU feature discovery and the DCGM exporter on GPU nodes.

The EKS NVIDIA AMI ships the driver and container toolkit, so the operator installs neither; it
only adds what Kubernetes needs to schedule and observe GPUs.
"""

from __future__ import annotations

import pulumi

from infra.services.chart import ServiceArgs, helm_release, namespace, values_files

NAMESPACE = "gpu-operator"


class GpuOperator(pulumi.ComponentResource):
    """GPU Operator with DCGM metrics scraped by Prometheus (ServiceMonitor)."""

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:GpuOperator", name, None, opts)
        ns = namespace(self, f"{name}-ns", NAMESPACE)
        values = values_files("gpu-operator", args.config.environment)
        self.release = helm_release(
            self,
            f"{name}-release",
            "gpu-operator",
            "gpu-operator",
            ns.metadata.name,
            values,
            [ns, *args.after],
        )
        self.register_outputs({"release": self.release.status})
