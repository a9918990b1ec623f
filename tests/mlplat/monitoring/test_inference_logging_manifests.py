"""The logged apps as Argo CD would apply them: KServe's logger writes to the logs bucket through the
app's own privacy marshaller on loopback, and the agent port the logger puts in front of the model
(9081) is admitted from the gateway and Prometheus, with no other new flow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.services import minio, monitoring
from mlplat.monitoring import records

REPO = Path(__file__).resolve().parents[3]
CRD = REPO.parent / "shared" / "reference" / "crds" / "kserve" / "serving.kserve.io_inferenceservices.yaml"
LOGGED_APPS = ("iris-classifier", "churn-gbm")
ENVS = ("dev", "staging", "prod")
AGENT_PORT = 9081  # kserve v0.20.0 pkg/constants/constants.go InferenceServiceDefaultAgentPort
AGENT_EMBEDDED_MARSHALLER_PORT = 9083  # kserve v0.20.0 cmd/agent/main.go --log-marshaller-port
PROMETHEUS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}

_rendered: dict[str, list[dict[str, Any]]] = {}


def render(overlay: str) -> list[dict[str, Any]]:
    if overlay not in _rendered:
        out = subprocess.run(
            ["kubectl", "kustomize", str(REPO / overlay)], capture_output=True, text=True, check=True
        ).stdout
        _rendered[overlay] = [d for d in yaml.safe_load_all(out) if d]
    return _rendered[overlay]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def isvc_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "InferenceService")


def sidecar(predictor: dict[str, Any]) -> dict[str, Any]:
    containers = predictor.get("containers") or []
    assert len(containers) == 1, f"containers: {[c.get('name') for c in containers]}"
    return containers[0]


def arg(container: dict[str, Any], flag: str) -> str:
    args = container["args"]
    assert flag in args, f"{container['name']}: no {flag} in {args}"
    return str(args[args.index(flag) + 1])


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("app", LOGGED_APPS)
def test_logged_apps_write_to_the_logs_bucket_only_through_their_marshaller(app: str, env: str) -> None:
    docs = render(f"apps/{app}/overlays/{env}")
    isvc = isvc_of(docs)
    where = f"{app}/{env} {isvc['metadata']['name']}"
    logger = isvc["spec"]["predictor"].get("logger")
    assert logger, f"{where}: no spec.predictor.logger: nothing is logged"
    assert logger["mode"] == "all" and logger["url"] == f"s3://{minio.LOGS_BUCKET}", f"{where}: {logger}"
    storage = logger["storage"]
    # An empty path makes the agent store nothing (cmd/agent/main.go); path, parameters and key are
    # all required once storage is set (validateLogger).
    assert storage["path"] and storage["parameters"] and storage["key"], f"{where}: {storage}"
    assert records.VERSION_ANNOTATION in logger["metadataAnnotations"], f"{where}: records without a version"
    # The agent's credentials: a ServiceAccount holding only the write-only user's Secret, from Vault.
    account = one(docs, "ServiceAccount", storage["serviceAccountName"])
    assert account["secrets"] == [{"name": minio.LOGS_WRITER.secret}], f"{where}: {account['secrets']}"
    assert account["automountServiceAccountToken"] is False, where
    sync = one(docs, "VaultStaticSecret", minio.LOGS_WRITER.secret)
    assert sync["spec"]["path"] == minio.LOGS_WRITER.vault_path, f"{where}: {sync['spec']}"
    # The marshaller: the pod's loopback, on the port the sidecar listens on.
    marshaller = sidecar(isvc["spec"]["predictor"])
    url = logger["marshallerUrl"]
    assert url.startswith("http://127.0.0.1:"), f"{where}: marshaller reachable off the pod: {url}"
    port = int(url.removeprefix("http://127.0.0.1:").split("/")[0])
    assert arg(marshaller, "--host") == "127.0.0.1" and int(arg(marshaller, "--port")) == port, where
    assert port not in (AGENT_PORT, AGENT_EMBEDDED_MARSHALLER_PORT), f"{where}: port {port} is the agent's"


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("app", LOGGED_APPS)
def test_the_marshaller_applies_the_apps_own_policy_and_the_environments_key(app: str, env: str) -> None:
    docs = render(f"apps/{app}/overlays/{env}")
    predictor = isvc_of(docs)["spec"]["predictor"]
    marshaller = sidecar(predictor)
    mounts = {m["mountPath"]: m["name"] for m in marshaller["volumeMounts"]}
    volumes = {v["name"]: v for v in predictor["volumes"]}
    contract = Path(arg(marshaller, "--contract"))
    policy_volume = volumes[mounts[str(contract.parent)]]
    policy = one(docs, "ConfigMap", policy_volume["configMap"]["name"])
    # Generated from the contract file itself: what the marshaller enforces is what git says.
    assert policy["data"][contract.name] == (REPO / "apps" / app / "base" / "monitoring.yaml").read_text()
    key = Path(arg(marshaller, "--hash-key-file"))
    key_volume = volumes[mounts[str(key.parent)]]
    # The marshaller runs as a non-root user and the pod sets no fsGroup: the files stay root's, so
    # a key readable by its owner only could not be read and a hashing app would never start.
    fs_group = (predictor.get("securityContext") or {}).get("fsGroup")
    mode = key_volume["secret"].get("defaultMode", 0o644)
    assert mode & 0o004 or (fs_group is not None and mode & 0o040), f"{app}/{env}: key mode {oct(mode)}"
    sync = one(docs, "VaultStaticSecret", key_volume["secret"]["secretName"])
    assert sync["spec"]["path"] == monitoring.INFERENCE_LOG_HASH_KEY_VAULT_PATH, sync["spec"]


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("app", LOGGED_APPS)
def test_agent_port_is_admitted_from_the_gateway_and_nothing_else_new(app: str, env: str) -> None:
    logged = render(f"apps/{app}/overlays/{env}")
    # The same app without logging: its policies are what every model app has.
    unlogged = render(f"apps/llm-chat/overlays/{env}")
    before = {d["metadata"]["name"]: d["spec"] for d in unlogged if d["kind"] == "NetworkPolicy"}
    after = {d["metadata"]["name"]: d["spec"] for d in logged if d["kind"] == "NetworkPolicy"}
    new = {name: spec for name, spec in after.items() if before.get(name) != spec}
    assert list(new) == ["allow-ingress-to-inference-logger"], f"{app}/{env}: changed {sorted(new)}"
    spec = new["allow-ingress-to-inference-logger"]
    assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec, spec
    assert spec["ingress"] == [
        {"from": [*inference_gateway(after), PROMETHEUS], "ports": [{"protocol": "TCP", "port": AGENT_PORT}]}
    ], spec


def inference_gateway(policies: dict[str, Any]) -> list[dict[str, Any]]:
    """The peers the model server's own port (8080) is admitted from: the inference Gateway's proxies."""
    (rule,) = policies["allow-ingress-from-gateway"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}], rule
    return list(rule["from"])


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("app", LOGGED_APPS)
def test_another_gateways_proxies_do_not_reach_the_logger_port(app: str, env: str) -> None:
    policies = {
        d["metadata"]["name"]: d["spec"]
        for d in render(f"apps/{app}/overlays/{env}")
        if d["kind"] == "NetworkPolicy"
    }
    (rule,) = policies["allow-ingress-to-inference-logger"]["ingress"]
    proxies = [peer for peer in rule["from"] if peer != PROMETHEUS]
    # 9081 is where the predictor Service sends inference traffic once the logger is on: it must be
    # as closed as 8080 was, or any Gateway's proxies (a public one) would reach the model.
    assert proxies == inference_gateway(policies), f"{app}/{env}: 9081 admits {proxies}"


def test_every_logger_field_is_one_kserve_v0_20_serves() -> None:
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    predictor = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["predictor"]
    schema = predictor["properties"]["logger"]["properties"]
    logger = isvc_of(render("apps/churn-gbm/overlays/prod"))["spec"]["predictor"]["logger"]
    assert set(logger) <= set(schema), sorted(set(logger) - set(schema))
    assert set(logger["storage"]) <= set(schema["storage"]["properties"]), logger["storage"]
    assert logger["mode"] in schema["mode"]["enum"], schema["mode"]


# kserve/kserve v0.20.0 pkg/constants/constants.go: where the agent injector mounts `logger.caBundle`
# (LoggerCaCertMountPath L105), the CA ConfigMap the controller writes into every model namespace
# (DefaultGlobalCaBundleConfigMapName L517) and its one key (DefaultCaBundleFileName L514).
AGENT_CA_MOUNT = "/etc/tls/logger"
MODEL_NAMESPACE_CA_CONFIGMAP = "global-ca-bundle"
CA_BUNDLE_FILE = "cabundle.crt"
S3_ANNOTATION = "serving.kserve.io/s3-"  # pkg/credentials/s3/s3_secret.go L62-70


def logger_secret_annotations(app: str, env: str) -> dict[str, str]:
    sync = one(render(f"apps/{app}/overlays/{env}"), "VaultStaticSecret", "inference-logger-s3")
    annotations: dict[str, str] = sync["spec"]["destination"]["annotations"]
    return annotations


def kserve_logger_config(plan: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `logger` entry the platform writes into KServe's inferenceservice-config, and its resource."""
    (patch,) = [
        r
        for r in plan["resources"]
        if r["type"] == "kubernetes:core/v1:ConfigMapPatch"
        and r["inputs"]["metadata"]
        == {**r["inputs"]["metadata"], "name": "inferenceservice-config", "namespace": "kserve"}
    ]
    return json.loads(patch["inputs"]["data"]["logger"]), patch


@pytest.mark.parametrize("env", ENVS)
def test_logger_uploads_verify_minio_against_the_internal_ca(env: str, offline_plan: Any) -> None:
    plan = offline_plan(env)
    logger, patch = kserve_logger_config(plan)
    # The agent gets the CA file only when `logger.caBundle` names a ConfigMap of the model's namespace;
    # the controller writes `global-ca-bundle` there only while storageInitializer names the CA.
    assert logger["caBundle"] == MODEL_NAMESPACE_CA_CONFIGMAP, f"{patch['urn']}: {logger}"
    (release,) = [r for r in plan["resources"] if r["urn"] in patch["dependsOn"]]
    assert release["inputs"]["values"]["kserve"]["storage"]["caBundleConfigMapName"], release["urn"]
    # The chart owns the key too: without force the patch fails on the first `pulumi up`.
    assert patch["inputs"]["metadata"]["annotations"]["pulumi.com/patchForce"] == "true", patch["urn"]
    for app in LOGGED_APPS:
        annotations = logger_secret_annotations(app, env)
        # AWS_CA_BUNDLE for the agent's aws-sdk-go session: the mounted CA, and verification on.
        assert annotations[f"{S3_ANNOTATION}cabundle"] == f"{AGENT_CA_MOUNT}/{CA_BUNDLE_FILE}", annotations
        assert (
            annotations[f"{S3_ANNOTATION}verifyssl"] == "1" and annotations[f"{S3_ANNOTATION}usehttps"] == "1"
        )


def test_the_patched_logger_config_keeps_the_charts_agent(reference: Path, offline_plan: Any) -> None:
    values = yaml.safe_load((reference / "charts" / "kserve-resources" / "values.yaml").read_text())
    logger, patch = kserve_logger_config(offline_plan("dev"))
    # The patch replaces the chart's whole `logger` string: its agent image must stay the chart's.
    assert logger["image"] == f"{values['kserve']['agent']['image']}:{values['kserve']['version']}", patch[
        "urn"
    ]


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("app", LOGGED_APPS)
def test_logger_agent_addresses_the_logs_bucket_by_path_not_by_host_name(app: str, env: str) -> None:
    # kserve v0.20.0 pkg/agent/storage/utils.go L215-229: S3ForcePathStyle is !useVirtualBucket, which
    # is true unless S3_USER_VIRTUAL_BUCKET is "false"; MinIO's in-cluster name has no bucket subdomains.
    annotations = logger_secret_annotations(app, env)
    assert annotations.get(f"{S3_ANNOTATION}usevirtualbucket") == "false", f"{app}/{env}: {annotations}"


def test_a_kserve_chart_upgrade_re_applies_the_logger_ca(offline_plan: Any) -> None:
    """Helm resets `logger` to the chart's (no caBundle) on every upgrade; a patch whose inputs did not
    change is not applied again, and new logged pods crash on the missing CA file. The patch's inputs
    carry the release's revision, which every upgrade increments."""
    from infra.services.kserve import RELEASE_REVISION_ANNOTATION

    _, patch = kserve_logger_config(offline_plan("dev"))
    # The mock engine reports a fresh install as revision 1 (pulumi_kubernetes ReleaseStatus.revision).
    assert patch["inputs"]["metadata"]["annotations"][RELEASE_REVISION_ANNOTATION] == "1", patch["urn"]
