"""GPU node pools on Karpenter: scale from zero when a GPU pod is pending, back to zero when idle.

The choice and its reasons are in docs/adr/0001-gpu-autoscaling.md. Each pool in stack config
becomes a NodePool with the GPU taint, a pool label, its instance types, capacity type and a
GPU limit; the pools' limits together stay within the environment's GPU cap (config enforces it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import versions
from infra.aws.iam import IamScope, OidcIssuer, Statement, irsa_role, role, service_trust
from infra.config import GpuConfig

NAMESPACE = "karpenter"
SERVICE_ACCOUNT = "karpenter"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
POOL_LABEL = "mlplat/gpu-pool"
NODE_CLASS = "gpu"
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
)
# Describe/read APIs that support no resource-level permissions: listed one by one, never `ec2:*`.
DESCRIBE_ACTIONS = [
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
    "pricing:GetProducts",
]
INTERRUPTION_EVENTS = {
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
}


@dataclass(frozen=True)
class GpuNodePoolsArgs:
    cluster_name: str
    cluster_endpoint: pulumi.Input[str]
    region: str
    gpu: GpuConfig
    oidc: OidcIssuer
    ebs_key_arn: pulumi.Input[str]
    storage_encrypted: bool
    iam: IamScope


def node_class_spec(node_role: str, cluster_name: str, ebs_key_arn: str, encrypted: bool) -> dict[str, Any]:
    """EC2NodeClass for GPU nodes: NVIDIA AMI (via alias), IMDSv2 only, encrypted root volume."""
    ebs: dict[str, Any] = {
        "volumeSize": "200Gi",
        "volumeType": "gp3",
        "encrypted": encrypted,
        "deleteOnTermination": True,
    }
    if encrypted:
        ebs["kmsKeyID"] = ebs_key_arn
    return {
        "role": node_role,
        "amiSelectorTerms": [{"alias": versions.KARPENTER_GPU_AMI_ALIAS}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster_name}}],
        # EKS tags the cluster security group with the cluster name; nodes join through it.
        "securityGroupSelectorTerms": [{"tags": {"aws:eks:cluster-name": cluster_name}}],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": ebs}],
        "tags": {"mlplat/node-class": NODE_CLASS},
    }


def node_pool_spec(pool: Any) -> dict[str, Any]:
    """One GPU pool: tainted, labelled with its name, limited to its share of the GPU cap."""
    return {
        "template": {
            "metadata": {"labels": {POOL_LABEL: pool.name, **pool.labels}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODE_CLASS},
                "taints": [GPU_TAINT],
                "requirements": [
                    {
                        "key": "node.kubernetes.io/instance-type",
                        "operator": "In",
                        "values": list(pool.instance_types),
                    },
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [pool.capacity_type]},
                ],
                "expireAfter": "720h",
            },
        },
        "limits": {"nvidia.com/gpu": str(pool.max_size * pool.gpus_per_node)},
        # Empty or underused GPU nodes go away after 5 minutes: pools rest at zero nodes.
        "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "5m"},
    }


class GpuNodePools(pulumi.ComponentResource):
    """Karpenter (controller, node role, interruption queue) and one NodePool per GPU pool."""

    pool_names: list[str]

    def __init__(self, name: str, args: GpuNodePoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:cluster:GpuNodePools", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        node_role = role(
            f"{name}-node", args.iam, service_trust("ec2.amazonaws.com"), "Karpenter GPU nodes", child
        )
        for index, arn in enumerate(NODE_POLICIES):
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{index}",
                role=node_role.name,
                policy_arn=arn,
                opts=pulumi.ResourceOptions(parent=node_role),
            )
        aws.eks.AccessEntry(
            f"{name}-node",
            cluster_name=args.cluster_name,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            opts=child,
        )
        profile_arn = "arn:aws:iam::*:instance-profile/*"  # Karpenter names the profiles it manages
        queue = aws.sqs.Queue(
            f"{name}-interruptions",
            name_prefix=args.iam.prefix,
            message_retention_seconds=300,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruptions",
            queue_url=queue.url,
            policy=queue.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "EventBridgeWrites",
                                "Effect": "Allow",
                                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                                "Action": "sqs:SendMessage",
                                "Resource": arn,
                            },
                            {
                                "Sid": "DenyNonTls",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "sqs:*",
                                "Resource": arn,
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            },
                        ],
                    },
                    sort_keys=True,
                )
            ),
            opts=pulumi.ResourceOptions(parent=queue),
        )
        for event, pattern in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{event}",
                name_prefix=args.iam.prefix,
                event_pattern=json.dumps(pattern, sort_keys=True),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{event}", rule=rule.name, arn=queue.arn, opts=pulumi.ResourceOptions(parent=rule)
            )

        cluster_arn = f"arn:aws:eks:{args.region}:*:cluster/{args.cluster_name}"
        controller_role = irsa_role(
            f"{name}-controller",
            args.iam,
            args.oidc,
            NAMESPACE,
            SERVICE_ACCOUNT,
            [
                Statement("ReadInventory", DESCRIBE_ACTIONS, ["*"]),
                Statement(
                    "LaunchNodes",
                    ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate", "ec2:CreateTags"],
                    [
                        f"arn:aws:ec2:{args.region}:*:fleet/*",
                        f"arn:aws:ec2:{args.region}:*:instance/*",
                        f"arn:aws:ec2:{args.region}:*:launch-template/*",
                        f"arn:aws:ec2:{args.region}:*:network-interface/*",
                        f"arn:aws:ec2:{args.region}:*:spot-instances-request/*",
                        f"arn:aws:ec2:{args.region}:*:volume/*",
                        f"arn:aws:ec2:{args.region}:*:security-group/*",
                        f"arn:aws:ec2:{args.region}:*:subnet/*",
                        f"arn:aws:ec2:{args.region}::image/*",
                        f"arn:aws:ec2:{args.region}::snapshot/*",
                    ],
                ),
                Statement(
                    "TerminateOwnNodes",
                    ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                    [
                        f"arn:aws:ec2:{args.region}:*:instance/*",
                        f"arn:aws:ec2:{args.region}:*:launch-template/*",
                    ],
                    condition={"StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
                ),
                Statement("PassNodeRole", ["iam:PassRole"], [node_role.arn]),
                Statement(
                    "ManageInstanceProfiles",
                    [
                        "iam:GetInstanceProfile",
                        "iam:CreateInstanceProfile",
                        "iam:TagInstanceProfile",
                        "iam:AddRoleToInstanceProfile",
                        "iam:RemoveRoleFromInstanceProfile",
                        "iam:DeleteInstanceProfile",
                    ],
                    [profile_arn],
                ),
                Statement("ReadCluster", ["eks:DescribeCluster"], [cluster_arn]),
                Statement(
                    "ReadAmiParameters",
                    ["ssm:GetParameter"],
                    [f"arn:aws:ssm:{args.region}::parameter/aws/service/*"],
                ),
                Statement(
                    "ConsumeInterruptions",
                    ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
                    [queue.arn],
                ),
            ],
            child,
        )

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE, labels={"pod-security.kubernetes.io/enforce": "restricted"}
            ),
            opts=child,
        )
        pin = versions.CHARTS["karpenter"]
        release = k8s.helm.v3.Release(
            f"{name}-karpenter",
            name="karpenter",
            chart=pin.chart,
            version=pin.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=pin.repo),
            namespace=NAMESPACE,
            atomic=True,
            cleanup_on_fail=True,
            values={
                "settings": {
                    "clusterName": args.cluster_name,
                    "clusterEndpoint": args.cluster_endpoint,
                    "interruptionQueue": queue.name,
                },
                "serviceAccount": {
                    "name": SERVICE_ACCOUNT,
                    "annotations": {"eks.amazonaws.com/role-arn": controller_role.arn},
                },
                # Karpenter must not run on the nodes it manages.
                "nodeSelector": {"mlplat/pool": "system"},
                "controller": {
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    }
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )

        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[release])
        node_class = k8s.apiextensions.CustomResource(
            f"{name}-node-class",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NODE_CLASS),
            spec=pulumi.Output.all(node_role.name, args.ebs_key_arn).apply(
                lambda v: node_class_spec(v[0], args.cluster_name, v[1], args.storage_encrypted)
            ),
            opts=after_crds,
        )
        for pool in args.gpu.pools:
            k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}",
                api_version="karpenter.sh/v1",
                kind="NodePool",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=pool.name),
                spec=node_pool_spec(pool),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release, node_class]),
            )

        self.pool_names = [pool.name for pool in args.gpu.pools]
        self.register_outputs({"poolNames": self.pool_names})
