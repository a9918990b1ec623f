"""Building the AWS layer's components directly (under the `mock_engine` fixture of tests/conftest.py):
the cluster's args as the program fills them from a stack config, with fake subnets and no routing."""

from __future__ import annotations

from infra.aws.cluster import EksClusterArgs
from infra.aws.identity import StackIdentity
from infra.config import StackConfig

PRIVATE_SUBNETS = ["subnet-a", "subnet-b", "subnet-c"]


def eks_cluster_args(stack: StackIdentity, config: StackConfig) -> EksClusterArgs:
    """The cluster `config` declares, placed where `stack` says, in three fake private subnets."""
    return EksClusterArgs(
        stack=stack,
        cluster=config.cluster,
        system_pool=config.system_pool,
        private_subnet_ids=PRIVATE_SUBNETS,
        protect_stateful=config.protect_stateful,
        routing=[],
    )
