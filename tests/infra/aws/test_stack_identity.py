"""The cluster and its node pools stand in one place: Karpenter takes the stack's cluster name,
environment, region, account and IAM scope from the cluster it joins (`EksCluster.for_node_pools`),
never fact by fact, so its nodes, roles and policies cannot name another place than the cluster's.

Built directly under the one mock engine (the `mock_engine` fixture) with an identity whose region
and account differ from the mocks' own answers: a fact taken from anywhere but the identity shows.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.aws.cluster import EksCluster
from infra.aws.iam import IamScope
from infra.aws.identity import StackIdentity
from infra.aws.karpenter import GpuNodePools, GpuNodePoolsArgs
from infra.config import ENVIRONMENTS, load_environment
from infra.contract import ENVIRONMENT_LABEL
from mlplat.mocks import ACCOUNT, REGION, Recording, decode, run
from tests.support.aws_components import eks_cluster_args

ENV = ENVIRONMENTS[0]
OTHER_ACCOUNT = "210987654321"
OTHER_REGION = "ap-southeast-2"
IDENTITY = StackIdentity(
    cluster_name=f"mlplat-{ENV}",
    environment=ENV,
    region=OTHER_REGION,
    account_id=OTHER_ACCOUNT,
    iam=IamScope(
        prefix=f"mlplat-{ENV}-", boundary_arn=f"arn:aws:iam::{OTHER_ACCOUNT}:policy/mlplat-boundary-{ENV}"
    ),
)


@pytest.fixture
def built(mock_engine: Recording) -> dict[str, dict[str, Any]]:
    """The cluster and the node pools made from it, each registration's inputs by resource name
    (with its URN and dependencies under `urn` and `dependencies`)."""
    assert (OTHER_ACCOUNT, OTHER_REGION) != (ACCOUNT, REGION)
    config = load_environment(ENV)

    def program() -> None:
        cluster = EksCluster("cluster", eks_cluster_args(IDENTITY, config))
        GpuNodePools(
            "gpu",
            GpuNodePoolsArgs(
                cluster=cluster.for_node_pools,
                gpu=config.gpu,
                cpu_pool=config.cpu_pool,
                storage_encrypted=True,
            ),
        )

    run(program)
    return {
        r.name: {
            **decode(r.inputs, lambda _path, value: value),
            "urn": r.urn,
            "dependencies": r.dependencies,
        }
        for r in mock_engine.resources
    }


def _statements(policy: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(policy)["Statement"]}


def test_karpenter_joins_the_cluster_it_is_given_not_one_of_the_same_name_elsewhere(
    built: dict[str, dict[str, Any]],
) -> None:
    eks, access, release = built["cluster-eks"], built["gpu-node"], built["gpu-karpenter"]
    assert access["clusterName"] == eks["name"] == IDENTITY.cluster_name, access["urn"]
    assert eks["urn"] in access["dependencies"], f"{access['urn']} does not wait for {eks['urn']}"
    settings = release["values"]["settings"]
    assert settings["clusterName"] == IDENTITY.cluster_name, release["urn"]
    assert settings["clusterEndpoint"].endswith(f".{REGION}.eks.amazonaws.com"), release["urn"]


def test_karpenters_roles_and_policy_name_the_clusters_account_region_and_iam_scope(
    built: dict[str, dict[str, Any]],
) -> None:
    roles = {name: r for name, r in built.items() if r["urn"].endswith(f"aws:iam/role:Role::{name}")}
    karpenter_roles = {name: r for name, r in roles.items() if name.startswith("gpu-")}
    assert karpenter_roles, sorted(roles)
    for role in roles.values():
        assert role["namePrefix"] == IDENTITY.iam.prefix, role["urn"]
        assert role["permissionsBoundary"] == IDENTITY.iam.boundary_arn, role["urn"]

    controller = built["gpu-controller-policy"]
    policy = _statements(controller["policy"])
    cluster_arn = f"arn:aws:eks:{OTHER_REGION}:{OTHER_ACCOUNT}:cluster/{IDENTITY.cluster_name}"
    assert policy["AllowAPIServerEndpointDiscovery"]["Resource"] == [cluster_arn], controller["urn"]
    profiles = f"arn:aws:iam::{OTHER_ACCOUNT}:instance-profile/*"
    assert policy["AllowInstanceProfileReadActions"]["Resource"] == [profiles], controller["urn"]
    regional = policy["AllowRegionalReadActions"]["Condition"]["StringEquals"]
    assert regional == {"aws:RequestedRegion": OTHER_REGION}, controller["urn"]

    key_policy = _statements(built["cluster-ebs"]["policy"])["VolumesThroughEc2ForThisStack"]["Condition"]
    assert key_policy["StringEquals"] == {
        "kms:CallerAccount": OTHER_ACCOUNT,
        "kms:ViaService": f"ec2.{OTHER_REGION}.amazonaws.com",
    }, built["cluster-ebs"]["urn"]


def test_karpenters_nodes_carry_the_clusters_environment_and_discovery_tags(
    built: dict[str, dict[str, Any]],
) -> None:
    classes = [r for r in built.values() if r.get("kind") == "EC2NodeClass"]
    assert len(classes) == 2, [r["urn"] for r in classes]
    for node_class in classes:
        spec = node_class["spec"]
        assert spec["tags"][ENVIRONMENT_LABEL] == IDENTITY.environment, node_class["urn"]
        assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": IDENTITY.cluster_name}}], (
            node_class["urn"]
        )
