"""MLP-SHARED-SECRET: the platform's shared credentials reach only the containers the platform configures
(mlplat/validation/shared_secrets.py), with its pass and fail fixtures (tests/fixtures/shared-secrets/<case>/
app.yaml, one mistake each) and the reviewer's two cases on copies of the real apps."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplat import validate
from mlplat.validation import shared_secrets
from tests.support.validate_helpers import REPO, copy_repo, edit, run_json

CASES = REPO / "tests" / "fixtures" / "shared-secrets"
CRDS = REPO.parent / "shared" / "reference" / "crds"
RULE = "MLP-SHARED-SECRET"
ENV_REF = "env/[0]/valueFrom/secretKeyRef/name"
# Each case and the exact key paths its findings name.
EXPECTED = {
    "pass": set(),
    "model-env-logger-s3": {f"spec/predictor/model/{ENV_REF}"},
    "model-envfrom-store-s3": {"spec/predictor/model/envFrom/[0]/secretRef/name"},
    "model-mounts-hash-key": {"spec/predictor/model/volumeMounts/[0]"},
    "transformer-projected-hash-key": {"spec/transformer/containers/[0]/volumeMounts/[0]"},
    "marshaller-impostor": {"spec/predictor/containers/[0]/volumeMounts/[0]"},
    "sidecar-publisher": {f"spec/templates/[0]/sidecars/[0]/{ENV_REF}"},
    "init-container-mlflow": {"spec/templates/[0]/initContainers/[0]/envFrom/[0]/secretRef/name"},
    "script-github-edited": {f"spec/templates/[0]/script/{ENV_REF}"},
    "template-defaults": {f"spec/templateDefaults/container/{ENV_REF}"},
    "pod-spec-patch": {"spec/templates/[0]/podSpecPatch"},
    "s3-artifact-publisher": {
        "spec/templates/[0]/outputs/artifacts/[0]/s3/accessKeySecret/name",
        "spec/templates/[0]/outputs/artifacts/[0]/s3/secretKeySecret/name",
    },
    "cron-evaluate-publisher": {f"spec/workflowSpec/templates/[0]/container/{ENV_REF}"},
    "workflow-volume-sso": {"spec/templates/[0]/container/volumeMounts/[0]"},
    "container-set-mount": {"spec/templates/[0]/containerSet/volumeMounts/[0]"},
    "foreign-image-runs-register": {f"spec/templates/[0]/container/{ENV_REF}"},
    "train-step-publisher": {f"spec/templates/[0]/container/{ENV_REF}"},
    "git-artifact-mlflow": {"spec/templates/[0]/inputs/artifacts/[0]/git/passwordSecret/name"},
    # A holder is the platform's whole container: nothing else in it may run first or load other code.
    "marshaller-post-start": {"spec/predictor/containers/[0]/volumeMounts/[0]"},
    "marshaller-exec-probe": {"spec/predictor/containers/[0]/volumeMounts/[0]"},
    "marshaller-pythonpath": {"spec/predictor/containers/[0]/volumeMounts/[0]"},
    "marshaller-extra-mount": {"spec/predictor/containers/[0]/volumeMounts/[0]"},
    "register-working-dir": {f"spec/templates/[0]/container/{ENV_REF}"},
    "marshaller-shared-process-namespace": {"spec/predictor/shareProcessNamespace"},
    # Argo forms: inline templates, Secret names a parameter fills in, podSpecPatches that hide what they add.
    "inline-step-publisher": {f"spec/templates/[0]/steps/[0]/[0]/inline/container/{ENV_REF}"},
    "inline-dag-task-hash-key": {"spec/templates/[0]/dag/tasks/[0]/inline/container/volumeMounts/[0]"},
    "parameter-secret-name": {f"spec/templates/[0]/container/{ENV_REF}"},
    "pod-spec-patch-parameter": {"spec/templates/[0]/podSpecPatch"},
    "pod-spec-patch-escape": {"spec/templates/[0]/podSpecPatch"},
}


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    """One validate run over every case, without an environment: the pipelines' cases are platform
    objects no model AppProject admits, and this rule does not depend on the environment."""
    out = io.StringIO()
    with redirect_stdout(out):
        validate.main(
            [
                *(str(CASES / c) for c in EXPECTED),
                "--schemas",
                str(CRDS),
                "--format",
                "json",
                "--no-policy-scan",
            ]
        )
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


@pytest.mark.parametrize("case", EXPECTED)
def test_shared_secret_case_yields_exactly_its_findings(corpus: dict[str, Any], case: str) -> None:
    mine = [f for f in corpus["findings"] if f["file"] == f"tests/fixtures/shared-secrets/{case}/app.yaml"]
    assert {f["path"] for f in mine if f["rule"] == RULE} == EXPECTED[case], mine
    assert len([f for f in mine if f["rule"] == RULE]) == len(EXPECTED[case]), mine
    # Each says which credential it is, not only its name.
    assert all(f["line"] and _purpose(f["message"]) for f in mine if f["rule"] == RULE), mine
    # Each case is an object the API server would take: the rule, not the schema, refuses it.
    assert not [f for f in mine if f["rule"] in ("MLP-SCHEMA", "MLP-UNKNOWN-FIELD")], mine


def _purpose(message: str) -> bool:
    """Whether a finding's message says what the Secret it names is for: a named one's purpose, that a
    parameter's can be any, or (a podSpecPatch, which can name any) every one."""
    return (
        any(f"{name!r}" in message and what in message for name, (what, _) in shared_secrets.SHARED.items())
        or shared_secrets.TEMPLATED[0] in message
        or all(name in message for name in shared_secrets.SHARED)
    )


def test_the_reviewers_checkpoint_sidecar_given_the_publisher_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """iris's checkpoint-sync sidecar switched to `model-publisher-s3`, mirroring into churn-gbm's published
    models: the sidecar is refused, the real `register` step holding the same Secret is not."""
    repo = copy_repo(tmp_path)
    template = repo / "apps/iris-classifier/training/workflowtemplate.yaml"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        edit(
            template,
            f"              valueFrom: {{secretKeyRef: {{name: argo-artifacts-iris-classifier-s3, key: {key}}}}}",
            f"              valueFrom: {{secretKeyRef: {{name: model-publisher-s3, key: {key}}}}}",
        )
    edit(
        template,
        '"store/argo-artifacts/iris-classifier/checkpoints/{{workflow.name}}"',
        "store/mlplat-models/churn-gbm/",
    )
    code, report = run_json(
        capsys, "--repo", str(repo), "--schemas", str(CRDS), str(repo / "apps/iris-classifier")
    )
    found = [f for f in report["findings"] if f["rule"] == RULE]
    assert code == 1
    assert {(f["file"], f["path"]) for f in found} == {
        (
            "apps/iris-classifier/training/workflowtemplate.yaml",
            f"spec/templates/[2]/sidecars/[0]/env/[{i}]/valueFrom/secretKeyRef/name",
        )
        for i in (0, 1)
    }, found
    assert all("checkpoint-sync" in f["message"] and "model-publisher-s3" in f["message"] for f in found)


def test_a_model_container_given_the_logger_hash_key_and_store_secrets_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Those Secrets are for KServe's agent, the privacy marshaller and the storage initializer; an MLflow
    pyfunc model runs its own code at load. One finding per reference, each in every environment."""
    repo = copy_repo(tmp_path)
    refs = [
        ("inference-logger-s3", "AWS_ACCESS_KEY_ID"),
        ("inference-log-hash-key", "key"),
        ("model-store-s3", "AWS_ACCESS_KEY_ID"),
    ]
    env = "".join(
        f"        - name: X{i}\n          valueFrom: {{secretKeyRef: {{name: {name}, key: {key}}}}}\n"
        for i, (name, key) in enumerate(refs)
    )
    edit(
        repo / "apps/iris-classifier/base/inferenceservice.yaml",
        "      protocolVersion: v2\n",
        f"      protocolVersion: v2\n      env:\n{env}",
    )
    code, report = run_json(
        capsys, "--repo", str(repo), "--schemas", str(CRDS), str(repo / "apps/iris-classifier")
    )
    found = [f for f in report["findings"] if f["rule"] == RULE]
    assert code == 1
    assert sorted((f["file"], f["path"], f["env"]) for f in found) == [
        (
            "apps/iris-classifier/base/inferenceservice.yaml",
            f"spec/predictor/model/env/[{i}]/valueFrom/secretKeyRef/name",
            "dev,staging,prod",
        )
        for i in range(3)
    ], found


def test_the_reviewers_marshaller_given_a_post_start_hook_in_a_shared_process_namespace_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """churn-gbm's dev overlay (the model team's alone, .github/CODEOWNERS) patches the real privacy
    marshaller with a postStart exec copying the hash key and makes the pod share its process namespace:
    the marshaller no longer holds the key, and the pod may not share its processes while it does."""
    repo = copy_repo(tmp_path)
    edit(
        repo / "apps/churn-gbm/overlays/dev/kustomization.yaml",
        "patches:\n",
        "patches:\n"
        "  - target: {kind: InferenceService}\n"
        "    patch: |-\n"
        "      - op: add\n"
        "        path: /spec/predictor/containers/0/lifecycle\n"
        "        value: {postStart: {exec: {command: [sh, -c, cp /var/run/mlplat/hash-key/key /tmp/k]}}}\n"
        "      - op: add\n"
        "        path: /spec/predictor/shareProcessNamespace\n"
        "        value: true\n",
    )
    code, report = run_json(
        capsys, "--repo", str(repo), "--schemas", str(CRDS), "--env", "dev", str(repo / "apps/churn-gbm")
    )
    found = {(f["path"], f["env"]) for f in report["findings"] if f["rule"] == RULE}
    assert code == 1
    assert found == {
        ("spec/predictor/containers/[0]/volumeMounts/[1]", "dev"),
        ("spec/predictor/shareProcessNamespace", "dev"),
    }, report["findings"]


def test_the_shared_secrets_are_the_names_the_platform_writes() -> None:
    """The rule's names are the Secrets infra/services and apps/components create; a rename there without
    one here would let the renamed Secret through unjudged."""
    from infra.services import argo_workflows, minio, monitoring

    store_access = yaml.safe_load_all((REPO / "apps/components/model-store-access/vault.yaml").read_text())
    (store,) = [d["spec"]["destination"]["name"] for d in store_access if d["kind"] == "VaultStaticSecret"]
    assert set(shared_secrets.SHARED) == {
        store,
        minio.LOGS_WRITER.secret,
        monitoring.INFERENCE_LOG_HASH_KEY_SECRET,
        minio.MODEL_PUBLISHER.secret,
        argo_workflows.MLFLOW_SECRET,
        argo_workflows.GITHUB_SECRET,
        argo_workflows.SSO_SECRET,
    }


def test_the_rule_is_documented_in_the_apps_readme() -> None:
    assert f"| `{RULE}` |" in (REPO / "apps" / "README.md").read_text()


@pytest.mark.parametrize(
    "where",
    [
        {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": ["model-store-s3"]}}}]},
        {"envFrom": [{"secretRef": {"name": {"a": 1}}}]},
        {"volumeMounts": [{"name": "v"}], "volumes": [{"name": "v", "secret": {"secretName": ["x"]}}]},
        {"artifact": {"s3": {"accessKeySecret": {"name": ["model-publisher-s3"]}}}},
    ],
)
def test_a_secret_name_that_is_no_string_is_the_schemas_finding_not_a_crash(where: dict[str, Any]) -> None:
    """A list or mapping where a Secret's name belongs is MLP-SCHEMA's to report; this rule must not stop
    the run on it (validate would exit 2 with an internal error instead of listing the findings)."""
    container = {"name": "c", **{k: v for k, v in where.items() if k in ("env", "envFrom", "volumeMounts")}}
    template = {"name": "t", "container": container, "volumes": where.get("volumes", [])}
    if "artifact" in where:
        template["outputs"] = {"artifacts": [{"name": "a", **where["artifact"]}]}
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "spec": {"templates": [template]},
    }
    assert list(shared_secrets.problems(doc)) == []
