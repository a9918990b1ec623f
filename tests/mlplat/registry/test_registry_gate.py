"""The registry gate against a real MLflow server: one passing case, one failing case per rule."""

from __future__ import annotations

import time

import pytest

from mlplat import example_models, registry_gate
from mlplat.findings import RenderedDoc
from mlplat.mlflow_server import free_port
from mlplat.promote import REPO, render_inference_service, with_version

from .conftest import APP, Registry


def rendered(env: str, version: str | None = None, storage_uri: str | None = None) -> RenderedDoc:
    """The real app rendered for `env`, optionally with another version (as promotion proposes)."""
    doc = render_inference_service(REPO, APP, env)
    if version is None:
        return doc
    return with_version(doc, version, storage_uri or f"s3://mlplat-models/{APP}/{version}")


def rules(findings: list[registry_gate.Finding]) -> list[str]:
    return [f.rule for f in findings]


@pytest.mark.slow
@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_committed_overlays_pass(registry: Registry, env: str) -> None:
    assert registry_gate.check([rendered(env)], registry.url) == []


@pytest.mark.slow
def test_registration_recorded_evaluation_and_reuses(registry: Registry) -> None:
    assert [(v.version, v.reused) for v in registry.first_run] == [("1", False), ("2", False)]
    assert all(v.value is not None and v.value >= 0.9 for v in registry.first_run)
    again = example_models.register_app(registry.url, APP, registry.store)
    assert [(v.version, v.reused, v.value) for v in again] == [
        (v.version, True, round(v.value or 0, 4)) for v in registry.first_run
    ]


@pytest.mark.slow
def test_missing_model(registry: Registry) -> None:
    doc = rendered("dev")
    doc.doc["metadata"]["labels"]["mlplat/model"] = "no-such-model"
    findings = registry_gate.check([doc], registry.url)
    assert rules(findings) == ["MLP-REGISTRY-MODEL"]
    assert "no-such-model" in findings[0].message and findings[0].resource == doc.ref


@pytest.mark.slow
def test_missing_version(registry: Registry) -> None:
    findings = registry_gate.check([rendered("dev", "99")], registry.url)
    assert rules(findings) == ["MLP-REGISTRY-VERSION"]
    assert findings[0].file == f"apps/{APP}/overlays/dev/model-version.yaml"


@pytest.mark.slow
def test_storage_uri_must_be_the_registered_source(registry: Registry) -> None:
    findings = registry_gate.check([rendered("dev", "2", f"s3://mlplat-models/{APP}/1")], registry.url)
    assert rules(findings) == ["MLP-REGISTRY-STORAGE-URI"]
    assert f"s3://mlplat-models/{APP}/2" in findings[0].fix


@pytest.mark.slow
def test_version_without_evaluation(registry: Registry) -> None:
    findings = registry_gate.check([rendered("dev", "3")], registry.url)
    assert rules(findings) == ["MLP-REGISTRY-EVALUATION"]
    assert "mlplat.evaluation=passed" in findings[0].message


@pytest.mark.slow
def test_threshold_is_per_environment(registry: Registry) -> None:
    assert registry_gate.check([rendered("dev", "4")], registry.url) == []  # 0.82 >= dev 0.8
    findings = registry_gate.check([rendered("staging", "4")], registry.url)
    assert rules(findings) == ["MLP-REGISTRY-EVALUATION"]
    assert "below the staging threshold 0.85" in findings[0].message


@pytest.mark.slow
def test_prod_needs_the_approval_alias(registry: Registry) -> None:
    findings = registry_gate.check([rendered("prod", "2")], registry.url)
    assert rules(findings) == ["MLP-REGISTRY-APPROVAL"]
    assert "(v1 does)" in findings[0].message and findings[0].env == "prod"


@pytest.mark.slow
def test_without_env_the_environment_label_decides(registry: Registry) -> None:
    doc = rendered("prod", "2")
    unlabelled_env = RenderedDoc(None, doc.target, doc.source_file, doc.doc)
    assert rules(registry_gate.check([unlabelled_env], registry.url)) == ["MLP-REGISTRY-APPROVAL"]


def test_unreachable_registry_fails_fast() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(registry_gate.RegistryUnavailable, match=url):
        registry_gate.check([rendered("dev")], url)
    assert time.monotonic() - start < 3


@pytest.mark.parametrize("kind", ["Namespace", "HTTPRoute", "ConfigMap"])  # sorting after and before
def test_only_inference_services_are_asked_about(kind: str) -> None:
    other = RenderedDoc("dev", "x", "x.yaml", {"kind": kind, "metadata": {"name": "a"}})
    assert registry_gate.check([other], "http://127.0.0.1:9") == []


def test_malformed_evaluation_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for env in ("dev", "staging", "prod"):  # the app deploys to all three
        (tmp_path / "apps" / APP / "overlays" / env).mkdir(parents=True)
    (tmp_path / "apps" / APP / "evaluation.yaml").write_text("metric: accuracy\nthresholds: {dev: 0.8}\n")
    with pytest.raises(registry_gate.EvaluationFileError, match="staging, prod"):
        registry_gate.load_evaluation(APP, tmp_path)


@pytest.mark.parametrize("app", ["iris-classifier", "churn-gbm", "llm-chat"])
def test_committed_evaluation_files_load(app: str) -> None:
    evaluation = registry_gate.load_evaluation(app)
    assert evaluation.metric is None or evaluation.thresholds["prod"] >= evaluation.thresholds["dev"]
