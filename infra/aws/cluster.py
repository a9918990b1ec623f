"""The EKS cluster: encrypted Secrets, audit logs, private API in prod, IRSA, pinned add-ons, system pool."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import versions
from infra.aws.iam import (
    IamScope,
    IrsaRole,
    OidcIssuer,
    Statement,
    ec2_node_role,
    irsa_role,
    role,
    service_trust,
)
from infra.aws.identity import StackIdentity
from infra.aws.kms import kms_key
from infra.config import NODE_POOL_LABEL, SYSTEM_POOL_NAME, ClusterConfig, SystemPoolConfig
from infra.contract import ENVIRONMENT_LABEL

CONTROL_PLANE_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
SYSTEM_POOL_LABEL = {NODE_POOL_LABEL: SYSTEM_POOL_NAME}
CNI_POLICY = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
# The node role keeps the CNI policy although the vpc-cni add-on has its own IRSA role: on a fresh
# cluster `aws-node` starts on the first node before it can use IRSA, and without CNI permissions the
# node never turns Ready ("cni plugin not initialized"), so the node group never becomes ACTIVE.
# terraform-aws-eks does the same by default: modules/eks-managed-node-group/variables.tf,
# `iam_role_attach_cni_policy` (default true, "nodes will not be able to join the cluster" if false).
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    CNI_POLICY,
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
)
# Add-ons nodes need to join and turn Ready, created before any node group, as terraform-aws-eks's
# `before_compute` add-ons are (main.tf, `aws_eks_addon.before_compute`): the CNI gives the node its
# network; kube-proxy programs the `kubernetes` Service IP through which `aws-node` reaches the API.
# Both are DaemonSets, ACTIVE with zero nodes. coredns and the EBS CSI controller are Deployments
# that need a node to become ACTIVE, so they come after the system pool.
BEFORE_COMPUTE_ADDONS = frozenset({"vpc-cni", "kube-proxy"})
# EKS access policies: admins get cluster-admin; viewers (the preview roles, dev's runs pull-request
# code) get AmazonEKSViewPolicy, which, like the Kubernetes `view` ClusterRole, cannot read Secrets;
# drift roles get AmazonEKSAdminViewPolicy, which lists and gets every resource, Secrets included, and
# changes nothing. Source: https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html
# Why drift reads Secrets. `pulumi preview --refresh` Reads every resource, and a helm.v3.Release's Read
# looks the release up through Helm (pulumi/pulumi-kubernetes provider/pkg/provider/helm_release.go,
# Read -> resourceReleaseLookup -> getRelease: any error but "release: not found" fails the Read), whose
# storage driver is "secret" unless set (provider/pkg/provider/provider.go, helmDriver; both read at
# 94977969d64112b04e19945818a7d5d5f38f631d); the program's own Secrets are read the same way.
# The Kubernetes group of the promote roles' access entries, which get no access policy: what the group
# may do is the one Role infra/services/mlflow.py binds to it (a port-forward to MLflow's server). An
# entry's kubernetesGroups are the names RoleBindings give as `kind: Group` subjects
# (https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAccessEntry.html).
REGISTRY_TUNNEL_GROUP = "mlplat:mlflow-registry-tunnel"
ADMIN_ACCESS_POLICY = "AmazonEKSClusterAdminPolicy"
VIEWER_ACCESS_POLICY = "AmazonEKSViewPolicy"
DRIFT_ACCESS_POLICY = "AmazonEKSAdminViewPolicy"
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
# Without the network policy agent EKS accepts every NetworkPolicy and enforces none: the platform's
# and the model namespaces' walls exist only when the vpc-cni add-on runs it. The add-on's
# configuration key is `enableNetworkPolicy` (string "true"): AWS EKS user guide, "Configure your
# cluster for Kubernetes network policies" (cni-network-policy-configure.html); aws/amazon-vpc-cni-k8s
# charts/aws-vpc-cni/values.yaml `enableNetworkPolicy`.
NETWORK_POLICY_AGENT = {"enableNetworkPolicy": "true"}


@dataclass(frozen=True)
class EksClusterArgs:
    stack: StackIdentity
    cluster: ClusterConfig
    system_pool: SystemPoolConfig
    # Where the control plane's network interfaces and the system pool's nodes go.
    private_subnet_ids: pulumi.Input[list[str]]
    protect_stateful: bool
    # What traffic in and out of the subnets needs (`Network.routing`): the route table associations
    # and, with the in-VPC runner of `cluster.endpoint.runner`, the peering and routes both ways. The
    # runner's security group is admitted to the API on 443 once it exists; a client of the API waits
    # for it (`api_network`), so destroy keeps the subnets routed until the client's resources are gone.
    routing: list[pulumi.Resource]


@dataclass(frozen=True)
class ClusterForNodePools:
    """What a component that launches nodes into the cluster and runs their controller on it needs
    of the cluster (infra/aws/karpenter.py), handed over as one value by the cluster that made it, so
    the nodes cannot be given another cluster's name, region or account than the one they join."""

    stack: StackIdentity
    # The EKS cluster resource: what names the cluster by its plain name (the node access entry)
    # must wait for it.
    control_plane: aws.eks.Cluster
    endpoint: pulumi.Output[str]
    oidc: OidcIssuer
    # The key of the nodes' root volumes.
    ebs_key_arn: pulumi.Output[str]
    # The system pool and core add-ons: the controller runs on the system pool and needs DNS.
    compute_ready: Sequence[pulumi.Resource]


# Who launches instances with the EBS key on our behalf: EC2 Auto Scaling (the system pool), and for
# Karpenter's launches EC2 Fleet and Spot, besides the stack's own roles. Service-linked roles live
# under /aws-service-role/<service>/ (https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html).
LAUNCHING_SERVICE_ROLES = (
    "aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
    "aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet",
    "aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot",
)


def ebs_key_policy(account_id: str, region: str, role_prefix: str) -> str:
    """The EBS key's policy: the account administers it through IAM, and EC2 may use it on behalf of
    the launching service-linked roles and this stack's roles, so Auto Scaling can launch the system
    pool's encrypted root volumes (without this, instances are terminated at launch).

    `kms:ViaService` + `kms:CallerAccount` is the form AWS's own `aws/ebs` key and Karpenter's
    troubleshooting guide use; the principal is a condition rather than a `Principal` because a key
    policy naming a role that does not exist yet (AWSServiceRoleForAutoScaling in an account where
    Auto Scaling never ran) is rejected. `aws:PrincipalArn` keeps another environment's roles in a
    shared account out. Sources:
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
    and aws/karpenter-provider-aws v1.14.1 website/content/en/preview/troubleshooting.md
    ("Node terminates before ready on failed encrypted EBS volume").
    """
    launchers = [f"arn:aws:iam::{account_id}:role/{path}" for path in LAUNCHING_SERVICE_ROLES]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersKeyThroughIam",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "VolumesThroughEc2ForThisStack",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:CreateGrant",
                        "kms:Decrypt",
                        "kms:DescribeKey",
                        "kms:Encrypt",
                        "kms:GenerateDataKey*",
                        "kms:ReEncrypt*",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account_id,
                            "kms:ViaService": f"ec2.{region}.amazonaws.com",
                        },
                        "StringLike": {
                            "aws:PrincipalArn": [*launchers, f"arn:aws:iam::{account_id}:role/{role_prefix}*"]
                        },
                    },
                },
            ],
        },
        sort_keys=True,
    )


def node_launch_template(
    name: str, ebs_key_arn: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> aws.ec2.LaunchTemplate:
    """IMDSv2 only, hop limit 1 (pods cannot reach node credentials), encrypted root volume."""
    return aws.ec2.LaunchTemplate(
        name,
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
        ),
        block_device_mappings=[
            aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=100, volume_type="gp3", encrypted="true", kms_key_id=ebs_key_arn
                ),
            )
        ],
        opts=opts,
    )


class EksCluster(pulumi.ComponentResource):
    """Control plane, OIDC provider, access entries, core add-ons and the on-demand system pool."""

    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    oidc: OidcIssuer
    kubeconfig: pulumi.Output[str]
    ebs_key_arn: pulumi.Output[str]
    system_pool_name: pulumi.Output[str]
    for_node_pools: ClusterForNodePools
    # What a client of the Kubernetes API must wait for: the access entries and their policies.
    api_access: list[pulumi.Resource]
    # What a client of the API (a deploy from the runner VPC, the controllers on the nodes) needs of the
    # network: the subnets' routing and the runner's ingress rule.
    api_network: list[pulumi.Resource]
    # What a workload must wait for: the system pool and every core add-on.
    compute_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:cluster:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect_stateful)
        stack = args.stack
        cfg = args.cluster
        addon_pins = versions.EKS_ADDONS[cfg.kubernetes_version]

        secrets_key = kms_key(
            f"{name}-secrets", stack.iam.prefix, "EKS Secrets envelope encryption", stateful
        )
        ebs_key = kms_key(
            f"{name}-ebs",
            stack.iam.prefix,
            "EBS volumes of nodes and persistent volumes",
            stateful,
            policy=pulumi.Output.from_input(stack.account_id).apply(
                lambda account: ebs_key_policy(account, stack.region, stack.iam.prefix)
            ),
        )
        control_plane = role(
            f"{name}-control-plane", stack.iam, service_trust("eks.amazonaws.com"), "EKS control plane", child
        )
        control_plane_policy = aws.iam.RolePolicyAttachment(
            f"{name}-control-plane",
            role=control_plane.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=pulumi.ResourceOptions(parent=control_plane),
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{stack.cluster_name}/cluster",
            retention_in_days=365 if args.protect_stateful else 30,
            opts=stateful,
        )
        endpoint = cfg.endpoint
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=stack.cluster_name,
            version=cfg.kubernetes_version,
            role_arn=control_plane.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.private_subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=endpoint.public,
                public_access_cidrs=[str(c) for c in endpoint.public_access_cidrs]
                if endpoint.public
                else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=CONTROL_PLANE_LOGS,
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=False
            ),
            # The role's policy outlives the cluster: without it EKS cannot delete the security groups
            # it manages when the cluster is deleted, and nothing else would hold the attachment back
            # in destroy's first wave (hashicorp/terraform-provider-aws website/docs/r/eks_cluster.html.markdown,
            # `role_arn` and the example's `depends_on`).
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect_stateful,
                depends_on=[log_group, control_plane_policy],
            ),
        )
        issuer = cluster.identities.apply(
            lambda ids: (ids[0].oidcs[0].issuer or "") if ids and ids[0].oidcs else ""
        )
        oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], opts=child
        )
        self.oidc = OidcIssuer(
            provider_arn=oidc_provider.arn, issuer_host=issuer.apply(lambda url: url.removeprefix("https://"))
        )

        grants = [("admin", arn, ADMIN_ACCESS_POLICY) for arn in cfg.admin_role_arns]
        grants += [("viewer", arn, VIEWER_ACCESS_POLICY) for arn in cfg.viewer_role_arns]
        grants += [("drift", arn, DRIFT_ACCESS_POLICY) for arn in cfg.drift_role_arns]
        self.api_access = []
        for index, (kind, principal, policy) in enumerate(grants):
            # Named by the role, not its place in the lists: a position shifts when a role is added
            # or removed above it, and Pulumi would then create the renamed entry before deleting the old
            # one, which EKS refuses (one entry per principal). The alias is the name entries had when
            # they were numbered (admins, then viewers), so a stack deployed then keeps its entries.
            entry_name = f"{name}-{kind}-{_principal_name(principal)}"
            entry = aws.eks.AccessEntry(
                entry_name,
                cluster_name=cluster.name,
                principal_arn=principal,
                opts=pulumi.ResourceOptions(
                    parent=self, aliases=[pulumi.Alias(name=f"{name}-{kind}-{index}")]
                ),
            )
            association = aws.eks.AccessPolicyAssociation(
                entry_name,
                cluster_name=cluster.name,
                principal_arn=principal,
                policy_arn=f"arn:aws:eks::aws:cluster-access-policy/{policy}",
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(parent=entry),
            )
            self.api_access += [entry, association]
        for principal in cfg.promote_role_arns:
            self.api_access.append(
                aws.eks.AccessEntry(
                    f"{name}-promote-{_principal_name(principal)}",
                    cluster_name=cluster.name,
                    principal_arn=principal,
                    kubernetes_groups=[REGISTRY_TUNNEL_GROUP],
                    opts=child,
                )
            )

        self.api_network = [*args.routing]
        if endpoint.runner is not None:
            self.api_network.append(
                self._admit_runner(name, cluster, endpoint.runner.security_group_id, args.routing)
            )

        before: dict[str, str] = {}
        after: dict[str, str] = {}
        for addon, version in addon_pins.items():
            (before if addon in BEFORE_COMPUTE_ADDONS else after)[addon] = version
        node_addons = self._addons(name, args, cluster, before, ebs_key.arn, depends_on=[])
        system_pool = self._system_pool(name, args, cluster, ebs_key, depends_on=node_addons)
        workload_addons = self._addons(name, args, cluster, after, ebs_key.arn, depends_on=[system_pool])
        self.compute_ready = [system_pool, *node_addons, *workload_addons]

        self.name = cluster.name
        self.endpoint = cluster.endpoint
        self.oidc_issuer = issuer
        self.ebs_key_arn = ebs_key.arn
        self.for_node_pools = ClusterForNodePools(
            stack=stack,
            control_plane=cluster,
            endpoint=self.endpoint,
            oidc=self.oidc,
            ebs_key_arn=self.ebs_key_arn,
            compute_ready=self.compute_ready,
        )
        self.system_pool_name = system_pool.node_group_name
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
                lambda v: kubeconfig(v[0], v[1], v[2])
            )
        )
        self.register_outputs(
            {
                "name": self.name,
                "endpoint": self.endpoint,
                "oidcIssuer": self.oidc_issuer,
                "kubeconfig": self.kubeconfig,
                "systemPoolName": self.system_pool_name,
            }
        )

    def _admit_runner(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        runner_security_group_id: str,
        routing: list[pulumi.Resource],
    ) -> aws.vpc.SecurityGroupIngressRule:
        """HTTPS from the runner's security group to the cluster security group, the group EKS puts
        on the API endpoint's network interfaces (https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html).

        A group reference, never a CIDR: only that environment's runner is admitted, not everything in
        the runner VPC. A rule may reference a group of a peered VPC only once the peering is active
        (https://docs.aws.amazon.com/vpc/latest/peering/vpc-peering-security-groups.html), so it waits
        for the subnets' routing, the runner's path among it.
        """
        return aws.vpc.SecurityGroupIngressRule(
            f"{name}-api-from-runner",
            security_group_id=cluster.vpc_config.apply(lambda vpc: vpc.cluster_security_group_id or ""),
            referenced_security_group_id=runner_security_group_id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="Kubernetes API from the in-VPC GitHub runner (docs/adr/0003)",
            opts=pulumi.ResourceOptions(parent=self, depends_on=routing),
        )

    def _system_pool(
        self,
        name: str,
        args: EksClusterArgs,
        cluster: aws.eks.Cluster,
        ebs_key: aws.kms.Key,
        depends_on: list[pulumi.Resource],
    ) -> aws.eks.NodeGroup:
        """On-demand managed node group for platform services (Karpenter itself runs here)."""
        pool = args.system_pool
        child = pulumi.ResourceOptions(parent=self)
        node_role, attachments = ec2_node_role(
            f"{name}-system-node", args.stack.iam, "EKS system node group", NODE_POLICIES, child
        )
        # The template names the key by ARN; the key (and its policy admitting EC2 Auto Scaling) is
        # a dependency through that ARN.
        template = node_launch_template(f"{name}-system-node", ebs_key.arn, child)
        return aws.eks.NodeGroup(
            f"{name}-system",
            node_group_name=f"{args.stack.cluster_name}-system",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=args.private_subnet_ids,
            capacity_type="ON_DEMAND",
            instance_types=pool.instance_types,
            ami_type="AL2023_x86_64_STANDARD",
            labels=SYSTEM_POOL_LABEL,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=pool.min_size, desired_size=pool.desired_size, max_size=pool.max_size
            ),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*attachments, *depends_on]),
        )

    def _addons(
        self,
        name: str,
        args: EksClusterArgs,
        cluster: aws.eks.Cluster,
        pins: dict[str, str],
        ebs_key_arn: pulumi.Output[str],
        depends_on: list[pulumi.Resource],
    ) -> list[pulumi.Resource]:
        """The add-ons of `pins` at their versions, after `depends_on`; CNI and EBS CSI get IRSA roles."""
        child = pulumi.ResourceOptions(parent=self)
        roles: dict[str, pulumi.Output[str]] = {}
        settings: dict[str, str] = {}
        if "vpc-cni" in pins:
            roles["vpc-cni"] = self._cni_role(name, args.stack.iam, child).arn
            settings["vpc-cni"] = json.dumps(NETWORK_POLICY_AGENT)
        if "aws-ebs-csi-driver" in pins:
            roles["aws-ebs-csi-driver"] = self._ebs_csi_role(name, args.stack.iam, ebs_key_arn, child).arn
            # Volumes the driver creates for claims carry the environment tag, so they fall under the
            # same per-environment isolation as the stack's own resources. The add-on's configuration
            # schema has `controller.extraVolumeTags` (`aws eks describe-addon-configuration`, quoted in
            # aws/amazon-vpc-cni-k8s#2272; chart value of the same name, kubernetes-sigs/aws-ebs-csi-driver
            # charts/aws-ebs-csi-driver, passed as `--extra-tags`, docs/tagging.md).
            settings["aws-ebs-csi-driver"] = json.dumps(
                {"controller": {"extraVolumeTags": {ENVIRONMENT_LABEL: args.stack.environment}}}
            )
        return [
            aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=cluster.name,
                addon_name=addon,
                addon_version=version,
                service_account_role_arn=roles.get(addon),
                configuration_values=settings.get(addon),
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="PRESERVE",
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
            )
            for addon, version in sorted(pins.items())
        ]

    def _cni_role(self, name: str, scope: IamScope, child: pulumi.ResourceOptions) -> IrsaRole:
        return irsa_role(
            f"{name}-vpc-cni",
            scope,
            self.oidc,
            "kube-system",
            "aws-node",
            [],
            child,
            managed_policy_arns=(CNI_POLICY,),
        )

    def _ebs_csi_role(
        self, name: str, scope: IamScope, ebs_key_arn: pulumi.Output[str], child: pulumi.ResourceOptions
    ) -> IrsaRole:
        return irsa_role(
            f"{name}-ebs-csi",
            scope,
            self.oidc,
            "kube-system",
            "ebs-csi-controller-sa",
            [
                Statement(
                    sid="UseVolumeKey",
                    actions=[
                        "kms:Decrypt",
                        "kms:Encrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:DescribeKey",
                    ],
                    resources=[ebs_key_arn],
                ),
                Statement(
                    sid="GrantVolumeKeyToEbs",
                    actions=["kms:CreateGrant"],
                    resources=[ebs_key_arn],
                    condition={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                ),
            ],
            child,
            managed_policy_arns=(EBS_CSI_POLICY,),
        )


def _principal_name(role_arn: str) -> str:
    """`<account>-<role name>` of an IAM role ARN (config.RoleArn): a role's name is unique in its account
    whatever its path (IAM API reference, CreateRole RoleName: role names must be unique within the
    account, not distinguished by case)."""
    account = role_arn.split(":")[4]
    return f"{account}-{role_arn.rsplit('/', 1)[-1]}"


def kubeconfig(cluster_name: str, endpoint: str, ca_data: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no static credentials)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}
            ],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name],
                        }
                    },
                }
            ],
        }
    )
