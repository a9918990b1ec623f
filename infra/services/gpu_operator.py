"""NVIDIA GPU Operator: device plugin, GPU feature discovery and the DCGM exporter on GPU nodes.

The EKS NVIDIA AMI ships the driver and container toolkit, so the operator installs neither; it
only adds what Kubernetes needs to schedule and observe GPUs.

GPU sharing: a GPU pool with `time_slicing_replicas: N` labels its nodes
`nvidia.com/device-plugin.config=time-sliced-N` (infra/aws/karpenter.py); the device plugin on such a
node reads the entry `time-sliced-N` of the ConfigMap the chart creates here and advertises N
`nvidia.com/gpu` per physical GPU. Every other node gets the `exclusive` entry (one pod per GPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import yaml

from infra.config import GpuConfig, time_slicing_config_name
from infra.services.chart import ChartService, ServiceArgs

NAMESPACE = "gpu-operator"
DEVICE_PLUGIN_CONFIG = "device-plugin-config"
EXCLUSIVE = "exclusive"


@dataclass(frozen=True, kw_only=True)
class GpuOperatorArgs(ServiceArgs):
    gpu: GpuConfig  # the GPU pools: which time-slicing levels the device plugin is configured for


def _plugin_config(replicas: int | None) -> str:
    """One device plugin configuration file (NVIDIA/k8s-device-plugin config `version: v1`).

    `sharing.timeSlicing` with `failRequestsGreaterThanOne` and `resources[].replicas` are the fields of
    the plugin's `TimeSlicing` struct (NVIDIA/k8s-device-plugin api/config/v1/sharing.go; the operator's
    own test config v26.7.0 tests/plugin-config.yaml has the same shape). `failRequestsGreaterThanOne`
    refuses a pod asking for 2+ slices: two slices of one GPU are not two GPUs.
    """
    config: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": "none"}}
    if replicas is not None:
        config["sharing"] = {
            "timeSlicing": {
                "renameByDefault": False,
                "failRequestsGreaterThanOne": True,
                "resources": [{"name": "nvidia.com/gpu", "replicas": replicas}],
            }
        }
    return yaml.safe_dump(config, sort_keys=True)


def device_plugin_values(gpu: GpuConfig) -> dict[str, Any]:
    """`devicePlugin.config` of the chart: a ConfigMap with one entry per sharing level the pools use.

    gpu-operator v26.7.0 values.yaml `devicePlugin.config.{create,name,default,data}`;
    templates/plugin_config.yaml creates the ConfigMap from `data` when `create` is set, and
    templates/clusterpolicy.yaml puts `name` and `default` into ClusterPolicy `spec.devicePlugin.config`
    (fields of ../shared/reference/crds/gpu-operator/nvidia.com_clusterpolicies.yaml). Without a
    time-sliced pool nothing changes: no ConfigMap, the plugin's built-in defaults.
    """
    levels = sorted({p.time_slicing_replicas for p in gpu.pools if p.time_slicing_replicas is not None})
    if not levels:
        return {}
    data = {EXCLUSIVE: _plugin_config(None)}
    data |= {time_slicing_config_name(n): _plugin_config(n) for n in levels}
    return {
        "devicePlugin": {
            "config": {"create": True, "name": DEVICE_PLUGIN_CONFIG, "default": EXCLUSIVE, "data": data}
        }
    }


class GpuOperator(ChartService):
    """GPU Operator with DCGM metrics scraped by Prometheus (ServiceMonitor)."""

    def __init__(self, name: str, args: GpuOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "mlplat:services:GpuOperator", name, NAMESPACE, args.cluster, [args.monitoring_crds], opts
        )
        self.release = self.install(
            "release", "gpu-operator", "gpu-operator", computed=device_plugin_values(args.gpu)
        )
        self.register_outputs({"release": self.release.status})
