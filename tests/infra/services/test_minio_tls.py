"""MinIO serves TLS with a certificate from the internal CA, and every client of it verifies it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from infra.services import cert_manager, minio
from tests.support.harness import REPO, Plan, Registered, depends_on, reference_chart
from tests.support.tls import certificates_by_name, host_covered, internal_ca

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
# MinIO by any in-cluster name over plain http.
PLAIN_HTTP = re.compile(r"http://minio[\w.-]*")
# KServe's switches for https and certificate verification (chart values, S3 annotations), set to
# anything but "1" (kserve/kserve v0.20.0 pkg/credentials/s3/s3_secret.go), in any file: YAML,
# kustomize patches held as strings, runbook snippets.
SWITCH = re.compile(r"""(useHttps|verifySSL|s3-usehttps|s3-verifyssl)["']?\s*[:=]\s*["']?([^"'\s,}]*)""")
# Every file a client's MinIO settings live in (values, app manifests, the runbooks people copy from).
CLIENT_FOLDERS = ("platform", "apps", "infra", "docs/runbooks")


def _ca_pem(plan: Plan) -> str:
    _, secret = internal_ca(plan)
    pem: str = secret.inputs["stringData"]["tls.crt"]
    return pem


def _config_map(plan: Plan, namespace: str, name: str) -> Registered:
    (found,) = [
        r for r in plan.of_type(CONFIG_MAP) if r.inputs["metadata"] == {"name": name, "namespace": namespace}
    ]
    return found


def test_minio_serves_tls_from_the_internal_ca(plan: Plan) -> None:
    release = plan.releases()["minio"]
    values = release.inputs["values"]
    tls = values["tls"]
    assert tls["enabled"] is True, f"{release.urn}: MinIO serves plain http"
    # The chart mounts these keys as public.crt/private.key (templates/_helpers.tpl minio.tlsKeysVolume).
    defaults, _ = reference_chart("minio")
    assert set(tls) <= set(defaults["tls"]), f"{release.urn}: tls keys {sorted(tls)}"
    certificate = certificates_by_name(plan).get((release.inputs["namespace"], tls["certSecret"]))
    assert certificate is not None, f"{release.urn}: {tls['certSecret']} is no Certificate's Secret"
    assert (tls["publicCrt"], tls["privateKey"]) == ("tls.crt", "tls.key"), release.urn
    spec = certificate.inputs["spec"]
    assert spec["issuerRef"]["name"] == cert_manager.CA_ISSUER, certificate.urn
    assert depends_on(plan, release, certificate), f"{release.urn} does not wait for {certificate.urn}"
    assert "server auth" in spec["usages"], certificate.urn
    # Distributed peers dial `<fullname>-<i>.<fullname>-svc.<namespace>.svc` (templates/statefulset.yaml).
    replicas = int(values["replicas"])
    wanted = [
        "minio",  # the chart's ServiceMonitor `serverName`
        "minio.minio",
        "minio.minio.svc",
        "minio.minio.svc.cluster.local",
        urlsplit(minio.ENDPOINT).hostname or "",
        *(f"minio-{i}.minio-svc.minio.svc" for i in range(replicas + 1)),
        *(f"minio-{i}.minio-svc.minio.svc.cluster.local" for i in range(replicas + 1)),
    ]
    missing = [host for host in wanted if not host_covered(host, spec)]
    assert not missing, f"{certificate.urn}: not in the SANs: {missing}"
    for name in spec["dnsNames"]:
        assert name.split(".")[-1] != "*" and not name.startswith("*.minio."), (
            f"{certificate.urn}: SAN {name}"
        )


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _s3_switches(value: Any, where: str) -> list[tuple[str, str, Any]]:
    """(where, key, value) of every KServe https/verify switch: chart values and S3 annotations."""
    found: list[tuple[str, str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in (
                "useHttps",
                "verifySSL",
                "serving.kserve.io/s3-usehttps",
                "serving.kserve.io/s3-verifyssl",
            ):
                found.append((where, key, item))
            found += _s3_switches(item, where)
    elif isinstance(value, list):
        for item in value:
            found += _s3_switches(item, where)
    return found


def _client_files() -> list[Path]:
    return [
        path
        for folder in CLIENT_FOLDERS
        for path in sorted((REPO / folder).rglob("*"))
        if path.is_file() and path.suffix in (".yaml", ".yml", ".py", ".md", ".json", ".hcl")
    ]


def test_every_minio_client_verifies_the_internal_ca(plan: Plan) -> None:
    plain = [
        f"{path.relative_to(REPO)}: {match.group(0)}"
        for path in _client_files()
        for match in PLAIN_HTTP.finditer(path.read_text())
    ]
    plain += [f"{r.urn}: {s}" for r in plan.resources for s in _strings(r.inputs) if PLAIN_HTTP.search(s)]
    assert not plain, f"MinIO over plain http: {plain}"

    switches = [s for r in plan.resources for s in _s3_switches(r.inputs, r.urn)]
    for path in sorted((REPO / "apps").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            switches += _s3_switches(doc, str(path.relative_to(REPO)))
    assert {key for _, key, _ in switches} >= {"useHttps", "verifySSL", "serving.kserve.io/s3-verifyssl"}
    off = [(where, key, value) for where, key, value in switches if value != "1"]
    off += [
        (str(path.relative_to(REPO)), match.group(1), match.group(2))
        for path in _client_files()
        for match in SWITCH.finditer(path.read_text())
        if match.group(2) != "1"
    ]
    assert not off, f"S3 clients of MinIO not on https or not verifying: {off}"

    # MLflow: https endpoint, boto3 verifies against the CA mounted from a ConfigMap of its namespace.
    release = plan.releases()["mlflow"]
    values = release.inputs["values"]
    env = values["extraEnvVars"]
    assert urlsplit(env["MLFLOW_S3_ENDPOINT_URL"]).scheme == "https", release.urn
    assert not env.get("MLFLOW_S3_IGNORE_TLS"), release.urn
    bundle_dir, _, bundle_key = env["AWS_CA_BUNDLE"].rpartition("/")
    volumes = {v["name"]: v for v in values["extraVolumes"]}
    (mount,) = [m for m in values["extraVolumeMounts"] if m["mountPath"].rstrip("/") == bundle_dir]
    config_map = _config_map(plan, release.inputs["namespace"], volumes[mount["name"]]["configMap"]["name"])
    assert config_map.inputs["data"][bundle_key] == _ca_pem(plan), config_map.urn
    assert depends_on(plan, release, config_map), f"{release.urn} does not wait for {config_map.urn}"


def test_kserve_storage_initializer_gets_the_ca_bundle(plan: Plan) -> None:
    release = plan.releases()["kserve"]
    storage = release.inputs["values"]["kserve"]["storage"]
    defaults, _ = reference_chart("kserve-resources")
    assert "caBundleConfigMapName" in defaults["kserve"]["storage"], "chart key moved"
    name = storage.get("caBundleConfigMapName")
    assert name, f"{release.urn}: the storage initializer trusts only the system CAs"
    # The controller copies `cabundle.crt` of this ConfigMap in its own namespace into every model
    # namespace (cabundle_configmap_reconciler.go); any other key is an error there.
    config_map = _config_map(plan, release.inputs["namespace"], name)
    assert config_map.inputs["data"] == {"cabundle.crt": _ca_pem(plan)}, config_map.urn
    assert depends_on(plan, release, config_map), f"{release.urn} does not wait for {config_map.urn}"
    assert (storage["s3"]["useHttps"], storage["s3"]["verifySSL"]) == ("1", "1"), release.urn
