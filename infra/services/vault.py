"""Vault (HA, integrated Raft, AWS KMS auto-unseal, audit volume, TLS) and the Vault Secrets Operator.

Vault serves TLS only, with certificate `vault/vault-server-tls` from the internal CA
(cert_manager.py): its SANs cover the Service, the active/standby Services and every pod behind the
headless Service (the Raft `retry_join` addresses), plus 127.0.0.1 for the server's own CLI. Every
client verifies it against the CA: the Raft followers (`leader_ca_cert_file`), the CLI in the pod
(`VAULT_CACERT`), Prometheus (ServiceMonitor `tlsConfig`) and VSO (the default VaultConnection's
`caCertSecretRef`, see `CA_BUNDLE`).

Metrics need a token: `/v1/sys/metrics` answers unauthenticated requests only when the listener's
`telemetry { unauthenticated_metrics_access = true }` says so (hashicorp/vault-helm v0.34.1
values.yaml `serverTelemetry`), which would hand Vault's internals (request paths, mounts, lease and
token counts) to any pod. Prometheus sends the token in Secret `vault/vault-metrics-token`
(ServiceMonitor `authorization`), a token of policy `platform/vault/prometheus-metrics.hcl` (read
`sys/metrics`, nothing else) that the runbook creates and writes to Vault; VSO syncs it. Until then
the seeded placeholder is refused, the scrape fails and the Vault alerts fire.

Vault unseals itself with the KMS key through the IRSA role on its ServiceAccount; it is
initialised once by an operator with recovery keys (docs/runbooks/vault.md), which is also where
Kubernetes auth, the KV mount, the policies in platform/vault/*.hcl and the audit device are set up.
VSO is the single mechanism delivering Vault secrets to workloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import VaultConfig
from infra.services.cert_manager import InternalCa
from infra.services.chart import ChartService, ServiceArgs, namespace

NAMESPACE = "vault"
OPERATOR_NAMESPACE = "vault-secrets-operator"
RELEASE = "vault"
SERVICE_HOST = f"{RELEASE}.{NAMESPACE}.svc.cluster.local"
# The API port: our listener's (server_config). The chart's Service exposes and targets its own default,
# which must equal it (hashicorp/vault-helm v0.34.1 values.yaml `server.service.port` / `targetPort`:
# 8200; tests/infra/services/test_vault_metrics.py holds the two together).
API_PORT = 8200
ADDRESS = f"https://{SERVICE_HOST}:{API_PORT}"

# The server certificate, mounted where the chart mounts user config (`/vault/userconfig/<name>`).
TLS_SECRET = "vault-server-tls"  # pragma: allowlist secret
TLS_DIR = f"/vault/userconfig/{TLS_SECRET}"
TLS_CERT_FILE = f"{TLS_DIR}/tls.crt"
TLS_KEY_FILE = f"{TLS_DIR}/tls.key"
TLS_CA_FILE = f"{TLS_DIR}/ca.crt"

# VSO trusts the CA through a Secret in its own namespace (a VaultConnection's `caCertSecretRef` is
# namespace-local). Only the default VaultConnection exists, in VSO's namespace; every VaultAuth
# (the platform's and the model namespaces') uses it. The Secret comes from a client-only
# Certificate of the same CA there: cert-manager writes `ca.crt` into it and keeps it current
# when the CA renews, with no copy step in the program. Its leaf (client auth only, no SAN) cannot
# serve as a Vault server certificate and is used by nobody.
CA_BUNDLE = "vault-ca"  # pragma: allowlist secret
DEFAULT_CONNECTION = "default"  # the name VSO looks up in its own namespace

METRICS_TOKEN_SECRET = "vault-metrics-token"  # pragma: allowlist secret (a Secret name)
METRICS_TOKEN_VAULT_PATH = "platform/vault/metrics-token"
# Not a token Vault ever issued: refused until the runbook writes the real one.
METRICS_TOKEN_PLACEHOLDER = "metrics-token-not-configured"  # pragma: allowlist secret


def server_dns_names(replicas: int) -> list[str]:
    """Names clients and Raft peers use: each Service (short to fully qualified) and every pod."""
    names: list[str] = []
    for service in (RELEASE, f"{RELEASE}-active", f"{RELEASE}-standby", f"{RELEASE}-internal"):
        names += [
            service,
            f"{service}.{NAMESPACE}",
            f"{service}.{NAMESPACE}.svc",
            f"{service}.{NAMESPACE}.svc.cluster.local",
        ]
    # Pods by their headless-Service names (retry_join, VAULT_CLUSTER_ADDR); wildcards cover scaling up.
    names += [f"{RELEASE}-{i}.{RELEASE}-internal" for i in range(replicas)]
    for suffix in ("", f".{NAMESPACE}.svc", f".{NAMESPACE}.svc.cluster.local"):
        names.append(f"*.{RELEASE}-internal{suffix}")
    return names


@dataclass(frozen=True)
class VaultUnseal:
    """The AWS side of the KMS seal (infra/aws/vault_unseal.py), in the cluster's region."""

    role_arn: pulumi.Input[str]  # IRSA role for the vault ServiceAccount (vault/vault)
    kms_key_id: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class VaultArgs(ServiceArgs):
    settings: VaultConfig  # services.vault
    unseal: VaultUnseal
    # The internal CA (cert_manager.py): Vault serves TLS only, with a certificate of it.
    ca: InternalCa


def server_config(replicas: int, kms_key_id: str, region: str) -> str:
    """Vault's HCL server config: TLS listener, Raft joined across the pods, awskms seal, telemetry."""
    joins = "\n".join(
        f"  retry_join {{\n"
        f'    leader_api_addr = "https://{RELEASE}-{i}.{RELEASE}-internal:{API_PORT}"\n'
        f'    leader_ca_cert_file = "{TLS_CA_FILE}"\n'
        f"  }}"
        for i in range(replicas)
    )
    return f"""ui = true
disable_mlock = true

listener "tcp" {{
  address = "[::]:{API_PORT}"
  tls_cert_file = "{TLS_CERT_FILE}"
  tls_key_file = "{TLS_KEY_FILE}"
  tls_min_version = "tls12"
  cluster_address = "[::]:8201"
  telemetry {{
    unauthenticated_metrics_access = false
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
    replicas = args.settings.replicas
    region = args.cluster.region
    config = pulumi.Output.from_input(args.unseal.kms_key_id).apply(
        lambda key: server_config(replicas, key, region)
    )
    stateful = args.cluster.storage_classes.retain
    return {
        "global": {"tlsDisable": False},
        "server": {
            "volumes": [
                # Readable by Vault's group (the chart's fsGroup) only.
                {"name": TLS_SECRET, "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}}
            ],
            "volumeMounts": [{"name": TLS_SECRET, "mountPath": TLS_DIR, "readOnly": True}],
            # The chart points VAULT_ADDR at https://127.0.0.1:8200 when TLS is on; the CLI in the pod
            # (readiness probe, runbook) verifies the server against the CA.
            "extraEnvironmentVars": {"VAULT_CACERT": TLS_CA_FILE},
            "ha": {
                "enabled": True,
                "replicas": replicas,
                "raft": {"enabled": True, "setNodeId": True, "config": config},
            },
            # IRSA: the server pods get AWS credentials for kms:Encrypt/Decrypt/DescribeKey on the unseal key.
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": args.unseal.role_arn}},
            "dataStorage": {"enabled": True, "storageClass": stateful},
            # The file audit device writes here (enabled by the runbook: `vault audit enable file ...`).
            "auditStorage": {"enabled": True, "storageClass": stateful},
        },
        # The chart scrapes over https when TLS is on; Prometheus verifies Vault against the CA (the
        # ServiceMonitor sits in namespace vault, next to the Secret).
        "serverTelemetry": {
            "serviceMonitor": {
                "tlsConfig": {
                    "ca": {"secret": {"name": TLS_SECRET, "key": "ca.crt"}},
                    "serverName": f"{RELEASE}-internal.{NAMESPACE}.svc",
                },
                # A token allowed to read sys/metrics only (see the module docstring).
                "authorization": {"credentials": {"name": METRICS_TOKEN_SECRET, "key": "token"}},
            }
        },
    }


class Vault(ChartService):
    """Vault server and the Vault Secrets Operator."""

    def __init__(self, name: str, args: VaultArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:Vault", name, NAMESPACE, args.cluster, [args.monitoring_crds], opts)
        replicas = args.settings.replicas
        self.certificate = args.ca.certificate(
            self,
            f"{name}-server-tls",
            TLS_SECRET,
            self.namespace,
            {
                "commonName": SERVICE_HOST,
                "dnsNames": server_dns_names(replicas),
                "ipAddresses": ["127.0.0.1"],
            },
            usages=["digital signature", "server auth"],
        )
        metrics_token = self.seed(
            "metrics-token",
            METRICS_TOKEN_SECRET,
            METRICS_TOKEN_VAULT_PATH,
            {"token": METRICS_TOKEN_PLACEHOLDER},
        )
        self.release = self.install(
            "release",
            RELEASE,
            "vault",
            computed=computed_values(args),
            depends_on=[self.namespace, self.certificate, metrics_token.resource, args.monitoring_crds],
            protect=args.cluster.protect_stateful,
        )
        operator_ns = namespace(self, f"{name}-operator-ns", OPERATOR_NAMESPACE)
        self.ca_bundle = args.ca.certificate(
            self,
            f"{name}-operator-ca",
            CA_BUNDLE,
            operator_ns,
            {"commonName": f"{OPERATOR_NAMESPACE}.{NAMESPACE}-ca-bundle"},
            usages=["digital signature", "client auth"],
        )
        self.operator = self.install(
            "operator",
            "vault-secrets-operator",
            "vault-secrets-operator",
            # The default VaultConnection is ours (below), not the chart's.
            computed={"defaultVaultConnection": {"enabled": False}},
            depends_on=[operator_ns, self.release, args.monitoring_crds],
            into=operator_ns,
        )
        # The connection every VaultAuth without `vaultConnectionRef` uses (`default` in VSO's
        # namespace): the chart would render the same, but created here it is validated like every
        # other custom resource, and it waits for its CA Secret.
        self.connection = k8s.apiextensions.CustomResource(
            f"{name}-connection",
            api_version="secrets.hashicorp.com/v1beta1",
            kind="VaultConnection",
            metadata={"name": DEFAULT_CONNECTION, "namespace": OPERATOR_NAMESPACE},
            spec={"address": ADDRESS, "caCertSecretRef": CA_BUNDLE, "skipTLSVerify": False},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.operator, self.ca_bundle]),
        )
        self.register_outputs(
            {"release": self.release.status, "operator": self.operator.status, "address": ADDRESS}
        )
