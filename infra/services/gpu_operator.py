"""NVIDIA GPU Operator: device plugin, GPU feature discovery and the DCGM exporter on GPU nodes.

The EKS NVIDIA AMI ships the driver and container toolkit, so the operator installs neither; it
only adds what Kubernetes needs to schedule and observe GPUs.
"""

from __future__ import annotations

import pulumi

from infra.services.chart import ChartService, ServiceArgs

NAMESPACE = "gpu-operator"


class GpuOperator(ChartService):
    """GPU Operator with DCGM metrics scraped by Prometheus (ServiceMonitor)."""

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:GpuOperator", name, args, NAMESPACE, opts)
        self.release = self.install("release", "gpu-operator", "gpu-operator")
        self.register_outputs({"release": self.release.status})
