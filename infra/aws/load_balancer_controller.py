"""The AWS Load Balancer Controller's IRSA role: upstream's policy, cut to NLBs of this cluster.

The controller exists here for one job: the NLB in front of the inference gateway's Envoy proxies
(docs/adr/0005-inference-gateway.md). Its chart is installed by infra/services/gateway.py with
every ALB path closed (no IngressClass, the ingress-class annotation ignored, ALB and NLB Gateway
API support off, Shield/WAF add-ons off), so the ALB-only grants of upstream's policy go.

Source: kubernetes-sigs/aws-load-balancer-controller v3.5.0 docs/install/iam_policy.json (read-only
copy in ../shared/reference/iam/aws-load-balancer-controller/iam_policy.json, which
tests/infra/aws/test_load_balancer_controller_iam.py compares against). Differences, each narrower:
- Upstream's cluster-tag conditions only ask that `elbv2.k8s.aws/cluster` be present (`Null`:
  "false"); here it must equal this cluster's name, the value the controller writes on everything
  it creates (pkg/deploy/tracking/provider.go and pkg/networking/backend_sg_provider.go,
  shared_constants.TagKeyK8sCluster), so another cluster's load balancers are out of reach.
- Every ARN names this region and account instead of `*:*`, and load balancers are `net/` only
  (upstream creates on `*`); the read-only Describe statement, which has no resource-level form,
  is held to the region by `aws:RequestedRegion`.
- Security groups are created in this cluster's VPC only (CreateSecurityGroup authorizes the
  `vpc` resource as well as the new group), and rules are added to groups of that VPC only.
- Dropped: `iam:CreateServiceLinkedRole` (the permissions boundary, infra/bootstrap/deploy_roles.tf
  workload_boundary, does not grant it; the bootstrap creates the ELB service-linked role,
  infra/bootstrap/service_linked_roles.tf), the ALB
  statement (Cognito, ACM, IAM server certificates, WAF, WAF Regional, Shield), `app/` load balancer
  and listener ARNs, rules (CreateRule, DeleteRule, ModifyRule, SetRulePriorities), SetWebAcl and
  listener certificates: NLB listeners here are TCP, TLS ends at Envoy.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.aws.iam import IrsaRole, OidcIssuer, Statement, irsa_role
from infra.aws.identity import StackIdentity

NAMESPACE = "aws-load-balancer-controller"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
# The tag the controller writes on every load balancer, target group and security group it creates.
CLUSTER_TAG = "elbv2.k8s.aws/cluster"


@dataclass(frozen=True)
class ControllerScope:
    """What the controller's policy names: the stack's cluster (the tag value), region and account, and
    the cluster's VPC."""

    stack: StackIdentity
    vpc_id: pulumi.Input[str]


def controller_statements(scope: ControllerScope) -> list[Statement]:
    """The controller's permissions, upstream's statements in upstream's order (module docstring)."""
    cluster_name, region, account = scope.stack.cluster_name, scope.stack.region, scope.stack.account_id
    ec2 = pulumi.Output.format("arn:aws:ec2:{0}:{1}", region, account)
    elb = pulumi.Output.format("arn:aws:elasticloadbalancing:{0}:{1}", region, account)

    def arn(base: pulumi.Output[str], tail: str) -> pulumi.Output[str]:
        return pulumi.Output.concat(base, ":", tail)

    security_groups = arn(ec2, "security-group/*")
    vpc = pulumi.Output.concat(ec2, ":vpc/", scope.vpc_id)
    target_groups = arn(elb, "targetgroup/*/*")
    network_lbs = arn(elb, "loadbalancer/net/*/*")
    network_listeners = arn(elb, "listener/net/*/*/*")
    owned = {"StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": cluster_name}}
    requested = {"StringEquals": {f"aws:RequestTag/{CLUSTER_TAG}": cluster_name}}
    # Tagging an owned resource may not move or drop its cluster tag.
    keeps_cluster_tag = {
        "Null": {f"aws:RequestTag/{CLUSTER_TAG}": "true"},
        "StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": cluster_name},
    }
    return [
        Statement(
            "Describe",
            [
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeVpcs",
                "ec2:DescribeVpcPeeringConnections",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeInstances",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeTags",
                "ec2:GetCoipPoolUsage",
                "ec2:DescribeCoipPools",
                "ec2:GetSecurityGroupsForVpc",
                "ec2:DescribeIpamPools",
                "ec2:DescribeRouteTables",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeListenerCertificates",
                "elasticloadbalancing:DescribeSSLPolicies",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTrustStores",
                "elasticloadbalancing:DescribeListenerAttributes",
                "elasticloadbalancing:DescribeCapacityReservation",
            ],
            ["*"],
            {"StringEquals": {"aws:RequestedRegion": region}},
        ),
        # Rules on groups the controller did not create: the nodes' and pods' groups admitting the NLB.
        # They carry no cluster tag, so they are held to this cluster's VPC instead: the security-group
        # resource carries `ec2:Vpc` (Service Authorization Reference, Amazon EC2, resource type
        # security-group; example "Manage security groups" in
        # https://docs.aws.amazon.com/vpc/latest/userguide/vpc-policy-examples.html). Another
        # environment's groups live in another VPC and are out of reach.
        Statement(
            "NodeSecurityGroupRules",
            ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
            [security_groups],
            {"ArnEquals": {"ec2:Vpc": vpc}},
        ),
        Statement("CreateSecurityGroupInClusterVpc", ["ec2:CreateSecurityGroup"], [security_groups, vpc]),
        Statement(
            "TagSecurityGroupOnCreate",
            ["ec2:CreateTags"],
            [security_groups],
            {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup", **requested["StringEquals"]}},
        ),
        Statement(
            "TagOwnedSecurityGroups",
            ["ec2:CreateTags", "ec2:DeleteTags"],
            [security_groups],
            keeps_cluster_tag,
        ),
        Statement(
            "ManageOwnedSecurityGroups",
            [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
            ],
            [security_groups],
            owned,
        ),
        Statement(
            "CreateTaggedLoadBalancers",
            ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
            [target_groups, network_lbs],
            requested,
        ),
        Statement(
            "NetworkListeners",
            ["elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener"],
            [network_lbs, network_listeners],
        ),
        Statement(
            "TagOwnedLoadBalancers",
            ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            [target_groups, network_lbs],
            keeps_cluster_tag,
        ),
        Statement(
            "TagNetworkListeners",
            ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            [network_listeners, arn(elb, "listener-rule/net/*/*/*")],
        ),
        Statement(
            "ManageOwnedLoadBalancers",
            [
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:SetIpAddressType",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:ModifyListenerAttributes",
                "elasticloadbalancing:ModifyCapacityReservation",
                "elasticloadbalancing:ModifyIpPools",
            ],
            [target_groups, network_lbs, network_listeners],
            owned,
        ),
        Statement(
            "TagOnCreate",
            ["elasticloadbalancing:AddTags"],
            [target_groups, network_lbs],
            {
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"],
                    **requested["StringEquals"],
                }
            },
        ),
        Statement(
            "RegisterTargetsOfOwnedGroups",
            ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
            [target_groups],
            owned,
        ),
        Statement("ModifyNetworkListeners", ["elasticloadbalancing:ModifyListener"], [network_listeners]),
    ]


def controller_role(
    name: str, oidc: OidcIssuer, scope: ControllerScope, opts: pulumi.ResourceOptions
) -> IrsaRole:
    """The IRSA role of `aws-load-balancer-controller/aws-load-balancer-controller`, in the stack's IAM scope."""
    return irsa_role(
        name, scope.stack.iam, oidc, NAMESPACE, SERVICE_ACCOUNT, controller_statements(scope), opts
    )
