"""The example apps: every overlay renders, passes every check, and keeps the platform contract."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from infra.contract import ENVIRONMENTS as ENVS
from infra.contract import SLO_P99_LABEL
from mlplat import validate
from tests.support.validate_helpers import REPO, kustomize, run_json

APPS = {"iris-classifier": "core-ml", "churn-gbm": "growth", "llm-chat": "genai"}
VERSIONS = {
    "iris-classifier": {"dev": "2", "staging": "2", "prod": "1"},
    "churn-gbm": {"dev": "2", "staging": "2", "prod": "1"},
    "llm-chat": {"dev": "1", "staging": "1", "prod": "1"},
}


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], list[dict[str, Any]]]:
    return {(app, env): kustomize(REPO / "apps" / app / "overlays" / env) for app in APPS for env in ENVS}


@pytest.fixture
def docs(rendered: dict[tuple[str, str], list[dict[str, Any]]], app: str, env: str) -> list[dict[str, Any]]:
    """What the overlay of the test's `app` for its `env` renders."""
    return rendered[(app, env)]


def test_every_app_passes_every_env_with_the_checkov_scan(capsys: pytest.CaptureFixture[str]) -> None:
    code = validate.main(["--format", "json"])
    report = yaml.safe_load(capsys.readouterr().out)
    assert report["findings"] == [], report["findings"]
    assert code == 0
    overlays = [f"apps/{a}/overlays/{e}" for a in APPS for e in ENVS]
    pipelines = [f"apps/{a}/training" for a in APPS if (REPO / "apps" / a / "training").is_dir()]
    assert sorted(report["targets"]) == sorted(overlays + pipelines)
    assert not any("checkov" in note for note in report["notes"]), report["notes"]


@pytest.mark.parametrize("app", APPS)
def test_base_is_deployable_alone(app: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(capsys, str(REPO / "apps" / app / "base"), "--env", "dev")
    assert (code, report["findings"]) == (0, [])


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("env", ENVS)
def test_overlay_keeps_the_contract(docs: list[dict[str, Any]], app: str, env: str) -> None:
    (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
    meta, predictor = isvc["metadata"], isvc["spec"]["predictor"]
    version = VERSIONS[app][env]
    assert meta["namespace"] == f"models-{APPS[app]}"
    # The SLO label is optional and MLP-SLO-TIER judges its value.
    labels = {k: v for k, v in meta["labels"].items() if k != SLO_P99_LABEL}
    assert labels == {"mlplat/team": APPS[app], "mlplat/model": app, "mlplat/environment": env}
    assert meta["annotations"]["mlplat/model-version"] == version
    assert predictor["model"]["storageUri"] == f"s3://mlplat-models/{app}/{version}"
    assert predictor["minReplicas"] >= (2 if env == "prod" else 1)
    assert all(d["metadata"]["labels"]["mlplat/environment"] == env for d in docs)
    assert not any(d["kind"] == "Service" and d["spec"].get("type") == "LoadBalancer" for d in docs)
    context = predictor["model"]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
    assert predictor["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(predictor["model"]["resources"]) == {"requests", "limits"}


@pytest.mark.parametrize("env", ENVS)
def test_gpu_app_targets_the_gpu_pool(rendered: dict[Any, Any], env: str) -> None:
    (isvc,) = [d for d in rendered[("llm-chat", env)] if d["kind"] == "InferenceService"]
    predictor = isvc["spec"]["predictor"]
    resources = predictor["model"]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["nodeSelector"] == {"mlplat/gpu-pool": "gpu-small"}
    assert {
        "key": "nvidia.com/gpu",
        "operator": "Equal",
        "value": "true",
        "effect": "NoSchedule",
    } in predictor["tolerations"]
    assert predictor["model"]["runtime"] == "kserve-huggingfaceserver"
    assert "--backend=vllm" in predictor["model"]["args"]


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("env", ENVS)
def test_rendered_model_namespace_is_restricted_and_denied_by_default(
    docs: list[dict[str, Any]], app: str
) -> None:
    namespace = f"models-{APPS[app]}"
    (ns,) = [d for d in docs if d["kind"] == "Namespace"]
    assert ns["metadata"]["name"] == namespace
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert all(p["metadata"]["namespace"] == namespace for p in policies.values())
    assert policies["default-deny-all"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    peers = {
        name: [
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            if "namespaceSelector" in peer
            else peer["ipBlock"]["cidr"]
            for rule in p["spec"].get("ingress", []) + p["spec"].get("egress", [])
            for peer in rule.get("from", []) + rule.get("to", [])
        ]
        for name, p in policies.items()
        if name != "default-deny-all"
    }
    assert peers == {
        # The platform Gateway's Envoy proxies (tests/infra/services/test_model_ingress.py evaluates who that is).
        "allow-ingress-from-gateway": ["envoy-gateway-system"],
        "allow-ingress-from-monitoring": ["monitoring"],
        "allow-egress-dns": ["kube-system"],
        "allow-egress-model-store": ["minio"],
        # Logged apps (apps/components/inference-logging): KServe's agent port 9081.
        **(
            {"allow-ingress-to-inference-logger": ["envoy-gateway-system", "monitoring"]}
            if (REPO / "apps" / app / "base" / "monitoring.yaml").exists()
            else {}
        ),
    }
    store = policies["allow-egress-model-store"]["spec"]["egress"][0]["ports"]
    assert store == [{"protocol": "TCP", "port": 9000}]
    gateway = policies["allow-ingress-from-gateway"]["spec"]["ingress"][0]["ports"]
    assert gateway == [{"protocol": "TCP", "port": 8080}]


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("env", ENVS)
def test_namespace_gets_model_store_credentials_from_vault(docs: list[dict[str, Any]], app: str) -> None:
    """Component model-store-access (docs/runbooks/model-namespaces.md): VSO writes model-store-s3."""
    namespace = f"models-{APPS[app]}"
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
    predictor_sa = objects[("ServiceAccount", isvc["spec"]["predictor"]["serviceAccountName"])]
    assert predictor_sa["secrets"] == [{"name": "model-store-s3"}]
    assert predictor_sa["automountServiceAccountToken"] is False
    assert predictor_sa["metadata"]["annotations"] == {
        "serving.kserve.io/s3-endpoint": "minio.minio.svc.cluster.local:9000",
        "serving.kserve.io/s3-usehttps": "1",
        "serving.kserve.io/s3-verifyssl": "1",
        "serving.kserve.io/s3-region": "us-east-1",
    }
    vso_sa = objects[("ServiceAccount", "vault-secrets")]
    assert vso_sa["metadata"]["namespace"] == namespace and "secrets" not in vso_sa
    auth = objects[("VaultAuth", "vault")]
    assert auth["metadata"]["namespace"] == namespace
    assert auth["spec"]["kubernetes"] == {
        "role": namespace,
        "serviceAccount": "vault-secrets",
        "audiences": ["vault"],
    }
    sync = objects[("VaultStaticSecret", "model-store-s3")]
    assert sync["metadata"]["namespace"] == namespace
    spec = sync["spec"]
    assert (spec["vaultAuthRef"], spec["mount"], spec["type"], spec["path"], spec["destination"]["name"]) == (
        "vault",
        "kv",
        "kv-v2",
        "platform/minio/model-reader",
        "model-store-s3",
    )


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("env", ENVS)
def test_model_version_patch_holds_only_the_version(app: str, env: str) -> None:
    """The promote/rollback contract: name, the version annotation and storageUri, nothing else."""
    patch = yaml.safe_load((REPO / "apps" / app / "overlays" / env / "model-version.yaml").read_text())
    version = VERSIONS[app][env]
    assert patch == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": app, "annotations": {"mlplat/model-version": version}},
        "spec": {"predictor": {"model": {"storageUri": f"s3://mlplat-models/{app}/{version}"}}},
    }


def test_no_overlay_copies_a_shared_patch() -> None:
    """Shared changes live in apps/components; overlays hold only their version patch (and, in prod, the
    canary and its split while one runs: `mlplat promote --canary` writes them)."""
    for kustomization in (REPO / "apps").glob("*/overlays/*/kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        paths = [p["path"] for p in spec.get("patches", [])]
        assert paths in (["model-version.yaml"], ["model-version.yaml", "canary.yaml", "canary-route.yaml"])
        assert all(re.fullmatch(r"(\.\./){3}components/[a-z-]+", c) for c in spec.get("components", []))
