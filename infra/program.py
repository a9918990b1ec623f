"""The Pulumi program's entry: read the stack config once, build every component, export outputs."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi.runtime.config import CONFIG, get_config_env

from infra.config import NAMESPACE, ConfigError, StackConfig, load_stack_config


def stack_values() -> dict[str, Any]:
    """The `mlplat:` keys of the running stack, as the Pulumi engine handed them to the program."""
    everything: dict[str, Any] = dict(CONFIG.get() or get_config_env())
    prefix = f"{NAMESPACE}:"
    return {key.removeprefix(prefix): value for key, value in everything.items() if key.startswith(prefix)}


def build(config: StackConfig) -> None:
    """Declare the whole environment. Components get config objects, never pulumi.Config."""
    aws_provider = aws.Provider(
        "aws",
        region=config.aws.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags={"mlplat/managed-by": "pulumi", **config.aws.tags}),
    )
    pulumi.export("environment", config.environment)
    pulumi.export("awsProvider", aws_provider.urn)


def main() -> None:
    try:
        config = load_stack_config(stack_values(), f"stack {pulumi.get_stack()}")
    except ConfigError as err:
        # RunError prints the message without a stack trace, before any resource is declared.
        raise pulumi.RunError(str(err)) from None
    build(config)
