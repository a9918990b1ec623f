"""Who and where this stack is in AWS, as one value.

The program builds it once from the stack config and the caller's account. The cluster and the load
balancer controller's role take it whole, Karpenter's node pools take it from the cluster they join
(`ClusterForNodePools`), and a component that only creates roles takes its `IamScope`. Handed over
fact by fact, one component could be given a region, account or cluster name its neighbour was not:
the EBS key's policy, Karpenter's controller policy and the load balancer controller's policy would
then name different places.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.aws.iam import IamScope


@dataclass(frozen=True)
class StackIdentity:
    """Who and where this stack is in AWS (module docstring)."""

    # The EKS cluster's name: the subnets' and nodes' discovery tags and the ARNs policies are held to.
    cluster_name: str
    # The deploy isolation tag on what runs outside the stack's own resources: the volumes the EBS
    # CSI driver creates and the instances and volumes Karpenter launches.
    environment: str
    region: str
    # The account the AWS provider's credentials belong to, known only once the provider answers.
    account_id: pulumi.Input[str]
    # Where every role of the stack lives: the name prefix and boundary the deploy role demands.
    iam: IamScope
