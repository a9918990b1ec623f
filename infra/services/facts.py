"""What the platform services know about the cluster they run in: one value, built by infra/program.py.

Several services read each of these facts. Handed down as one typed value, they cannot disagree (two
services claiming different storage classes, one protecting its state and another not) and no
service reaches into the whole stack config for them: a component's args hold this value plus its
own settings (`services.<name>` of the stack file) and the resources it really waits for.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.aws.storage import StorageClassNames
from infra.contract import Environment


@dataclass(frozen=True, kw_only=True)
class ClusterFacts:
    # Picks `platform/<service>/values-<env>.yaml`, names the internal CA, tags what the load
    # balancer controller creates in AWS.
    environment: Environment
    # Vault's KMS seal and the load balancer controller call AWS APIs of this region.
    region: str
    # From the StorageClasses component (infra/aws/storage.py): a volume names only a class that exists.
    storage_classes: StorageClassNames
    # `protect` on every release and CRD set whose deletion would delete state (volumes, every object
    # of a kind): a mistaken `pulumi destroy` or rename stops instead.
    protect_stateful: bool
