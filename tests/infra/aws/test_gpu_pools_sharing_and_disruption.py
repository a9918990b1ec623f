"""GPU pools on the offline plan: nodes with a loading model are not torn down, shared GPUs are sliced.

karpenter-provider-aws#7356: a WhenEmptyOrUnderutilized GPU pool consolidated nodes while models were
still loading, evicting them and starting the load over on another node.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.aws.karpenter import node_pool_spec
from infra.config import CPU_MODEL_POOL_NAME, ENVIRONMENTS, load_environment
from tests.support.aws_helpers import of_type

PlanFor = Callable[[str], dict[str, Any]]
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
RELEASE = "kubernetes:helm.sh/v3:Release"
REPO = Path(__file__).resolve().parents[3]


def _pools(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["inputs"]["metadata"]["name"]: p for p in of_type(plan, NODE_POOL)}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_gpu_pool_does_not_consolidate_a_node_while_a_model_loads(offline_plan: PlanFor, env: str) -> None:
    # The CPU model pool (CPU_MODEL_POOL_NAME) consolidates underused nodes: CPU models load in seconds.
    gpu_pools = [p for name, p in _pools(offline_plan(env)).items() if name != CPU_MODEL_POOL_NAME]
    assert gpu_pools, env
    for pool in gpu_pools:
        disruption, urn = pool["inputs"]["spec"]["disruption"], pool["urn"]
        # Only empty nodes are consolidated: a node whose predictor is still loading is never "underused".
        assert disruption["consolidationPolicy"] == "WhenEmpty", f"{urn}: {disruption}"
        # At most one GPU node of a pool is voluntarily disrupted at a time (drift included).
        assert disruption["budgets"] == [{"nodes": "1"}], f"{urn}: {disruption.get('budgets')}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_gpu_predictors_are_protected_from_disruption_while_they_load(env: str) -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "apps" / "llm-chat" / "overlays" / env)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (isvc,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "InferenceService"]
    annotation = isvc["spec"]["predictor"].get("annotations", {}).get("karpenter.sh/do-not-disrupt")
    # A duration, not "true": protected while it downloads and loads, disruptable (drift, AMI updates) after.
    assert annotation == "30m", f"{env}: llm-chat predictor pods carry do-not-disrupt={annotation!r}"


def test_a_pool_may_opt_back_into_underutilised_consolidation() -> None:
    config = load_environment("staging")
    chosen = config.gpu.pools[0].model_copy(update={"consolidation": "WhenEmptyOrUnderutilized"})
    assert node_pool_spec(chosen)["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"


def test_time_sliced_pool_nodes_get_the_shared_device_plugin_config(offline_plan: PlanFor) -> None:
    plan, config = offline_plan("dev"), load_environment("dev")
    shared = [p for p in config.gpu.pools if p.time_slicing_replicas]
    assert shared, "dev runs a time-sliced pool (environments/Pulumi.dev.yaml)"
    pools = _pools(plan)
    (operator,) = [r for r in of_type(plan, RELEASE) if r["inputs"]["name"] == "gpu-operator"]
    plugin = operator["inputs"]["values"]["devicePlugin"]["config"]
    assert plugin["create"] is True and plugin["default"] == "exclusive", operator["urn"]
    for pool in shared:
        resource = pools[pool.name]
        template = resource["inputs"]["spec"]["template"]
        config_name = template["metadata"]["labels"]["nvidia.com/device-plugin.config"]
        # The label names an entry of the ConfigMap the GPU Operator's device plugin reads...
        entry = yaml.safe_load(plugin["data"][config_name])
        resources = entry["sharing"]["timeSlicing"]["resources"]
        assert resources == [{"name": "nvidia.com/gpu", "replicas": pool.time_slicing_replicas}], resource[
            "urn"
        ]
        assert entry["sharing"]["timeSlicing"]["failRequestsGreaterThanOne"] is True, resource["urn"]
        # ...and only pods that ask for a shared GPU land there.
        assert {"key": "mlplat/gpu-sharing", "value": config_name, "effect": "NoSchedule"} in template[
            "spec"
        ]["taints"], resource["urn"]
    # Every other GPU node keeps one pod per GPU.
    assert "sharing" not in yaml.safe_load(plugin["data"]["exclusive"]), operator["urn"]
    for name, resource in pools.items():
        if name not in {p.name for p in shared}:
            labels = resource["inputs"]["spec"]["template"]["metadata"]["labels"]
            assert "nvidia.com/device-plugin.config" not in labels, resource["urn"]


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_environments_without_a_shared_pool_leave_the_device_plugin_alone(
    offline_plan: PlanFor, env: str
) -> None:
    plan = offline_plan(env)
    (operator,) = [r for r in of_type(plan, RELEASE) if r["inputs"]["name"] == "gpu-operator"]
    assert "config" not in (operator["inputs"]["values"].get("devicePlugin") or {}), operator["urn"]
