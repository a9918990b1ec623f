"""What `pulumi destroy` deletes before what, read from the offline plan of each environment.

The engine deletes in waves: first every resource nothing left depends on, then what only those
depended on, and so on (pulumi/pulumi pkg/resource/deploy/step_generator.go ScheduleDeletes). A
dependent is a resource naming another as dependency, property dependency, provider or parent
(pkg/resource/graph/dependency_graph.go DependenciesOf): what a resource waits for at creation
(`waits_for`) is deleted only after it. A resource that must outlive another during destroy must be
among what that other waits for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.config import ENVIRONMENTS
from infra.services import gateway, load_balancer
from tests.support.aws_helpers import of_type, one, waits_for

PlanFor = Callable[[str], dict[str, Any]]
CLUSTER_POLICY = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"


def named(plan: dict[str, Any], typ: str, name: str) -> dict[str, Any]:
    """The one resource of `typ` whose in-cluster name (metadata.name, or a release's name) is `name`."""
    found = [
        r
        for r in of_type(plan, typ)
        if r["inputs"].get("name", (r["inputs"].get("metadata") or {}).get("name")) == name
    ]
    assert len(found) == 1, f"expected one {typ} {name}, found {[r['urn'] for r in found]}"
    return found[0]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_destroy_deletes_the_cluster_before_its_role_loses_the_eks_cluster_policy(
    offline_plan: PlanFor, env: str
) -> None:
    """An attachment nothing depends on goes in the first wave; EKS then deletes the cluster with a
    role that may not touch EC2 and leaves its managed security groups behind (terraform-provider-aws
    website/docs/r/eks_cluster.html.markdown, `role_arn`)."""
    plan = offline_plan(env)
    cluster = one(plan, "aws:eks/cluster:Cluster")
    # The cluster names its role by ARN, the attachment by name (the ARN's last part).
    role_name = cluster["inputs"]["roleArn"].rsplit("/", 1)[-1]
    (attachment,) = [
        a
        for a in of_type(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a["inputs"]["policyArn"] == CLUSTER_POLICY and a["inputs"]["role"] == role_name
    ]
    assert attachment["urn"] in waits_for(plan, cluster["urn"]), (
        f"{attachment['urn']} is deleted before {cluster['urn']}"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_destroy_uninstalls_the_load_balancer_controller_only_once_the_proxy_namespace_is_gone(
    offline_plan: PlanFor, env: str
) -> None:
    """The Envoy proxy Service carries the controller's finalizer until the controller has deleted its
    NLB: uninstalled any earlier, the Service stays Terminating and the NLB is orphaned (its interfaces
    then keep the VPC from being deleted). Pulumi waits until a deleted Namespace is gone, which is
    once all it holds is, that Service included (infra/services/gateway.py says where each fact is)."""
    plan = offline_plan(env)
    controller = named(plan, "kubernetes:helm.sh/v3:Release", load_balancer.RELEASE)
    proxies = named(plan, "kubernetes:core/v1:Namespace", gateway.NAMESPACE)
    owner = named(plan, "kubernetes:gateway.networking.k8s.io/v1:GatewayClass", gateway.GATEWAY_CLASS)
    for resource in (proxies, owner):
        assert controller["urn"] in waits_for(plan, resource["urn"]), (
            f"{controller['urn']} is uninstalled before {resource['urn']} is gone"
        )
    annotations = proxies["inputs"]["metadata"].get("annotations") or {}
    assert annotations.get("pulumi.com/skipAwait") != "true", f"{proxies['urn']}: deleted without waiting"
