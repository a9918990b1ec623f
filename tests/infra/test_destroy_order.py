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
from tests.support.aws_helpers import of_type, one, waits_for

PlanFor = Callable[[str], dict[str, Any]]
CLUSTER_POLICY = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"


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
