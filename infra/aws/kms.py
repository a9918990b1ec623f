"""Customer-managed KMS keys: rotation always on, protected where the stack keeps state."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def kms_key(
    name: str,
    alias_prefix: str,
    description: str,
    opts: pulumi.ResourceOptions,
    policy: pulumi.Input[str] | None = None,
) -> aws.kms.Key:
    """A symmetric key with yearly rotation and the alias `alias/<alias_prefix><name>`.

    The prefix is the stack's (`mlplat-<env>-`): environments may share an account, and the
    bootstrap's deploy role may only manage aliases under its own environment's prefix.
    Without `policy` the key gets KMS's default key policy (the account administers it through IAM).
    """
    key = aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy,
        opts=opts,
    )
    aws.kms.Alias(
        f"{name}-alias",
        name=f"alias/{alias_prefix}{name}",
        target_key_id=key.key_id,
        opts=pulumi.ResourceOptions(parent=key),
    )
    return key
