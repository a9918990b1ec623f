"""The AWS Load Balancer Controller: provisions the inference gateway's NLB, and nothing else.

It runs with its own IRSA role (infra/aws/load_balancer_controller.py), which grants NLB work on
this cluster's resources only; the values close every ALB path so the role needs no ALB grants
(platform/aws-load-balancer-controller/values.yaml says which switch closes what). Cluster name,
region and VPC are handed in rather than looked up: the controller would otherwise ask the
instance metadata service, which the NetworkPolicies (and IRSA) keep pods away from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.aws.load_balancer_controller import NAMESPACE as NAMESPACE
from infra.aws.load_balancer_controller import SERVICE_ACCOUNT
from infra.contract import ENVIRONMENT_LABEL
from infra.services.chart import ChartService, ServiceArgs

RELEASE = "aws-load-balancer-controller"
# Controller ports (aws-load-balancer-controller 3.5.0 values.yaml: metricsBindAddr ":8080",
# webhookBindPort 9443), for the NetworkPolicies.
METRICS_PORT = 8080
WEBHOOK_PORT = 9443


@dataclass(frozen=True)
class LoadBalancing:
    """What the AWS layer made for the controller (infra/aws/load_balancer_controller.py, network.py)."""

    role_arn: pulumi.Input[str]  # IRSA role of aws-load-balancer-controller/aws-load-balancer-controller
    cluster_name: pulumi.Input[str]  # the cluster whose load balancers and target groups it owns
    vpc_id: pulumi.Input[str]  # the VPC its NLBs and security groups live in


@dataclass(frozen=True, kw_only=True)
class LoadBalancerControllerArgs(ServiceArgs):
    aws: LoadBalancing


def computed_values(args: LoadBalancerControllerArgs) -> dict[str, Any]:
    return {
        "clusterName": args.aws.cluster_name,
        "region": args.cluster.region,
        "vpcId": args.aws.vpc_id,
        "serviceAccount": {
            "name": SERVICE_ACCOUNT,
            "annotations": {"eks.amazonaws.com/role-arn": args.aws.role_arn},
        },
        # The environment tag on every load balancer, target group and security group it creates: the
        # permissions boundary's DenyOtherEnvironments and the cost reports key on it.
        "defaultTags": {ENVIRONMENT_LABEL: args.cluster.environment},
    }


class LoadBalancerController(ChartService):
    """The controller's release (CRDs from the chart's crds/ directory) with its ServiceMonitor."""

    def __init__(
        self, name: str, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(
            "mlplat:services:LoadBalancerController",
            name,
            NAMESPACE,
            args.cluster,
            [args.monitoring_crds],
            opts,
        )
        self.release = self.install(
            "release", RELEASE, "aws-load-balancer-controller", computed=computed_values(args)
        )
        self.register_outputs({"release": self.release.status})
