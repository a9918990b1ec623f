"""Credentials the platform generates, delivered the one way the platform delivers secrets: Vault + VSO.

Bootstrap order (docs/runbooks/vault.md): on the very first `pulumi up` Vault is not initialised,
so nothing can be read from it yet. Pulumi therefore generates each credential (pulumi-random,
secret in state) and seeds the destination Kubernetes Secret once, so the chart that reads it
(`existingSecret`) can start. The runbook then writes the same values into Vault KV
(`kv/platform/...`); from then on a VaultStaticSecret keeps the Kubernetes Secret in sync from
Vault (`overwrite: true`) and Vault is the source of truth. Pulumi ignores later changes of the
seeded data, so a rotation done in Vault is never reverted by the next `pulumi up`.

A credential no generated value could stand in for (a Git host's token) is not seeded: a
`WrittenSecret` is created by VSO once an operator has written its Vault path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

VAULT_KV_MOUNT = "kv"
# Each consuming namespace authenticates with this ServiceAccount to the Vault role named like the
# namespace (policies in platform/vault/<namespace>.hcl).
VAULT_AUTH_NAME = "vault"
VAULT_AUTH_SERVICE_ACCOUNT = "vault-secrets"
VAULT_AUDIENCE = "vault"
REFRESH_AFTER = "1h"


def password(owner: pulumi.Resource, name: str, length: int = 32) -> pulumi.Output[str]:
    """A generated password, alphanumeric so it survives config files and URLs unescaped."""
    generated = random.RandomPassword(
        name, length=length, special=False, opts=pulumi.ResourceOptions(parent=owner)
    )
    return pulumi.Output.secret(generated.result)


@dataclass(frozen=True)
class SeededSecret:
    """A Kubernetes Secret Pulumi seeded, and the Vault KV path that owns its data afterwards."""

    namespace: str
    secret_name: str
    vault_path: str  # below the kv-v2 mount, e.g. platform/minio/root
    resource: k8s.core.v1.Secret


def seed_secret(
    owner: pulumi.Resource,
    resource_name: str,
    namespace: k8s.core.v1.Namespace,
    namespace_name: str,
    secret_name: str,
    vault_path: str,
    data: Mapping[str, pulumi.Input[str]],
    labels: Mapping[str, str] | None = None,
) -> SeededSecret:
    """Create the Secret a chart reads, with generated data, written once (see the module docstring).

    `labels` mark the seeded state: VSO replaces a destination Secret's labels and annotations with
    its own on every sync (hashicorp/vault-secrets-operator v1.4.1 helpers/secrets.go, `SyncSecret`:
    `dest.SetAnnotations`, `dest.SetLabels`), so a label set here disappears once Vault owns the
    Secret, and Pulumi must not put it (or the annotation) back.
    """
    secret = k8s.core.v1.Secret(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=secret_name,
            namespace=namespace.metadata.name,  # an Output of the namespace: created after it
            annotations={"mlplat/vault-path": f"{VAULT_KV_MOUNT}/{vault_path}"},
            labels=dict(labels) if labels else None,
        ),
        type="Opaque",
        string_data={key: pulumi.Output.secret(value) for key, value in data.items()},
        opts=pulumi.ResourceOptions(
            parent=owner,
            ignore_changes=["data", "stringData", "metadata.labels", "metadata.annotations"],
            additional_secret_outputs=["data", "stringData"],
        ),
    )
    return SeededSecret(namespace_name, secret_name, vault_path, secret)


@dataclass(frozen=True)
class WrittenSecret:
    """A Secret VSO creates from a Vault path only an operator can write (docs/runbooks/vault.md): no value
    the program could generate would work (a Git host's credential), so nothing is seeded, and the Secret
    exists once Vault holds the path.

    VSO sets `labels` on it at every sync (with its own, `SyncSecret`: a label set any other way
    disappears), takes from Vault only `keys`, and writes `fixed` over whatever Vault holds: values the
    program owns, rendered as Go templates, so they must hold no `{{`. Without `excludeRaw` the Secret
    would also get `_raw`, every key Vault holds, past `includes` (hashicorp/vault-secrets-operator
    v1.4.1 helpers/secrets.go: function makeK8sData; `includes` patterns are regular expressions matched
    anywhere in a key, helpers/template.go `FilterData`, hence anchored here).
    """

    namespace: str
    secret_name: str
    vault_path: str  # below the kv-v2 mount
    namespace_resource: pulumi.Resource  # nothing seeded to wait for: the sync waits for its namespace
    labels: Mapping[str, str]
    keys: tuple[str, ...]
    fixed: Mapping[str, str]

    def destination(self) -> dict[str, Any]:
        """`spec.destination` of its VaultStaticSecret beyond the name (v1.4.1 CRD, ../shared/reference)."""
        return {
            "labels": dict(self.labels),
            "transformation": {
                "excludeRaw": True,
                "includes": ["^(" + "|".join(re.escape(key) for key in self.keys) + ")$"],
                "templates": {key: {"text": value} for key, value in self.fixed.items()},
            },
        }


class VaultAccess(pulumi.ComponentResource):
    """VSO's identity in one namespace (ServiceAccount + VaultAuth) and the secrets it syncs there."""

    auth: k8s.apiextensions.CustomResource
    syncs: list[k8s.apiextensions.CustomResource]

    def __init__(
        self,
        name: str,
        namespace: str,
        seeds: Sequence[SeededSecret],
        operator: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
        *,
        written: Sequence[WrittenSecret] = (),
    ):
        super().__init__("mlplat:services:VaultAccess", name, None, opts)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=VAULT_AUTH_SERVICE_ACCOUNT, namespace=namespace),
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.auth = k8s.apiextensions.CustomResource(
            f"{name}-auth",
            api_version="secrets.hashicorp.com/v1beta1",
            kind="VaultAuth",
            metadata={"name": VAULT_AUTH_NAME, "namespace": namespace},
            spec={
                # No vaultConnectionRef: VSO then uses VaultConnection `default` in its namespace (vault.py).
                "method": "kubernetes",
                "mount": "kubernetes",
                "kubernetes": {
                    "role": namespace,
                    "serviceAccount": VAULT_AUTH_SERVICE_ACCOUNT,
                    "audiences": [VAULT_AUDIENCE],
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[account, *operator]),
        )
        self.syncs = [
            self._sync(name, namespace, seed.secret_name, seed.vault_path, {}, seed.resource)
            for seed in seeds
            if seed.namespace == namespace
        ]
        self.syncs += [
            self._sync(name, namespace, w.secret_name, w.vault_path, w.destination(), w.namespace_resource)
            for w in written
            if w.namespace == namespace
        ]
        self.register_outputs({"vaultAuth": self.auth.urn, "synced": [s.urn for s in self.syncs]})

    def _sync(
        self,
        name: str,
        namespace: str,
        secret_name: str,
        vault_path: str,
        destination: Mapping[str, Any],
        after: pulumi.Resource,
    ) -> k8s.apiextensions.CustomResource:
        """The VaultStaticSecret keeping `secret_name` equal to `vault_path`, once `after` exists."""
        return k8s.apiextensions.CustomResource(
            f"{name}-sync-{secret_name}",
            api_version="secrets.hashicorp.com/v1beta1",
            kind="VaultStaticSecret",
            metadata={"name": secret_name, "namespace": namespace},
            spec={
                "vaultAuthRef": VAULT_AUTH_NAME,
                "mount": VAULT_KV_MOUNT,
                "type": "kv-v2",
                "path": vault_path,
                "refreshAfter": REFRESH_AFTER,
                "destination": {"name": secret_name, "create": True, "overwrite": True, **destination},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.auth, after]),
        )
