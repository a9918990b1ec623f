"""Vault (HA, integrated Raft, AWS KMS auto-unseal, audit volume) and the Vault Secrets Operator.

Vault unseals itself with the KMS key through the IRSA role on its ServiceAccount; it is
initialised once by an operator with recovery keys (docs/runbooks/vault.md), which is also where
Kubernetes auth, the KV mount, the policies in platform/vault/*.hcl and the audit device are set up.
VSO is the single mechanism delivering Vault secrets to workloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.services.chart import STATEFUL_STORAGE_CLASS, ChartService, ServiceArgs, namespace

NAMESPACE = "vault"
OPERATOR_NAMESPACE = "vault-secrets-operator"
RELEASE = "vault"
ADDRESS = f"http://{RELEASE}.{NAMESPACE}.svc.cluster.local:8200"


@dataclass(frozen=True)
class VaultArgs(ServiceArgs):
    role_arn: pulumi.Input[str] = ""
    kms_key_id: pulumi.Input[str] = ""
    region: str = ""


def server_config(replicas: int, kms_key_id: str, region: str) -> str:
    """Vault's HCL server config: Raft storage joined across the pods, awskms seal, telemetry."""
    joins = "\n".join(
        f'  retry_join {{\n    leader_api_addr = "http://{RELEASE}-{i}.{RELEASE}-internal:8200"\n  }}'
        for i in range(replicas)
    )
    return f"""ui = true
disable_mlock = true

listener "tcp" {{
  tls_disable = 1
  address = "[::]:8200"
  cluster_address = "[::]:8201"
  telemetry {{
    unauthenticated_metrics_access = true
  }}
}}

storage "raft" {{
  path = "/vault/data"
{joins}
}}

seal "awskms" {{
  region = "{region}"
  kms_key_id = "{kms_key_id}"
}}

telemetry {{
  prometheus_retention_time = "30s"
  disable_hostname = true
}}

service_registration "kubernetes" {{}}
"""


def computed_values(args: VaultArgs) -> dict[str, Any]:
    replicas = args.config.services.vault.replicas
    config = pulumi.Output.from_input(args.kms_key_id).apply(
        lambda key: server_config(replicas, key, args.region)
    )
    return {
        "server": {
            "ha": {
                "enabled": True,
                "replicas": replicas,
                "raft": {"enabled": True, "setNodeId": True, "config": config},
            },
            # IRSA: the server pods get AWS credentials for kms:Encrypt/Decrypt/DescribeKey on the unseal key.
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": args.role_arn}},
            "dataStorage": {"enabled": True, "storageClass": STATEFUL_STORAGE_CLASS},
            # The file audit device writes here (enabled by the runbook: `vault audit enable file ...`).
            "auditStorage": {"enabled": True, "storageClass": STATEFUL_STORAGE_CLASS},
        }
    }


class Vault(ChartService):
    """Vault server and the Vault Secrets Operator."""

    def __init__(self, name: str, args: VaultArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:Vault", name, args, NAMESPACE, opts)
        self.release = self.install(
            "release", RELEASE, "vault", computed=computed_values(args), protect=args.config.protect_stateful
        )
        operator_ns = namespace(self, f"{name}-operator-ns", OPERATOR_NAMESPACE)
        self.operator = self.install(
            "operator",
            "vault-secrets-operator",
            "vault-secrets-operator",
            computed={"defaultVaultConnection": {"enabled": True, "address": ADDRESS}},
            depends_on=[operator_ns, self.release, *args.after],
            into=operator_ns,
        )
        self.register_outputs(
            {"release": self.release.status, "operator": self.operator.status, "address": ADDRESS}
        )
