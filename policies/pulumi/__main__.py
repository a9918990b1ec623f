"""What `pulumi preview --policy-pack policies/pulumi` runs: serve the mlplat policies over gRPC.

The policy objects live in mlplat_policies.POLICIES so that offline.py runs exactly the same ones.
"""

from mlplat_policies import DEFAULT_ENFORCEMENT, PACK_NAME, POLICIES
from pulumi_policy import PolicyPack

PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,
    enforcement_level=DEFAULT_ENFORCEMENT,
    description="mlplat guardrails: encryption, private API, IMDSv2, GPU pools, state, secrets, IAM.",
)
