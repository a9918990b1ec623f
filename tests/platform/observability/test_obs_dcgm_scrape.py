"""Every DCGM series carries the node label the GPU rules join on and the GPU alerts name.

The exporter's own host label cannot be that label: dcgm-exporter 4.8.3, the GPU Operator v26.7.0's
default image, renamed it from `Hostname` to `hostname` (NVIDIA/dcgm-exporter#655), and the rules read
`Hostname` until then, so every GPU record came out empty. The node comes instead from the scrape: the
operator writes the chart's `dcgmExporter.serviceMonitor.relabelings` onto the endpoint of the
ServiceMonitor it creates (controllers/object_controls.go applyServiceMonitorCustomEdits), and Prometheus
discovers that endpoint with the meta labels of the exporter pod behind it, its node name among them
(prometheus/prometheus discovery/kubernetes/endpointslice.go merges pod.go podLabels).
"""

from __future__ import annotations

import re

import pytest

from infra.contract import ENVIRONMENTS
from tests.support.harness import build
from tests.support.obs_helpers import RULES_DIR, load_yaml, rel
from tests.support.relabel import relabel

GPU_RULES = RULES_DIR / "gpu.yaml"
NODE = "ip-10-0-3-21.eu-west-1.compute.internal"
# The target Prometheus's endpointslice role makes of the exporter pod's gpu-metrics port (the operator's
# assets/state-dcgm-exporter/0500_service_monitor.yaml), with the meta labels relabelling can read.
DCGM_TARGET = {
    "__address__": "10.0.3.77:9400",
    "__meta_kubernetes_namespace": "gpu-operator",
    "__meta_kubernetes_endpointslice_port_name": "gpu-metrics",
    "__meta_kubernetes_pod_name": "nvidia-dcgm-exporter-x7k2p",
    "__meta_kubernetes_pod_node_name": NODE,
}
POOL_JOIN = re.compile(r"\bon \((\w+)\) group_left \(gpu_pool\) mlplat:gpu_pool_node_info\b")


def pool_join_label() -> str:
    """The label the GPU records join DCGM series on to find their node's pool."""
    exprs = [rule["expr"] for group in load_yaml(GPU_RULES)["spec"]["groups"] for rule in group["rules"]]
    labels: set[str] = {label for expr in exprs for label in POOL_JOIN.findall(expr)}
    assert len(labels) == 1, f"{rel(GPU_RULES)}: DCGM series joined to their pool on {sorted(labels)}"
    return labels.pop()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_dcgm_series_carries_the_node_the_gpu_rules_join_on(env: str) -> None:
    values = build(env).releases()["gpu-operator"].inputs["values"]
    monitor = values["dcgmExporter"]["serviceMonitor"]
    labels = relabel(DCGM_TARGET, monitor.get("relabelings", []))
    join = pool_join_label()
    assert labels is not None and labels.get(join) == NODE, (
        f"{env}: a DCGM target of node {NODE} is scraped with {join}={labels and labels.get(join)!r}: "
        "the GPU records and the gpu-fleet dashboard would be empty and GPU alerts would name no node"
    )
