"""cert-manager and the platform's internal CA; installed (with its CRDs) before KServe and Vault.

cert-manager issues KServe's webhook certificates and, through the internal CA built here, the
TLS certificates of in-cluster services (Vault: infra/services/vault.py). The CA is bootstrapped
in cert-manager's own way: a self-signed ClusterIssuer signs the CA Certificate (key in
`cert-manager/mlplat-internal-ca`), and the CA ClusterIssuer signs everything else with it.

Rotation: the CA key is kept across renewals (`rotationPolicy: Never`), so a renewed CA certificate
has the same key and subject and still verifies every leaf signed before; leaves renew much more
often than the CA, so each leaf Secret's `ca.crt` (what clients trust) carries the renewed CA long
before the old one expires (docs/runbooks/vault.md).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.services.chart import ChartService, ServiceArgs

NAMESPACE = "cert-manager"
SELF_SIGNED_ISSUER = "mlplat-selfsigned"
CA_ISSUER = "mlplat-internal-ca"
CA_SECRET = "mlplat-internal-ca"  # pragma: allowlist secret
CA_DURATION = "43800h"  # 5 years
CA_RENEW_BEFORE = "8760h"  # 1 year: every leaf (<= 90 days) is reissued with the new CA meanwhile
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


class CertManager(ChartService):
    """cert-manager with its CRDs (`crds.enabled`) and ServiceMonitor, and the internal CA issuer."""

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:CertManager", name, args, NAMESPACE, opts)
        self.release = self.install("release", "cert-manager", "cert-manager")
        self_signed = k8s.apiextensions.CustomResource(
            f"{name}-selfsigned-issuer",
            api_version=API_VERSION,
            kind="ClusterIssuer",
            metadata={"name": SELF_SIGNED_ISSUER},
            spec={"selfSigned": {}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        self.ca_certificate = certificate(
            self,
            f"{name}-ca",
            CA_SECRET,
            self.namespace.metadata.name,
            {
                "isCA": True,
                "commonName": f"mlplat {args.config.environment} internal CA",
                "subject": {"organizations": ["mlplat"]},
                "duration": CA_DURATION,
                "renewBefore": CA_RENEW_BEFORE,
                "privateKey": {"algorithm": "ECDSA", "size": 384, "rotationPolicy": "Never"},
                "usages": ["cert sign", "crl sign", "digital signature"],
                "issuerRef": issuer_ref(SELF_SIGNED_ISSUER),
            },
            [self.release, self_signed],
        )
        # Signs with the CA Secret in cert-manager's cluster resource namespace (its own namespace).
        self.ca_issuer = k8s.apiextensions.CustomResource(
            f"{name}-ca-issuer",
            api_version=API_VERSION,
            kind="ClusterIssuer",
            metadata={"name": CA_ISSUER, "annotations": WAIT_READY},
            spec={"ca": {"secretName": CA_SECRET}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, self.ca_certificate]),
        )
        self.register_outputs({"release": self.release.status, "caIssuer": CA_ISSUER})
