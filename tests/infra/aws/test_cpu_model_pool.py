"""CPU model pods get a Karpenter pool of their own, never the system node group (issue 14, item 5).

Asserted on every environment's offline plan; each assertion names the URN it is about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.config import ENVIRONMENTS, load_environment
from tests.support.aws_helpers import of_type, one

PlanFor = Callable[[str], dict[str, Any]]
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
MODEL_TAINT = {"key": "mlplat/pool", "value": "models-cpu", "effect": "NoSchedule"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cpu_models_get_a_tainted_karpenter_pool_sized_by_the_stack(offline_plan: PlanFor, env: str) -> None:
    plan, config = offline_plan(env), load_environment(env).cpu_pool
    pool = one(plan, NODE_POOL, "gpu-models-cpu")
    urn, spec = pool["urn"], pool["inputs"]["spec"]
    assert urn == f"urn:pulumi:{env}::mlplat::mlplat:cluster:GpuNodePools${NODE_POOL}::gpu-models-cpu"
    assert pool["inputs"]["metadata"]["name"] == "models-cpu", urn
    template = spec["template"]
    assert template["metadata"]["labels"] == {"mlplat/pool": "models-cpu"}, urn
    assert template["spec"]["taints"] == [MODEL_TAINT], urn
    assert template["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "models-cpu",
    }, urn
    requirements = {r["key"]: (r["operator"], r["values"]) for r in template["spec"]["requirements"]}
    assert requirements["node.kubernetes.io/instance-type"] == ("In", config.instance_types), urn
    assert requirements["karpenter.sh/capacity-type"] == ("In", [config.capacity_type]), urn
    assert spec["limits"] == {"cpu": str(config.max_vcpus), "memory": f"{config.max_memory_gib}Gi"}, urn
    assert spec["disruption"] == {
        "consolidationPolicy": config.consolidation_policy,
        "consolidateAfter": config.consolidate_after,
    }, urn
    # The pool waits for Karpenter's CRDs (the release) and its own node class.
    depends = set(pool["dependsOn"])
    node_class = one(plan, NODE_CLASS, "gpu-models-cpu-node-class")
    assert node_class["urn"] in depends, urn


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cpu_model_nodes_are_encrypted_imdsv2_and_tagged_with_their_environment(
    offline_plan: PlanFor, env: str
) -> None:
    node_class = one(offline_plan(env), NODE_CLASS, "gpu-models-cpu-node-class")
    spec, urn = node_class["inputs"]["spec"], node_class["urn"]
    assert node_class["inputs"]["metadata"]["name"] == "models-cpu", urn
    assert spec["metadataOptions"]["httpTokens"] == "required", urn
    (device,) = spec["blockDeviceMappings"]
    assert device["ebs"]["encrypted"] is True and device["ebs"]["kmsKeyID"], urn
    assert spec["tags"] == {"mlplat/node-class": "models-cpu", "mlplat/environment": env}, urn


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cpu_model_pods_do_not_land_on_the_system_node_group(offline_plan: PlanFor, env: str) -> None:
    """The system group carries `mlplat/pool=system`; model pods select `mlplat/pool=models-cpu`, a label
    only the model pool's nodes carry, so a model pod that selects its pool can never land there."""
    plan = offline_plan(env)
    group = one(plan, "aws:eks/nodeGroup:NodeGroup")
    assert group["inputs"]["labels"] == {"mlplat/pool": "system"}, group["urn"]
    labelled = {
        p["urn"]: p["inputs"]["spec"]["template"]["metadata"]["labels"].get("mlplat/pool")
        for p in of_type(plan, NODE_POOL)
    }
    assert [urn for urn, value in labelled.items() if value == "models-cpu"] == [
        f"urn:pulumi:{env}::mlplat::mlplat:cluster:GpuNodePools${NODE_POOL}::gpu-models-cpu"
    ]
    assert "system" not in labelled.values()
