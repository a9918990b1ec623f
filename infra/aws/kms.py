"""Customer-managed KMS keys: rotation always on, protected where the stack keeps state."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def kms_key(name: str, description: str, opts: pulumi.ResourceOptions) -> aws.kms.Key:
    """A symmetric key with yearly rotation and an alias named after the Pulumi resource."""
    key = aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        opts=opts,
    )
    aws.kms.Alias(
        f"{name}-alias",
        name=f"alias/mlplat/{name}",
        target_key_id=key.key_id,
        opts=pulumi.ResourceOptions(parent=key),
    )
    return key
