"""The Pulumi program's entry: read the stack config once, build every component, export outputs."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pulumi.runtime.config import CONFIG, get_config_env

from infra.aws.cluster import EksCluster, EksClusterArgs
from infra.aws.iam import IamScope
from infra.aws.identity import StackIdentity
from infra.aws.karpenter import NAMESPACE as KARPENTER_NAMESPACE
from infra.aws.karpenter import GpuNodePools, GpuNodePoolsArgs
from infra.aws.load_balancer_controller import ControllerScope, controller_role
from infra.aws.network import Network, NetworkArgs
from infra.aws.storage import StorageClasses, StorageClassNames
from infra.aws.vault_unseal import VaultUnsealKey
from infra.config import (
    NAMESPACE,
    ConfigError,
    StackConfig,
    load_stack_config,
    read_stack_file,
    stack_file,
)
from infra.contract import ENVIRONMENT_LABEL
from infra.prices import CostError
from infra.services import PlatformServices, PlatformServicesArgs
from infra.services.facts import ClusterFacts
from infra.services.gpu_prices import gpu_pool_prices
from infra.services.load_balancer import LoadBalancing
from infra.services.network_policies import NamespaceRef
from infra.services.vault import VaultUnseal


def stack_values() -> dict[str, Any]:
    """The `mlplat:` keys of the running stack, as the Pulumi engine handed them to the program."""
    everything: dict[str, Any] = dict(CONFIG.get() or get_config_env())
    prefix = f"{NAMESPACE}:"
    return {key.removeprefix(prefix): value for key, value in everything.items() if key.startswith(prefix)}


def platform_services_args(
    config: StackConfig,
    storage_classes: StorageClassNames,
    *,
    vault_unseal: VaultUnseal,
    load_balancing: LoadBalancing,
    karpenter_namespace: NamespaceRef,
) -> PlatformServicesArgs:
    """What the platform services take from the stack: the cluster's facts, each service's own
    settings, and what the AWS layer made for them. The one place the stack config is narrowed for
    them (the test harness builds the services through it too). The GPU pools are priced from the
    price table here: a pool whose types it does not price stops the program (CostError)."""
    return PlatformServicesArgs(
        cluster=ClusterFacts(
            environment=config.environment,
            region=config.aws.region,
            storage_classes=storage_classes,
            protect_stateful=config.protect_stateful,
        ),
        services=config.services,
        gpu=config.gpu,
        gpu_prices=gpu_pool_prices(config.gpu, config.aws.region, stack_file(config.environment)),
        gateway=config.gateway,
        model_min_replicas=config.apps.min_replicas,
        vpc_cidr=str(config.network.vpc_cidr),
        vault_unseal=vault_unseal,
        load_balancing=load_balancing,
        karpenter_namespace=karpenter_namespace,
    )


def build(config: StackConfig) -> None:
    """Declare the whole environment. Components get config objects, never pulumi.Config."""
    cluster_name = f"mlplat-{config.environment}"
    # The environment tag comes from the stack, not from `aws.tags`: the deploy role may create EC2,
    # KMS and IAM resources only when they carry it (infra/bootstrap/deploy_roles.tf), so no stack
    # file can leave it out or name another environment.
    aws_provider = aws.Provider(
        "aws",
        region=config.aws.region,
        default_tags=aws.ProviderDefaultTagsArgs(
            tags={"mlplat/managed-by": "pulumi", **config.aws.tags, ENVIRONMENT_LABEL: config.environment}
        ),
    )
    on_aws = pulumi.ResourceOptions(providers={"aws": aws_provider})
    account = aws.get_caller_identity_output(
        opts=pulumi.InvokeOutputOptions(provider=aws_provider)
    ).account_id
    stack = StackIdentity(
        cluster_name=cluster_name,
        environment=config.environment,
        region=config.aws.region,
        account_id=account,
        iam=IamScope(
            prefix=f"{cluster_name}-",
            boundary_arn=pulumi.Output.format(
                "arn:aws:iam::{0}:policy/mlplat-boundary-{1}", account, config.environment
            ),
        ),
    )

    network = Network(
        "network",
        NetworkArgs(
            config=config.network, cluster_name=stack.cluster_name, runner=config.cluster.endpoint.runner
        ),
        on_aws,
    )
    cluster = EksCluster(
        "cluster",
        EksClusterArgs(
            stack=stack,
            cluster=config.cluster,
            system_pool=config.system_pool,
            private_subnet_ids=network.private_subnet_ids,
            protect_stateful=config.protect_stateful,
            routing=network.routing,
        ),
        on_aws,
    )
    # Every Kubernetes resource names this provider; the stack disables the default one. It waits
    # for the access entries and their policy associations (the deploy role's among them): before
    # they exist the API answers 401/403 to the role running `pulumi up`. It also waits for the
    # subnets' routing and the path from the runner VPC (route table associations, peering, routes
    # both ways, the ingress rule): before it exists the first call to a private endpoint times out,
    # and destroy removes it only after every Kubernetes resource (Network.routing says why).
    k8s_provider = k8s.Provider(
        "k8s",
        kubeconfig=cluster.kubeconfig,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=cluster, depends_on=[*cluster.api_access, *cluster.api_network]),
    )
    on_cluster = pulumi.ResourceOptions(providers={"aws": aws_provider, "kubernetes": k8s_provider})

    storage = StorageClasses("storage", cluster.ebs_key_arn, config.storage.encrypted, on_cluster)
    gpu_pools = GpuNodePools(
        "gpu",
        GpuNodePoolsArgs(
            cluster=cluster.for_node_pools,
            gpu=config.gpu,
            cpu_pool=config.cpu_pool,
            storage_encrypted=config.storage.encrypted,
        ),
        on_cluster,
    )
    unseal = VaultUnsealKey("vault-unseal", stack.iam, cluster.oidc, config.protect_stateful, on_aws)
    load_balancer_role = controller_role(
        "load-balancer-controller", cluster.oidc, ControllerScope(stack, network.vpc_id), on_aws
    )
    # Platform services need nodes, CoreDNS and the EBS CSI driver (compute_ready) and, for their
    # volumes, the storage classes; none creates a NodePool, so none waits for Karpenter or the GPU
    # pools (a Karpenter failure must not hold back monitoring, Vault or Argo CD).
    PlatformServices(
        "platform",
        platform_services_args(
            config,
            storage.names,
            vault_unseal=VaultUnseal(role_arn=unseal.role_arn, kms_key_id=unseal.key_id),
            load_balancing=LoadBalancing(
                role_arn=load_balancer_role.arn, cluster_name=cluster.name, vpc_id=network.vpc_id
            ),
            karpenter_namespace=NamespaceRef(KARPENTER_NAMESPACE, gpu_pools.namespace),
        ),
        pulumi.ResourceOptions(
            providers={"aws": aws_provider, "kubernetes": k8s_provider},
            depends_on=[*cluster.compute_ready, storage],
        ),
    )

    pulumi.export("environment", config.environment)
    pulumi.export("clusterName", cluster.name)
    pulumi.export("clusterEndpoint", cluster.endpoint)
    pulumi.export("oidcIssuer", cluster.oidc_issuer)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("systemPoolName", cluster.system_pool_name)
    pulumi.export("gpuPoolNames", gpu_pools.pool_names)


def main() -> None:
    stack = pulumi.get_stack()
    try:
        # The engine hands over values its own YAML parser built; re-reading the stack file holds it to
        # the same rules as `mlplat plan` (no duplicate keys, aliases, bombs) whatever that parser allows.
        config = load_stack_config(stack_values(), f"stack {stack}", stack)
        read_stack_file(stack_file(stack))
    except ConfigError as err:
        # RunError prints the message without a stack trace, before any resource is declared.
        raise pulumi.RunError(str(err)) from None
    try:
        build(config)
    except (ConfigError, CostError) as err:
        # A declared file that contradicts the stack (platform/argocd naming its own repository), or a
        # GPU pool the price table cannot price (its idle cost would be a made-up figure).
        raise pulumi.RunError(str(err)) from None
