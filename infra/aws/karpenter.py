"""Karpenter node pools for model workloads: GPU pools that scale from zero when a GPU pod is pending
and back to zero when idle, and the CPU model pool, so CPU models never run on the system node group.

The choice and its reasons are in docs/adr/0001-gpu-autoscaling.md. Each GPU pool in stack config
becomes a NodePool with the GPU taint, a pool label, its instance types, capacity type and a
GPU limit; the pools' limits together stay within the environment's GPU cap (config enforces it).
The CPU model pool (`cpu_pool` in stack config) is one NodePool with its own taint and label
(`mlplat/pool=models-cpu`), its instance types, capacity type, CPU and memory limits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import versions
from infra.aws.cluster import ClusterForNodePools
from infra.aws.iam import Statement, ec2_node_role, irsa_role
from infra.aws.identity import StackIdentity
from infra.config import (
    CPU_MODEL_POOL_NAME,
    CPU_MODEL_POOL_TAINT_EFFECT,
    DEVICE_PLUGIN_CONFIG_LABEL,
    GPU_POOL_LABEL,
    GPU_SHARING_TAINT_KEY,
    NODE_POOL_LABEL,
    SYSTEM_POOL_NAME,
    CpuPoolConfig,
    GpuConfig,
    GpuPoolConfig,
    time_slicing_config_name,
)
from infra.contract import ENVIRONMENT_LABEL
from infra.services.chart import helm_release

NAMESPACE = "karpenter"
SERVICE_ACCOUNT = "karpenter"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
NODE_CLASS = "gpu"
# CPU model nodes get a class of their own: a smaller root volume (no CUDA images) and their own tag.
CPU_NODE_CLASS = CPU_MODEL_POOL_NAME
CPU_MODEL_TAINT = {
    "key": NODE_POOL_LABEL,
    "value": CPU_MODEL_POOL_NAME,
    "effect": CPU_MODEL_POOL_TAINT_EFFECT,
}
# The node role of Karpenter's template (KarpenterNodeRole, v1.14.1): image pulls only, not ECR reads.
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
)
# The EventBridge rules of Karpenter's CloudFormation template: aws/karpenter-provider-aws tag v1.14.1,
# website/content/en/preview/getting-started/getting-started-with-karpenter/cloudformation.yaml
# (byte-identical to ../shared/reference/iam/karpenter/cloudformation.yaml, which tests compare against).
INTERRUPTION_EVENTS = {
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "capacity-reservation-interruption": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"],
    },
}


@dataclass(frozen=True)
class GpuNodePoolsArgs:
    cluster: ClusterForNodePools
    gpu: GpuConfig
    cpu_pool: CpuPoolConfig
    # Whether node root volumes are encrypted with the cluster's EBS key (and the controller may use it).
    storage_encrypted: bool


@dataclass(frozen=True)
class ControllerScope:
    """What Karpenter's controller policy names: the stack's cluster, region and account, its node
    role, its interruption queue, and the EBS key of its nodes' volumes (None when volumes are not
    encrypted)."""

    stack: StackIdentity
    node_role_arn: pulumi.Input[str]
    queue_arn: pulumi.Input[str]
    ebs_key_arn: pulumi.Input[str] | None


def controller_statements(scope: ControllerScope) -> list[Statement]:
    """Karpenter's controller permissions: upstream's policies for v1.14.1, statement for statement.

    Source: aws/karpenter-provider-aws tag v1.14.1, the getting-started CloudFormation template
    (website/content/en/preview/getting-started/getting-started-with-karpenter/cloudformation.yaml),
    policies NodeLifecycle, IAMIntegration, EKSIntegration, Interruption, ZonalShift and
    ResourceDiscovery; read-only copy in ../shared/reference/iam/karpenter/cloudformation.yaml, which
    tests/infra/aws/test_karpenter_iam.py diffs this list against. The Sids are upstream's, and so are the
    cluster-ownership tag conditions: the controller may only tag, terminate or delete instances,
    launch templates and instance profiles that carry `kubernetes.io/cluster/<name>: owned` and a
    Karpenter pool/node-class tag. Upstream's pricing statement has no region condition because
    Karpenter calls the Pricing API in us-east-1, eu-central-1 (for eu-*), ap-south-1 (for ap-*) or
    cn-northwest-1 (pkg/providers/pricing/pricing.go `NewAPI`, tag v1.14.1).
    """
    name, region, account = scope.stack.cluster_name, scope.stack.region, scope.stack.account_id
    ec2 = f"arn:aws:ec2:{region}"
    owned = {f"kubernetes.io/cluster/{name}": "owned"}
    requested = {f"aws:RequestTag/{k}": v for k, v in owned.items()} | {
        "aws:RequestTag/eks:eks-cluster-name": name
    }
    resource_owned = {f"aws:ResourceTag/{k}": v for k, v in owned.items()}
    launched: list[pulumi.Input[str]] = [
        f"{ec2}:*:fleet/*",
        f"{ec2}:*:instance/*",
        f"{ec2}:*:volume/*",
        f"{ec2}:*:network-interface/*",
        f"{ec2}:*:launch-template/*",
        f"{ec2}:*:spot-instances-request/*",
    ]
    profiles = pulumi.Output.format("arn:aws:iam::{0}:instance-profile/*", account)
    cluster_arn = pulumi.Output.format("arn:aws:eks:{0}:{1}:cluster/{2}", region, account, name)
    region_tag = {"aws:ResourceTag/topology.kubernetes.io/region": region}
    statements = [
        # NodeLifecyclePolicy
        Statement(
            "AllowScopedEC2InstanceAccessActions",
            ["ec2:RunInstances", "ec2:CreateFleet"],
            [
                f"{ec2}::image/*",
                f"{ec2}::snapshot/*",
                f"{ec2}:*:security-group/*",
                f"{ec2}:*:subnet/*",
                f"{ec2}:*:capacity-reservation/*",
                f"{ec2}:*:placement-group/*",
            ],
        ),
        Statement(
            "AllowScopedEC2LaunchTemplateAccessActions",
            ["ec2:RunInstances", "ec2:CreateFleet"],
            [f"{ec2}:*:launch-template/*"],
            condition={
                "StringEquals": resource_owned,
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        ),
        Statement(
            "AllowScopedEC2InstanceActionsWithTags",
            ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            launched,
            condition={
                "StringEquals": requested,
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        ),
        Statement(
            "AllowScopedResourceCreationTagging",
            ["ec2:CreateTags"],
            launched,
            condition={
                "StringEquals": requested
                | {"ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        ),
        Statement(
            "AllowScopedResourceTagging",
            ["ec2:CreateTags"],
            [f"{ec2}:*:instance/*"],
            condition={
                "StringEquals": resource_owned,
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": name},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                },
            },
        ),
        Statement(
            "AllowScopedDeletion",
            ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
            condition={
                "StringEquals": resource_owned,
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        ),
        # IAMIntegrationPolicy
        Statement(
            "AllowPassingInstanceRole",
            ["iam:PassRole"],
            [scope.node_role_arn],
            condition={
                "StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}
            },
        ),
        Statement(
            "AllowScopedInstanceProfileCreationActions",
            ["iam:CreateInstanceProfile"],
            [profiles],
            condition={
                "StringEquals": requested | {"aws:RequestTag/topology.kubernetes.io/region": region},
                "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        Statement(
            "AllowScopedInstanceProfileTagActions",
            ["iam:TagInstanceProfile"],
            [profiles],
            condition={
                "StringEquals": resource_owned
                | region_tag
                | requested
                | {"aws:RequestTag/topology.kubernetes.io/region": region},
                "StringLike": {
                    "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                },
            },
        ),
        Statement(
            "AllowScopedInstanceProfileActions",
            [
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:DeleteInstanceProfile",
            ],
            [profiles],
            condition={
                "StringEquals": resource_owned | region_tag,
                "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        # EKSIntegrationPolicy
        Statement("AllowAPIServerEndpointDiscovery", ["eks:DescribeCluster"], [cluster_arn]),
        # InterruptionPolicy
        Statement(
            "AllowInterruptionQueueActions",
            ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            [scope.queue_arn],
        ),
        # ZonalShiftPolicy
        Statement(
            "AllowZonalShiftStatusReadOnly",
            ["arc-zonal-shift:GetManagedResource"],
            ["*"],
            condition={"StringEquals": {"arc-zonal-shift:ResourceIdentifier": cluster_arn}},
        ),
        # ResourceDiscoveryPolicy
        Statement(
            "AllowRegionalReadActions",
            [
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            ["*"],
            condition={"StringEquals": {"aws:RequestedRegion": region}},
        ),
        Statement(
            "AllowSSMReadActions", ["ssm:GetParameter"], [f"arn:aws:ssm:{region}::parameter/aws/service/*"]
        ),
        Statement("AllowPricingReadActions", ["pricing:GetProducts"], ["*"]),
        Statement("AllowUnscopedInstanceProfileListAction", ["iam:ListInstanceProfiles"], ["*"]),
        Statement("AllowInstanceProfileReadActions", ["iam:GetInstanceProfile"], [profiles]),
    ]
    if scope.ebs_key_arn is not None:
        # Not in upstream's template: GPU nodes' root volumes use our customer-managed key, and EC2
        # launches them with the caller's (the controller's) KMS permissions, or the instance is
        # terminated at launch (Karpenter v1.14.1 troubleshooting.md, "Node terminates before ready
        # on failed encrypted EBS volume"). Scoped to that one key; grants only for AWS resources.
        statements += [
            Statement(
                "UseNodeVolumeKey",
                ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                [scope.ebs_key_arn],
            ),
            Statement(
                "GrantNodeVolumeKeyToEc2",
                ["kms:CreateGrant"],
                [scope.ebs_key_arn],
                condition={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
        ]
    return statements


def node_class_spec(
    node_role: str,
    cluster_name: str,
    environment: str,
    ebs_key_arn: str,
    encrypted: bool,
    node_class: str = NODE_CLASS,
    volume_size: str = "200Gi",
) -> dict[str, Any]:
    """EC2NodeClass: AL2023 AMI (via alias), IMDSv2 only, encrypted root volume.

    The one alias serves GPU and CPU nodes: Karpenter resolves its NVIDIA variant for GPU instance
    types and its standard variant for the others (see versions.KARPENTER_GPU_AMI_ALIAS).

    `tags` go on the instances, volumes, network interfaces and launch templates Karpenter creates
    (aws/karpenter-provider-aws v1.14.1 website/content/en/v1.14/concepts/nodeclasses.md, `spec.tags`):
    the environment tag puts them under the same per-environment isolation as the stack's own resources.
    """
    ebs: dict[str, Any] = {
        "volumeSize": volume_size,
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
        "tags": {"mlplat/node-class": node_class, ENVIRONMENT_LABEL: environment},
    }


def _node_template(
    labels: dict[str, str],
    node_class: str,
    taints: list[dict[str, str]],
    instance_types: Sequence[str],
    capacity_type: str,
) -> dict[str, Any]:
    """A NodePool's `spec.template`, GPU or CPU alike: its nodes' labels and taints, the EC2NodeClass
    they launch from, the instance and capacity types they may be, replaced after 30 days."""
    return {
        "metadata": {"labels": labels},
        "spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class},
            "taints": taints,
            "requirements": [
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(instance_types)},
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity_type]},
            ],
            "expireAfter": "720h",
        },
    }


def node_pool_spec(pool: GpuPoolConfig) -> dict[str, Any]:
    """One GPU pool: tainted, labelled with its name, limited to its share of the GPU cap.

    Disruption (docs/adr/0001, "Addendum: models loading on GPU nodes"): by default only empty nodes
    are consolidated, so Karpenter never evicts a predictor to repack GPUs (karpenter-provider-aws#7356);
    a budget lets at most one node of the pool go at a time for any voluntary reason (Karpenter v1.14.1
    website/content/en/docs/concepts/disruption.md, "NodePool Disruption Budgets"; the `reasons` enum is
    in ../shared/reference/crds/karpenter/karpenter.sh_nodepools.yaml).
    """
    labels = {GPU_POOL_LABEL: pool.name, **pool.labels}
    # A time-sliced node advertises `replicas` nvidia.com/gpu per physical GPU once its device plugin runs,
    # so its GPU limit is written in slices; the node count binds either way (`limits.nodes`, Karpenter
    # v1.14.1 website/content/en/docs/concepts/nodepools.md, spec.limits).
    slices = pool.time_slicing_replicas or 1
    limits = {"nodes": str(pool.max_size), "nvidia.com/gpu": str(pool.max_size * pool.gpus_per_node * slices)}
    taints = [GPU_TAINT]
    if pool.time_slicing_replicas is not None:
        sliced = time_slicing_config_name(pool.time_slicing_replicas)
        labels[DEVICE_PLUGIN_CONFIG_LABEL] = sliced
        taints.append({"key": GPU_SHARING_TAINT_KEY, "value": sliced, "effect": "NoSchedule"})
    return {
        "template": _node_template(labels, NODE_CLASS, taints, pool.instance_types, pool.capacity_type),
        "limits": limits,
        # Empty GPU nodes go after 5 minutes, so pools still rest at zero nodes.
        "disruption": {
            "consolidationPolicy": pool.consolidation,
            "consolidateAfter": "5m",
            "budgets": [{"nodes": "1"}],
        },
    }


def cpu_pool_spec(pool: CpuPoolConfig) -> dict[str, Any]:
    """The CPU model pool: tainted and labelled so only model pods that select it land there.

    Fields per the NodePool CRD of Karpenter v1.14.1 (../shared/reference/crds/karpenter/
    karpenter.sh_nodepools.yaml): `spec.limits` takes resource quantities (cpu, memory);
    `disruption.consolidationPolicy` is one of WhenEmpty, WhenEmptyOrUnderutilized, Balanced and
    `consolidateAfter` matches `^(([0-9]+(s|m|h))+|Never)$`; the taint key/value patterns admit
    `mlplat/pool=models-cpu`; `template.metadata.labels` may not use the karpenter.sh or
    karpenter.k8s.aws domains, which `mlplat/pool` is not in.
    """
    labels = {NODE_POOL_LABEL: CPU_MODEL_POOL_NAME}
    return {
        "template": _node_template(
            labels, CPU_NODE_CLASS, [CPU_MODEL_TAINT], pool.instance_types, pool.capacity_type
        ),
        "limits": {"cpu": str(pool.max_vcpus), "memory": f"{pool.max_memory_gib}Gi"},
        "disruption": {
            "consolidationPolicy": pool.consolidation_policy,
            "consolidateAfter": pool.consolidate_after,
        },
    }


class GpuNodePools(pulumi.ComponentResource):
    """Karpenter (controller, node role, interruption queue), one NodePool per GPU pool and the CPU
    model pool. (The type keeps its first name: renaming it would replace every resource under it.)"""

    pool_names: list[str]

    def __init__(self, name: str, args: GpuNodePoolsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:cluster:GpuNodePools", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster = args.cluster
        stack = cluster.stack

        node_role, node_policies = ec2_node_role(
            f"{name}-node", stack.iam, "Karpenter GPU nodes", NODE_POLICIES, child
        )
        # An access entry can only be created once the cluster exists; naming the cluster by a plain
        # string would let it race the cluster's creation.
        node_access = aws.eks.AccessEntry(
            f"{name}-node",
            cluster_name=stack.cluster_name,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster.control_plane]),
        )
        queue = aws.sqs.Queue(
            f"{name}-interruptions",
            name_prefix=stack.iam.prefix,
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
                name_prefix=stack.iam.prefix,
                event_pattern=json.dumps(pattern, sort_keys=True),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{event}", rule=rule.name, arn=queue.arn, opts=pulumi.ResourceOptions(parent=rule)
            )

        controller_role = irsa_role(
            f"{name}-controller",
            stack.iam,
            cluster.oidc,
            NAMESPACE,
            SERVICE_ACCOUNT,
            controller_statements(
                ControllerScope(
                    stack=stack,
                    node_role_arn=node_role.arn,
                    queue_arn=queue.arn,
                    ebs_key_arn=cluster.ebs_key_arn if args.storage_encrypted else None,
                )
            ),
            child,
        )

        namespace = self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE, labels={"pod-security.kubernetes.io/enforce": "restricted"}
            ),
            opts=child,
        )
        # The shared release helper names the OCI chart as `chart="oci://…/karpenter"` (with
        # `repository_opts.repo="oci://…"` Helm looks for an index.yaml and fails), and sets atomic,
        # a timeout and wait. The controller runs on the system pool and resolves the API through
        # CoreDNS, so it waits for the pool and the core add-ons.
        release = helm_release(
            self,
            f"{name}-karpenter",
            "karpenter",
            "karpenter",
            NAMESPACE,
            {
                "settings": {
                    "clusterName": stack.cluster_name,
                    "clusterEndpoint": cluster.endpoint,
                    "interruptionQueue": queue.name,
                },
                "serviceAccount": {
                    "name": SERVICE_ACCOUNT,
                    "annotations": {"eks.amazonaws.com/role-arn": controller_role.arn},
                },
                # Karpenter must not run on the nodes it manages.
                "nodeSelector": {NODE_POOL_LABEL: SYSTEM_POOL_NAME},
                "controller": {
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    }
                },
            },
            depends_on=[namespace, *cluster.compute_ready],
        )

        # Nodes launched from the class must be able to join: its role's policies and access entry first.
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[release, node_access, *node_policies])

        def ec2_node_class(resource: str, class_name: str, **shape: str) -> k8s.apiextensions.CustomResource:
            """An EC2NodeClass of this role and key (`shape`: node_class_spec's volume size, if not its own)."""
            return k8s.apiextensions.CustomResource(
                resource,
                api_version="karpenter.k8s.aws/v1",
                kind="EC2NodeClass",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=class_name),
                spec=pulumi.Output.all(node_role.name, cluster.ebs_key_arn).apply(
                    lambda v: node_class_spec(
                        v[0],
                        stack.cluster_name,
                        stack.environment,
                        v[1],
                        args.storage_encrypted,
                        class_name,
                        **shape,
                    )
                ),
                opts=after_crds,
            )

        node_class = ec2_node_class(f"{name}-node-class", NODE_CLASS)
        for pool in args.gpu.pools:
            k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}",
                api_version="karpenter.sh/v1",
                kind="NodePool",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=pool.name),
                spec=node_pool_spec(pool),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release, node_class]),
            )

        cpu_node_class = ec2_node_class(
            f"{name}-{CPU_NODE_CLASS}-node-class", CPU_NODE_CLASS, volume_size="100Gi"
        )
        k8s.apiextensions.CustomResource(
            f"{name}-{CPU_MODEL_POOL_NAME}",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CPU_MODEL_POOL_NAME),
            spec=cpu_pool_spec(args.cpu_pool),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[release, cpu_node_class]),
        )

        self.pool_names = [pool.name for pool in args.gpu.pools]
        self.register_outputs({"poolNames": self.pool_names})
