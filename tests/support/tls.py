"""The internal CA's objects in a recorded plan: certificates, ClusterIssuers, the CA itself, and which
names a certificate covers (the Vault and MinIO TLS tests share them)."""

from __future__ import annotations

import ipaddress
from typing import Any

import hcl2

from infra.services import cert_manager
from tests.support.harness import Plan, Registered

CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"


CLUSTER_ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"


CA_CERT = "tls:index/selfSignedCert:SelfSignedCert"


def certificates_by_name(plan: Plan) -> dict[tuple[str, str], Registered]:
    return {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r
        for r in plan.of_type(CERTIFICATE)
    }


def cluster_issuers(plan: Plan) -> dict[str, Registered]:
    return {r.inputs["metadata"]["name"]: r for r in plan.of_type(CLUSTER_ISSUER)}


def host_covered(host: str, certificate: dict[str, Any]) -> bool:
    try:
        return str(ipaddress.ip_address(host)) in certificate.get("ipAddresses", [])
    except ValueError:
        pass
    # A wildcard covers exactly one leftmost label (RFC 6125), like Go's and OpenSSL's verifiers.
    return any(
        host == name or (name.startswith("*.") and host.split(".", 1)[-1] == name[2:] and "." in host)
        for name in certificate.get("dnsNames", [])
    )


def server_values(plan: Plan) -> tuple[Registered, dict[str, Any], dict[str, Any]]:
    r = plan.releases()["vault"]
    values = r.inputs["values"]
    return r, values, hcl2.loads(values["server"]["ha"]["raft"]["config"])


def internal_ca(plan: Plan) -> tuple[Registered, Registered]:
    """(the CA certificate the program generates, the Secret the CA ClusterIssuer signs with)."""
    (ca,) = plan.of_type(CA_CERT)
    issuer = cluster_issuers(plan)[cert_manager.CA_ISSUER]
    # A ClusterIssuer reads its CA Secret from cert-manager's cluster resource namespace (its own).
    (secret,) = [
        r
        for r in plan.of_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"]
        == {"name": issuer.inputs["spec"]["ca"]["secretName"], "namespace": "cert-manager"}
    ]
    return ca, secret
