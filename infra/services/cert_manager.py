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

from dataclasses import dataclass
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
# Every certificate the CA issues: 90 days, renewed 30 days before it ends (the window to reload a
# server that reads its certificate only at start, e.g. Vault on SIGHUP), a new ECDSA P-256 key each time.
LEAF_DURATION = "2160h"
LEAF_RENEW_BEFORE = "720h"
LEAF_KEY = {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}


@dataclass(frozen=True)
class InternalCa:
    """The platform's internal CA (docs/adr/0004-internal-tls-ca.md), as the services that use it see
    it: its ClusterIssuer signs their server certificates, its certificate is what their clients trust."""

    issuer: pulumi.Resource  # ClusterIssuer CA_ISSUER: a certificate requested before it exists is not issued
    cert_pem: pulumi.Input[str]

    def certificate(
        self,
        owner: pulumi.Resource,
        resource_name: str,
        name: str,
        namespace: k8s.core.v1.Namespace,
        names: dict[str, Any],
        usages: list[str],
    ) -> k8s.apiextensions.CustomResource:
        """A Certificate `<namespace>/name` of this CA (Secret of the same name) for `names`
        (`commonName`, `dnsNames`, `ipAddresses`), ready before dependents; it waits for its namespace
        and the issuer."""
        spec = {
            **names,
            "duration": LEAF_DURATION,
            "renewBefore": LEAF_RENEW_BEFORE,
            "privateKey": LEAF_KEY,
            "usages": usages,
            "issuerRef": {"name": CA_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"},
        }
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version=API_VERSION,
            kind="Certificate",
            metadata={"name": name, "namespace": namespace.metadata.name, "annotations": WAIT_READY},
            spec={"secretName": name, **spec},
            opts=pulumi.ResourceOptions(parent=owner, depends_on=[namespace, self.issuer]),
        )

    def bundle(
        self, owner: pulumi.Resource, resource_name: str, namespace: k8s.core.v1.Namespace, key: str
    ) -> k8s.core.v1.ConfigMap:
        """ConfigMap `<namespace>/CA_BUNDLE_CONFIGMAP` holding the CA's certificate under `key`."""
        return k8s.core.v1.ConfigMap(
            resource_name,
            metadata={"name": CA_BUNDLE_CONFIGMAP, "namespace": namespace.metadata.name},
            data={key: self.cert_pem},
            opts=pulumi.ResourceOptions(parent=owner, depends_on=[namespace]),
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
        issuer = k8s.apiextensions.CustomResource(
            f"{name}-ca-issuer",
            api_version=API_VERSION,
            kind="ClusterIssuer",
            metadata={"name": CA_ISSUER, "annotations": WAIT_READY},
            spec={"ca": {"secretName": CA_SECRET}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, self.ca_secret]),
        )
        # What every client trusts: ca_bundle ConfigMaps, and `ca.crt` in every leaf Secret.
        self.ca = InternalCa(issuer, ca.cert_pem)
        self.register_outputs({"release": self.release.status, "caIssuer": CA_ISSUER})
