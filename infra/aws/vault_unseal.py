"""The KMS key Vault auto-unseals with, and the IRSA role that lets only Vault's pods use it."""

from __future__ import annotations

import pulumi

from infra.aws.iam import IamScope, OidcIssuer, Statement, irsa_role
from infra.aws.kms import kms_key

VAULT_NAMESPACE = "vault"
VAULT_SERVICE_ACCOUNT = "vault"


class VaultUnsealKey(pulumi.ComponentResource):
    """Losing this key loses Vault's data: it is protected wherever the stack keeps state."""

    key_id: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        scope: IamScope,
        oidc: OidcIssuer,
        protect_stateful: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplat:security:VaultUnsealKey", name, None, opts)
        key = kms_key(
            f"{name}-key",
            scope.prefix,
            "Vault auto-unseal",
            pulumi.ResourceOptions(parent=self, protect=protect_stateful),
        )
        unseal_role = irsa_role(
            f"{name}-role",
            scope,
            oidc,
            VAULT_NAMESPACE,
            VAULT_SERVICE_ACCOUNT,
            [Statement("UnsealWithKey", ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], [key.arn])],
            pulumi.ResourceOptions(parent=self),
        )
        self.key_id = key.key_id
        self.role_arn = unseal_role.arn
        self.register_outputs({"keyId": self.key_id, "roleArn": self.role_arn})
