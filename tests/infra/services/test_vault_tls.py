"""Vault serves TLS with a certificate from the internal CA, and every client verifies it."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

from infra.services import cert_manager, vault
from tests.support.crds import CRDS
from tests.support.harness import KMS_KEY, REPO, ROLE_ARN, Plan, depends_on
from tests.support.tls import (
    certificates_by_name,
    cluster_issuers,
    host_covered,
    internal_ca,
    server_values,
)

VAULT_CONNECTION = "VaultConnection"


def _unquote(value: Any) -> Any:
    return value.strip('"') if isinstance(value, str) else value


def _block(blocks: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """The body of the one HCL block `<type> "<label>"` (python-hcl2 keeps the label's quotes)."""
    bodies = [body for block in blocks for key, body in block.items() if key.strip('"') == label]
    assert len(bodies) == 1, f"{len(bodies)} blocks labelled {label}"
    return bodies[0]


def _mounted_files(server: dict[str, Any]) -> dict[str, str]:
    """Directory mounted in the server container -> Secret name, for Secret volumes."""
    secrets = {v["name"]: v["secret"]["secretName"] for v in server["volumes"] if "secret" in v}
    return {m["mountPath"]: secrets[m["name"]] for m in server["volumeMounts"] if m["name"] in secrets}


def _secret_of(path: str, mounts: dict[str, str]) -> str | None:
    directory, _, _ = path.rpartition("/")
    return mounts.get(directory)


def test_vault_listens_with_tls_from_the_mounted_certificate(plan: Plan) -> None:
    r, values, config = server_values(plan)
    server = values["server"]
    assert values["global"]["tlsDisable"] is False, f"{r.urn}: the chart would talk http"
    assert not re.search(r"tls_disable\s*=\s*(1|true|\"1\"|\"true\")", server["ha"]["raft"]["config"]), r.urn
    listener = _block(config["listener"], "tcp")
    assert "tls_disable" not in listener, f"{r.urn}: tls_disable in the listener"
    mounts = _mounted_files(server)
    certificates = certificates_by_name(plan)
    for key, file_key in (("tls_cert_file", "tls.crt"), ("tls_key_file", "tls.key")):
        path = _unquote(listener[key])
        secret = _secret_of(path, mounts)
        assert secret is not None and path.endswith(f"/{file_key}"), f"{r.urn}: {key} {path} not mounted"
        assert ("vault", secret) in certificates, f"{r.urn}: {secret} is no Certificate's Secret"
        assert certificates[("vault", secret)].inputs["spec"]["secretName"] == secret, r.urn
    assert all(m["readOnly"] for m in server["volumeMounts"]), r.urn
    # The server's own CLI (readiness probe, runbook) verifies the server against the CA.
    cacert = server["extraEnvironmentVars"]["VAULT_CACERT"]
    assert cacert.endswith("/ca.crt") and _secret_of(cacert, mounts) == vault.TLS_SECRET, r.urn


def test_raft_joins_over_https_with_the_ca_for_every_replica(plan: Plan) -> None:
    r, values, config = server_values(plan)
    replicas = int(values["server"]["ha"]["replicas"])
    assert values["server"]["ha"]["enabled"] is True, r.urn
    raft = _block(config["storage"], "raft")
    joins = raft["retry_join"]
    assert len(joins) == replicas, f"{r.urn}: {len(joins)} retry_join for {replicas} replicas"
    mounts = _mounted_files(values["server"])
    certificate = certificates_by_name(plan)[("vault", vault.TLS_SECRET)].inputs["spec"]
    for i, join in enumerate(joins):
        address = urlsplit(_unquote(join["leader_api_addr"]))
        assert address.scheme == "https", f"{r.urn}: retry_join {address.geturl()}"
        assert address.hostname == f"vault-{i}.vault-internal", r.urn
        assert host_covered(address.hostname, certificate), f"{r.urn}: {address.hostname} not in the SANs"
        ca = _unquote(join["leader_ca_cert_file"])
        assert ca.endswith("/ca.crt") and _secret_of(ca, mounts) == vault.TLS_SECRET, r.urn
    # TLS must not cost the seal, the audit volume, IRSA or telemetry.
    assert _unquote(_block(config["seal"], "awskms")["kms_key_id"]) == KMS_KEY, r.urn
    assert values["server"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == ROLE_ARN, r.urn
    assert values["server"]["auditStorage"]["enabled"] is True, r.urn
    assert _block(config["listener"], "tcp")["telemetry"][0]["unauthenticated_metrics_access"] is False, r.urn
    tls = values["serverTelemetry"]["serviceMonitor"]["tlsConfig"]
    assert tls["ca"]["secret"] == {"name": vault.TLS_SECRET, "key": "ca.crt"}, r.urn
    assert host_covered(tls["serverName"], certificate), f"{r.urn}: scrape serverName {tls['serverName']}"


def test_the_server_certificate_covers_every_name_clients_and_peers_use(plan: Plan) -> None:
    r = certificates_by_name(plan)[("vault", vault.TLS_SECRET)]
    spec = r.inputs["spec"]
    replicas = int(plan.releases()["vault"].inputs["values"]["server"]["ha"]["replicas"])
    wanted = [
        urlsplit(vault.ADDRESS).hostname or "",
        "vault.vault.svc",
        "vault",
        "vault-active.vault.svc",
        "vault-standby.vault.svc",
        "vault-internal.vault.svc",
        "127.0.0.1",
        *(f"vault-{i}.vault-internal" for i in range(replicas)),
        "vault-4.vault-internal",  # scaling up stays covered (wildcard)
    ]
    missing = [host for host in wanted if not host_covered(host, spec)]
    assert not missing, f"{r.urn}: not in the SANs: {missing}"
    for name in spec["dnsNames"]:
        assert fnmatchcase(name, "*vault*") and not name.startswith("*.vault."), f"{r.urn}: SAN {name}"
    assert spec["issuerRef"] == {
        "name": cert_manager.CA_ISSUER,
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    key = spec["privateKey"]
    assert (key["algorithm"], int(key["size"])) in {
        ("ECDSA", 256),
        ("ECDSA", 384),
        ("RSA", 2048),
        ("RSA", 3072),
    }, r.urn
    assert "server auth" in spec["usages"] and spec["duration"] and spec["renewBefore"], r.urn


def test_the_internal_ca_chain(plan: Plan) -> None:
    issuers, certificates = cluster_issuers(plan), certificates_by_name(plan)
    ca, secret = internal_ca(plan)
    # One root, owned by the program: no self-signed bootstrap issuer anyone could sign with.
    assert [name for name, r in issuers.items() if "ca" not in r.inputs["spec"]] == [], plan.env
    assert ca.inputs["isCaCertificate"] is True, ca.urn
    assert "cert_signing" in ca.inputs["allowedUses"], ca.urn
    (key,) = plan.of_type("tls:index/privateKey:PrivateKey")
    assert (key.inputs["algorithm"], key.inputs.get("ecdsaCurve")) == ("ECDSA", "P384"), key.urn
    assert key.urn in ca.dependencies and ca.urn in secret.dependencies, secret.urn
    assert secret.inputs["type"] == "kubernetes.io/tls", secret.urn
    assert secret.inputs["stringData"]["tls.crt"].startswith("-----BEGIN CERTIFICATE-----"), secret.urn
    # The CA key is a Pulumi secret wherever it travels (redacted from the offline plan).
    assert "privateKeyPem" in ca.secret_paths, ca.urn
    assert any("stringData.tls.key".startswith(path) for path in secret.secret_paths), secret.urn
    assert secret.urn in issuers[cert_manager.CA_ISSUER].dependencies, secret.urn
    assert certificates, plan.env
    for leaf in certificates.values():
        assert leaf.inputs["spec"]["issuerRef"]["name"] == cert_manager.CA_ISSUER, leaf.urn
        assert not leaf.inputs["spec"].get("isCA"), leaf.urn


def _hours(duration: str) -> float:
    match = re.fullmatch(r"(\d+)h", duration)
    assert match, duration
    return float(match.group(1))


def test_leaves_renew_with_the_new_ca_long_before_the_old_one_expires(plan: Plan) -> None:
    ca, _ = internal_ca(plan)
    # The CA certificate is replaced (same key) by the first `pulumi up` inside its renewal window.
    renew_before = float(ca.inputs["earlyRenewalHours"])
    assert renew_before < float(ca.inputs["validityPeriodHours"]), ca.urn
    for leaf in certificates_by_name(plan).values():
        spec = leaf.inputs["spec"]
        lifetime = _hours(spec["duration"]) - _hours(spec["renewBefore"])
        assert lifetime * 2 < renew_before, f"{leaf.urn}: reissued too rarely to pick up a new CA"


def _connections(plan: Plan) -> list[tuple[str, str, dict[str, Any]]]:
    """(where, namespace, spec) of every VaultConnection: VSO chart's default, the program's, the repo's."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    release = plan.releases()["vault-secrets-operator"]
    chart_default = release.inputs["values"].get("defaultVaultConnection") or {}
    if chart_default.get("enabled"):
        spec = {k: v for k, v in chart_default.items() if k in ("address", "skipTLSVerify", "tlsServerName")}
        if chart_default.get("caCertSecret"):
            spec["caCertSecretRef"] = chart_default["caCertSecret"]
        found.append((release.urn, release.inputs["namespace"], {"skipTLSVerify": False, **spec}))
    for r in plan.resources:
        if r.type.endswith(f":{VAULT_CONNECTION}"):
            found.append((r.urn, r.inputs["metadata"]["namespace"], r.inputs["spec"]))
    for folder in ("platform", "apps"):
        for path in sorted((REPO / folder).rglob("*.yaml")):
            for doc in yaml.safe_load_all(Path(path).read_text()):
                if isinstance(doc, dict) and doc.get("kind") == VAULT_CONNECTION:
                    found.append((str(path), doc["metadata"].get("namespace", "?"), doc.get("spec") or {}))
    return found


def test_vso_has_one_default_connection_and_it_waits_for_its_ca(plan: Plan) -> None:
    # VaultAuths without vaultConnectionRef (the platform's and the model namespaces') use
    # `default` in VSO's namespace: exactly one must exist.
    connections = [c for c in _connections(plan) if c[1] == vault.OPERATOR_NAMESPACE]
    assert len(connections) == 1, f"{plan.env}: {connections}"
    (r,) = plan.of_type(f"kubernetes:secrets.hashicorp.com/v1beta1:{VAULT_CONNECTION}")
    assert r.inputs["metadata"] == {"name": "default", "namespace": vault.OPERATOR_NAMESPACE}, r.urn
    bundle = certificates_by_name(plan)[(vault.OPERATOR_NAMESPACE, r.inputs["spec"]["caCertSecretRef"])]
    assert depends_on(plan, r, bundle), f"{r.urn} does not wait for {bundle.urn}"
    assert depends_on(plan, r, plan.releases()["vault-secrets-operator"]), f"{r.urn}: before its CRD"
    for auth in plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultAuth"):
        assert depends_on(plan, auth, r), f"{auth.urn} does not wait for {r.urn}"


def test_every_vault_connection_verifies_vault_with_the_ca(plan: Plan) -> None:
    schema = CRDS[("secrets.hashicorp.com/v1beta1", VAULT_CONNECTION)]
    certificates = certificates_by_name(plan)
    connections = _connections(plan)
    assert connections, plan.env
    for where, namespace, spec in connections:
        assert urlsplit(spec["address"]).scheme == "https", f"{where}: {spec['address']}"
        assert spec["skipTLSVerify"] is False, f"{where}: skipTLSVerify"
        assert "tlsServerName" not in spec, f"{where}: verify the address's own name"
        errors = list(jsonschema.Draft7Validator(schema["properties"]["spec"]).iter_errors(spec))
        assert not errors, f"{where}: {[e.message for e in errors]}"
        # caCertSecretRef names a Secret in the connection's namespace holding `ca.crt`: one that
        # cert-manager writes from the internal CA.
        holder = certificates.get((namespace, spec.get("caCertSecretRef", "")))
        assert holder is not None, (
            f"{where}: CA Secret {spec.get('caCertSecretRef')} not issued in {namespace}"
        )
        assert holder.inputs["spec"]["issuerRef"]["name"] == cert_manager.CA_ISSUER, holder.urn
        host = urlsplit(spec["address"]).hostname or ""
        assert host_covered(host, certificates[("vault", vault.TLS_SECRET)].inputs["spec"]), where


def test_vault_auths_use_the_default_connection(plan: Plan) -> None:
    # A vaultConnectionRef would point at a connection the test above does not know about.
    for r in plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultAuth"):
        assert "vaultConnectionRef" not in r.inputs["spec"], r.urn


def test_no_plain_http_vault_address_left(plan: Plan) -> None:
    # Vault by name on any port, or a port-forward to Vault's 8200 (other local ports are MLflow, MinIO).
    pattern = re.compile(r"http://(vault[\w.-]*(:\d+)?|(127\.0\.0\.1|localhost):8200)\b")
    files = [
        *sorted((REPO / "platform").rglob("*.y*ml")),
        *sorted((REPO / "apps").rglob("*.yaml")),
        *sorted((REPO / "docs" / "runbooks").glob("*.md")),
    ]
    offending = [f"{path}: {m.group(0)}" for path in files for m in pattern.finditer(path.read_text())]
    assert not offending, offending
    assert vault.ADDRESS.startswith("https://"), vault.ADDRESS


def test_the_certificates_exist_before_vault_and_vso(plan: Plan) -> None:
    releases, issuers, certificates = plan.releases(), cluster_issuers(plan), certificates_by_name(plan)
    ca_issuer, (_, ca) = issuers[cert_manager.CA_ISSUER], internal_ca(plan)
    server, bundle = (
        certificates[("vault", vault.TLS_SECRET)],
        certificates[(vault.OPERATOR_NAMESPACE, vault.CA_BUNDLE)],
    )
    order = [
        (releases["vault"], server),
        (releases["vault"], ca_issuer),
        (server, ca_issuer),
        (bundle, ca_issuer),
        (ca_issuer, ca),
        *((r, releases["cert-manager"]) for r in [*issuers.values(), *certificates.values()]),
    ]
    for dependent, dependency in order:
        assert depends_on(plan, dependent, dependency), f"{dependent.urn} does not wait for {dependency.urn}"
    # The provider waits until cert-manager reports each Secret issued before dependents start.
    for r in [*certificates.values(), ca_issuer]:
        assert r.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready", r.urn
