"""cert-manager and the platform's internal CA; installed (with its CRDs) before KServe and Vault.

cert-manager issues KServe's webhook certificates and, through the internal CA built here, the
TLS certificates of in-cluster services (Vault: vault.py, MinIO: minio.py). The program owns the
CA (docs/adr/0004-internal-tls-ca.md): the Pulumi TLS provider generates its key (a Pulumi secret)
and self-signed certificate, the key pair goes into Secret `cert-manager/mlplat-internal-ca` for
the CA ClusterIssuer, and the public certificate is what `ca_bundle` publishes in ConfigMaps for
clients that trust a CA only from a ConfigMap (KServe's storage initializer, MLflow).

Rotation: the CA key is kept across renewals (a `tls.PrivateKey` is never replaced by a renewal),
so a renewed CA certificate has the same key and subject and still verifies every leaf signed
before. `pulumi up` inside the renewal window (`CA_RENEW_BEFORE_HOURS`) replaces the certificate;
leaves renew much more often than the CA, so each leaf Secret's `ca.crt` and every ConfigMap bundle
carry the renewed CA long before the old one expires (docs/runbooks/vault.md).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from infra.services.chart import ChartService, ServiceArgs

NAMESPACE = "cert-manager"
CA_ISSUER = "mlplat-internal-ca"
CA_SECRET = "mlplat-internal-ca"  # pragma: allowlist secret
CA_VALIDITY_HOURS = 43800  # 5 years
CA_RENEW_BEFORE_HOURS = 8760  # 1 year: every leaf (<= 90 days) is reissued with the new CA meanwhile
# ConfigMaps carrying the CA's public certificate to clients that read a CA only from a ConfigMap.
CA_BUNDLE_CONFIGMAP = "mlplat-internal-ca"
API_VERSION = "cert-manager.io/v1"
# The provider waits for cert-manager to report the certificate issued, so whatever mounts or reads
# its Secret (a release, a VaultConnection) is created only once the Secret exists.
WAIT_READY = {"pulumi.com/waitFor": "condition=Ready"}


def issuer_ref(name: str) -> dict[str, str]:
    return {"name": name, "kind": "ClusterIssuer", "group": "cert-manager.io"}


def certificate(
    owner: pulumi.Resource,
    resource_name: str,
    name: str,
    namespace: pulumi.Input[str],
    spec: dict[str, Any],
    depends_on: list[pulumi.Resource],
) -> k8s.apiextensions.CustomResource:
    """A cert-manager Certificate `namespace/name` (Secret of the same name), ready before dependents."""
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=API_VERSION,
        kind="Certificate",
        metadata={"name": name, "namespace": namespace, "annotations": WAIT_READY},
        spec={"secretName": name, **spec},
        opts=pulumi.ResourceOptions(parent=owner, depends_on=depends_on),
    )


def ca_bundle(
    owner: pulumi.Resource,
    resource_name: str,
    name: str,
    namespace: pulumi.Input[str],
    key: str,
    ca_cert_pem: pulumi.Input[str],
    depends_on: list[pulumi.Resource],
) -> k8s.core.v1.ConfigMap:
    """ConfigMap `namespace/name` holding the internal CA's public certificate under `key`."""
    return k8s.core.v1.ConfigMap(
        resource_name,
        metadata={"name": name, "namespace": namespace},
        data={key: ca_cert_pem},
        opts=pulumi.ResourceOptions(parent=owner, depends_on=depends_on),
    )


class CertManager(ChartService):
    """cert-manager with its CRDs (`crds.enabled`) and ServiceMonitor, and the internal CA issuer."""

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "mlplat:services:CertManager", name, NAMESPACE, args.cluster, [args.monitoring_crds], opts
        )
        key = tls.PrivateKey(
            f"{name}-ca-key",
            algorithm="ECDSA",
            ecdsa_curve="P384",
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["privateKeyPem"]),
        )
        ca = tls.SelfSignedCert(
            f"{name}-ca-cert",
            private_key_pem=key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(
                common_name=f"mlplat {args.cluster.environment} internal CA", organization="mlplat"
            ),
            validity_period_hours=CA_VALIDITY_HOURS,
            early_renewal_hours=CA_RENEW_BEFORE_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        # What every client trusts (ca_bundle ConfigMaps, and `ca.crt` in every leaf Secret).
        self.ca_cert_pem: pulumi.Output[str] = ca.cert_pem
        # The CA ClusterIssuer reads `tls.crt`/`tls.key` from this Secret in cert-manager's cluster
        # resource namespace (its own namespace).
        self.ca_secret = k8s.core.v1.Secret(
            f"{name}-ca",
            metadata={"name": CA_SECRET, "namespace": self.namespace.metadata.name},
            type="kubernetes.io/tls",
            # The key stays a secret: `privateKeyPem` is a secret output, and so is a Secret's data.  # pragma: allowlist secret
            string_data={"tls.crt": ca.cert_pem, "tls.key": key.private_key_pem},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        # Like every Secret of a namespace, the CA's exists before the release there starts.
        self.release = self.install(
            "release",
            "cert-manager",
            "cert-manager",
            depends_on=[self.namespace, self.ca_secret, args.monitoring_crds],
        )
        self.ca_issuer = k8s.apiextensions.CustomResource(
            f"{name}-ca-issuer",
            api_version=API_VERSION,
            kind="ClusterIssuer",
            metadata={"name": CA_ISSUER, "annotations": WAIT_READY},
            spec={"ca": {"secretName": CA_SECRET}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, self.ca_secret]),
        )
        self.register_outputs({"release": self.release.status, "caIssuer": CA_ISSUER})
