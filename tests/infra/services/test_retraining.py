"""Argo Workflows and Argo Events in the plan of every environment (README "Retraining").

Assertions are on what the engine would receive (tests/support/harness.py records every
registration); each message names the URN.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import (
    RETRAINING_ENVIRONMENT,
    ArgoWorkflowsConfig,
    ConfigError,
    OidcConfig,
    load_stack_config,
)
from infra.contract import ENVIRONMENTS, MODEL_STORE_URI
from infra.services import argo_events, argo_workflows, minio, monitoring
from infra.services.chart import PLATFORM
from mlplat import model_store, safe_yaml
from tests.support.harness import REPO, Plan, Registered

WORKFLOW_KINDS = ("WorkflowTemplate", "CronWorkflow")


def _apps_with_pipelines() -> list[str]:
    return sorted(p.parent.parent.name for p in REPO.glob("apps/*/training/kustomization.yaml"))


def test_every_cpu_app_has_a_pipeline() -> None:
    assert {"iris-classifier", "churn-gbm"} <= set(_apps_with_pipelines())


def test_the_workflow_ui_never_signs_in_as_the_server(retraining_plan: Plan) -> None:
    r = retraining_plan.releases()["argo-workflows"]
    server = r.inputs["values"]["server"]
    assert "server" not in server["authModes"], f"{r.urn}: auth mode `server` hands out the UI's own account"
    assert server["authModes"] in (["client"], ["sso"]), r.urn


def test_a_ui_with_sso_takes_sso_only_and_maps_groups_to_accounts() -> None:
    settings = ArgoWorkflowsConfig(
        enabled=True, sso=OidcConfig(issuer="https://issuer.invalid", client_id="argo")
    )
    server = argo_workflows.computed_values(settings, ())["server"]
    assert server["authModes"] == ["sso"], server
    assert server["sso"]["enabled"] is True and server["sso"]["rbac"]["enabled"] is True, server


def _artifact_repository(retraining_plan: Plan, template: Registered) -> dict[str, Any]:
    """The S3 artifact repository a WorkflowTemplate's `artifactRepositoryRef` resolves to in the plan:
    key `<key>` of the ConfigMap the program writes in the pipeline's namespace (the controller's default
    ConfigMap name: argoproj/argo-workflows v4.0.6 workflow/artifactrepositories/artifactrepositories.go)."""
    ref = template.inputs["spec"].get("artifactRepositoryRef")
    assert ref, f"{template.urn}: names no artifact repository"
    namespace = template.inputs["metadata"]["namespace"]
    configmaps = [
        c
        for c in retraining_plan.of_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"]["namespace"] == namespace
        and c.inputs["metadata"]["name"] == ref.get("configMap", "artifact-repositories")
    ]
    assert configmaps, f"{template.urn}: no ConfigMap {ref} in {namespace}"
    data = configmaps[0].inputs["data"]
    assert ref["key"] in data, f"{configmaps[0].urn}: no key {ref['key']!r} for {template.urn}"
    return dict(yaml.safe_load(data[ref["key"]])["s3"])


def _templates(retraining_plan: Plan) -> list[Registered]:
    templates = retraining_plan.of_type("kubernetes:argoproj.io/v1alpha1:WorkflowTemplate")
    assert templates, f"{retraining_plan.env}: no pipelines in the plan"
    return templates


def test_workflow_artifacts_go_to_minio_over_verified_tls(retraining_plan: Plan) -> None:
    syncs = {
        (s.inputs["metadata"]["namespace"], s.inputs["metadata"]["name"]): s
        for s in retraining_plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret")
    }
    for r in _templates(retraining_plan):
        s3 = _artifact_repository(retraining_plan, r)
        assert s3["insecure"] is False, f"{r.urn}: artifacts over plain http"
        assert s3["endpoint"] == minio.ENDPOINT.removeprefix("https://"), r.urn
        assert s3["bucket"] == minio.WORKFLOW_ARTIFACTS_BUCKET, r.urn
        ca = s3["caSecret"]
        secret = next(
            s
            for s in retraining_plan.of_type("kubernetes:core/v1:Secret")
            if s.inputs["metadata"]["name"] == ca["name"]
            and s.inputs["metadata"]["namespace"] == argo_workflows.NAMESPACE
        )
        assert secret.inputs["stringData"][ca["key"]], f"{secret.urn}: no CA certificate under {ca['key']}"
        # The artifact user's key reaches the namespace from Vault, not from the chart.
        for name in (
            s3["accessKeySecret"]["name"],
            argo_workflows.MLFLOW_SECRET,
            argo_workflows.GITHUB_SECRET,
        ):
            assert (argo_workflows.NAMESPACE, name) in syncs, (
                f"{r.urn}: Secret {name} is not synced from Vault"
            )


def _lists(policy: dict[str, Any], bucket: str, prefix: str) -> bool:
    """Whether a MinIO policy lets its user list `prefix` of `bucket`: s3:ListBucket on the bucket,
    unconditioned or with a `StringLike` `s3:prefix` condition matching it (the chart passes a
    condition's object through as JSON text, minio/minio 43a74029 helm/minio/templates/_helper_policy.tpl)."""
    for st in policy["statements"]:
        if "s3:ListBucket" not in st["actions"] or f"arn:aws:s3:::{bucket}" not in st["resources"]:
            continue
        conditions = st.get("conditions") or []
        if not conditions:
            return True
        for condition in conditions:
            for operator, text in condition.items():
                patterns = json.loads("{" + text + "}").get("s3:prefix", [])
                if operator == "StringLike" and any(fnmatch.fnmatchcase(prefix, p) for p in patterns):
                    return True
    return False


def test_one_apps_pipeline_cannot_read_or_overwrite_another_apps_artifacts(retraining_plan: Plan) -> None:
    """Every pipeline runs in one namespace; with one MinIO user for the artifact bucket, any app's step
    could read or overwrite another app's training data, checkpoints and outputs. Each pipeline's
    artifact repository must key its objects under `<app>/`, as a user that reaches that prefix only,
    and the pipeline's own steps (fetch, the checkpoint sidecar) must mount no other app's Secret."""
    syncs = {
        (s.inputs["metadata"]["namespace"], s.inputs["metadata"]["name"]): s.inputs["spec"]["path"]
        for s in retraining_plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret")
    }
    values = retraining_plan.releases()["minio"].inputs["values"]
    bucket = minio.WORKFLOW_ARTIFACTS_BUCKET
    apps = _apps_with_pipelines()
    assert len(apps) > 1, "one pipeline: nothing to keep apart"
    vault_policy = (REPO / "platform/vault/policies/argo-workflows.hcl").read_text()
    for r in _templates(retraining_plan):
        app = r.inputs["metadata"]["labels"]["mlplat/model"]
        s3 = _artifact_repository(retraining_plan, r)
        assert s3["keyFormat"].startswith(f"{app}/"), f"{r.urn}: keys {s3['keyFormat']!r} outside {app}/"
        secret = s3["accessKeySecret"]["name"]
        assert s3["secretKeySecret"]["name"] == secret, r.urn
        artifact_secrets = {n for n in _secret_refs(r.inputs["spec"]) if n.startswith("argo-artifacts")}
        assert artifact_secrets == {secret}, f"{r.urn}: steps mount {artifact_secrets}, not {secret} only"
        path = syncs[(argo_workflows.NAMESPACE, secret)]
        assert fnmatch.fnmatchcase(f"kv/data/{path}", "kv/data/platform/minio/argo-artifacts/*"), path
        assert 'path "kv/data/platform/minio/argo-artifacts/*"' in vault_policy, vault_policy
        user_secret = next(name for (ns, name), p in syncs.items() if ns == minio.NAMESPACE and p == path)
        user = next(u for u in values["users"] if u["existingSecret"] == user_secret)
        policy = next(p for p in values["policies"] if p["name"] == user["policy"])
        for other in apps:
            key = f"arn:aws:s3:::{bucket}/{other}/datasets/train.csv"
            mine = other == app
            for action in ("s3:GetObject", "s3:PutObject"):
                assert _allows(policy, action, key) is mine, (
                    f"{r.urn}: MinIO user of {secret} {'may not' if mine else 'may'} {action} {key}"
                )
            assert _lists(policy, bucket, f"{other}/checkpoints/") is mine, (
                f"{r.urn}: MinIO user of {secret} {'may not' if mine else 'may'} list {other}/"
            )
        assert not any("Delete" in a for st in policy["statements"] for a in st["actions"]), r.urn


def test_a_pipeline_without_its_own_repository_has_no_bucket_wide_default_to_fall_back_to(
    retraining_plan: Plan,
) -> None:
    """Without `artifactRepositoryRef` the controller uses the namespace's default repository, then its
    own (argoproj/argo-workflows v4.0.6 workflow/artifactrepositories/artifactrepositories.go): if
    either held bucket-wide credentials, a pipeline that omits the ref would silently reach every app's
    artifacts."""
    r = retraining_plan.releases()["argo-workflows"]
    assert "artifactRepository" not in r.inputs["values"], f"{r.urn}: the controller has a default repository"
    for c in retraining_plan.of_type("kubernetes:core/v1:ConfigMap"):
        annotations = c.inputs["metadata"].get("annotations") or {}
        assert "workflows.argoproj.io/default-artifact-repository" not in annotations, (
            f"{c.urn}: a default artifact repository for pipelines that name none"
        )
    values = retraining_plan.releases()["minio"].inputs["values"]
    wide = [
        p["name"]
        for p in values["policies"]
        if _allows(p, "s3:GetObject", f"arn:aws:s3:::{minio.WORKFLOW_ARTIFACTS_BUCKET}/any-app/x")
    ]
    assert not wide, f"MinIO policies reaching every app's artifacts: {wide}"


def _secret_refs(value: object) -> set[str]:
    """The Secret names a manifest reads (`secretKeyRef`, a git artifact's user and token)."""
    if isinstance(value, dict):
        found = {str(v["name"]) for k, v in value.items() if k.endswith(("secretKeyRef", "Secret"))}
        return found.union(*(_secret_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_secret_refs(v) for v in value))
    return set()


def test_pipelines_register_as_their_own_mlflow_user_never_the_admin(retraining_plan: Plan) -> None:
    """A pipeline pod with MLflow's admin password could grant itself anything and set the owner's
    `approved` alias; it gets its own account, generated and then owned by Vault."""
    syncs = {
        s.inputs["metadata"]["name"]: s
        for s in retraining_plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret")
        if s.inputs["metadata"]["namespace"] == argo_workflows.NAMESPACE
    }
    paths = {name: s.inputs["spec"]["path"] for name, s in syncs.items()}
    assert not [n for n, p in paths.items() if p.startswith("platform/mlflow/")], (
        f"{retraining_plan.env}: namespace {argo_workflows.NAMESPACE} gets MLflow's own credentials: {paths}"
    )
    templates = [
        r for r in retraining_plan.resources if r.type == "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate"
    ]
    for r in templates:
        read = _secret_refs(r.inputs["spec"])
        assert read <= set(syncs) | {argo_workflows.CA_SECRET}, (
            f"{r.urn} reads unsynced Secrets {read - set(syncs)}"
        )
        assert argo_workflows.MLFLOW_SECRET in read, f"{r.urn} does not register as the pipelines' account"
    seeded = next(
        s
        for s in retraining_plan.of_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"]["name"] == argo_workflows.MLFLOW_SECRET
        and s.inputs["metadata"]["namespace"] == argo_workflows.NAMESPACE
    )
    assert seeded.inputs["stringData"]["MLFLOW_TRACKING_USERNAME"] == "retrain-pipeline", seeded.urn
    assert seeded.inputs["stringData"]["MLFLOW_TRACKING_PASSWORD"], f"{seeded.urn}: no generated password"
    vault_path = "platform/argo-workflows/mlflow"  # pragma: allowlist secret (a Vault path, no value)
    assert paths[argo_workflows.MLFLOW_SECRET] == vault_path, paths
    policy = (REPO / "platform/vault/policies/argo-workflows.hcl").read_text()
    assert "platform/mlflow/" not in policy, "Vault role argo-workflows may read MLflow's own credentials"


def _register_step(template: dict[str, Any]) -> dict[str, Any]:
    return next(
        t["container"]
        for t in template["templates"]
        if (t.get("container") or {}).get("args", [""])[0] == "register"
    )


def test_the_register_step_can_upload_the_version_it_registers_to_the_model_store(
    retraining_plan: Plan,
) -> None:
    """On the cluster `register` puts the model at s3://mlplat-models/<app>/<N>/ before MLflow names it
    (mlplat/retrain/publish.py). Without a MinIO user that may write that bucket, its key synced from
    Vault into the pipelines' namespace, every run stopped at `register`."""
    syncs = {
        (s.inputs["metadata"]["namespace"], s.inputs["metadata"]["name"]): s.inputs["spec"]["path"]
        for s in retraining_plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret")
    }
    vault_policy = (REPO / "platform/vault/policies/argo-workflows.hcl").read_text()
    values = retraining_plan.releases()["minio"].inputs["values"]
    bucket = MODEL_STORE_URI.removeprefix("s3://")
    templates = [
        r for r in retraining_plan.resources if r.type == "kubernetes:argoproj.io/v1alpha1:WorkflowTemplate"
    ]
    assert templates, f"{retraining_plan.env}: no pipelines in the plan"
    for r in templates:
        step = _register_step(r.inputs["spec"])
        env = {e["name"]: e for e in step["env"]}
        assert model_store.ROOT_ENV not in env, f"{r.urn}: register writes a local folder, not the bucket"
        assert {"AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "AWS_ACCESS_KEY_ID"} <= set(env), (
            f"{r.urn}: register has no MinIO endpoint, CA or key to upload with: {sorted(env)}"
        )
        assert env["AWS_ENDPOINT_URL"]["value"] == minio.ENDPOINT, f"{r.urn}: register uploads elsewhere"
        assert env["AWS_CA_BUNDLE"]["value"].startswith("/etc/mlplat/internal-ca/"), r.urn
        secret = env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"]
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == secret, r.urn
        path = syncs.get((argo_workflows.NAMESPACE, secret))
        assert path, f"{r.urn}: Secret {secret} is not synced from Vault into {argo_workflows.NAMESPACE}"
        assert f'path "kv/data/{path}"' in vault_policy, f"Vault role argo-workflows may not read {path}"
        # The MinIO user created from the same Vault path, and what its policy lets it do.
        user_secret = next(name for (ns, name), p in syncs.items() if ns == minio.NAMESPACE and p == path)
        user = next(u for u in values["users"] if u["existingSecret"] == user_secret)
        policy = next(p for p in values["policies"] if p["name"] == user["policy"])
        key = f"arn:aws:s3:::{bucket}/{r.inputs['metadata']['labels']['mlplat/model']}/1/MLmodel"
        for action, arn in (
            ("s3:ListBucket", f"arn:aws:s3:::{bucket}"),
            ("s3:GetObject", key),
            ("s3:PutObject", key),
        ):
            assert _allows(policy, action, arn), f"{r.urn}: MinIO user of {secret} may not {action} {arn}"
        actions = {a for st in policy["statements"] for a in st["actions"]}
        assert not [a for a in actions if "Delete" in a], f"{r.urn}: a pipeline may delete published models"


def _allows(policy: dict[str, Any], action: str, arn: str) -> bool:
    """Whether a MinIO policy's statements (all Allow) grant `action` on `arn` (`*` matches anything)."""
    return any(
        action in st["actions"] and any(fnmatch.fnmatchcase(arn, res) for res in st["resources"])
        for st in policy["statements"]
    )


def test_the_pipelines_cannot_touch_the_models_of_apps_they_do_not_train(retraining_plan: Plan) -> None:
    """The model publisher writes new versions for the apps with a pipeline; an app without one (the GPU
    LLM, a model trained by hand) must be out of its reach, or a pipeline step could replace what it serves."""
    values = retraining_plan.releases()["minio"].inputs["values"]
    policy = next(p for p in values["policies"] if p["name"] == minio.MODEL_PUBLISHER.policy)
    bucket = MODEL_STORE_URI.removeprefix("s3://")
    trained = set(_apps_with_pipelines())
    untrained = sorted(p.parent.name for p in REPO.glob("apps/*/base") if p.parent.name not in trained)
    assert untrained, "every app has a pipeline: nothing to check"
    for app in untrained:
        key = f"arn:aws:s3:::{bucket}/{app}/1/MLmodel"
        for action in ("s3:PutObject", "s3:GetObject"):
            assert not _allows(policy, action, key), f"{minio.MODEL_PUBLISHER.user} may {action} {key}"


def test_pipelines_are_applied_after_the_chart_installs_their_crds(retraining_plan: Plan) -> None:
    release = retraining_plan.releases()["argo-workflows"]
    applied = [
        r
        for r in retraining_plan.resources
        if r.type.startswith("kubernetes:argoproj.io/v1alpha1:")
        and r.type.rsplit(":", 1)[-1] in WORKFLOW_KINDS
    ]
    names = {r.inputs["metadata"]["name"] for r in applied}
    assert names == {f"retrain-{app}" for app in _apps_with_pipelines()}, (
        f"{retraining_plan.env}: {sorted(names)}"
    )
    for r in applied:
        assert release.urn in r.dependencies, f"{r.urn} is applied before {release.urn} installs its CRD"
        assert r.inputs["metadata"]["namespace"] == argo_workflows.NAMESPACE, r.urn
    bound = {a["name"] for a in release.inputs["values"]["workflow"]["rbac"]["serviceAccounts"]}
    assert bound == {f"retrain-{app}" for app in _apps_with_pipelines()}, f"{release.urn}: {bound}"


def test_controllers_get_no_cluster_wide_rights(retraining_plan: Plan) -> None:
    workflows = retraining_plan.releases()["argo-workflows"].inputs["values"]
    events = retraining_plan.releases()["argo-events"].inputs["values"]
    assert workflows["singleNamespace"] is True and workflows["createAggregateRoles"] is False
    assert workflows["controller"]["clusterWorkflowTemplates"]["enabled"] is False
    assert workflows["server"]["clusterWorkflowTemplates"]["enabled"] is False
    assert workflows["controller"]["workflowRestrictions"]["templateReferencing"] == "Secure"
    assert events["controller"]["rbac"]["namespaced"] is True
    assert events["webhook"]["enabled"] is False


def test_the_sensor_may_only_create_workflows_and_waits_for_argo_workflows(retraining_plan: Plan) -> None:
    role = next(
        r
        for r in retraining_plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
        if r.inputs["metadata"]["name"] == argo_events.SENSOR_ACCOUNT
    )
    assert role.inputs["metadata"]["namespace"] == argo_workflows.NAMESPACE, role.urn
    assert role.inputs["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create"]}
    ], role.urn
    events = retraining_plan.releases()["argo-events"]
    assert retraining_plan.releases()["argo-workflows"].urn in events.dependencies, (
        f"{events.urn} before Argo Workflows"
    )
    sensor = next(r for r in retraining_plan.resources if r.type == "kubernetes:argoproj.io/v1alpha1:Sensor")
    assert events.urn in sensor.dependencies, sensor.urn
    assert sensor.inputs["spec"]["template"]["serviceAccountName"] == argo_events.SENSOR_ACCOUNT, sensor.urn


def test_the_webhook_demands_the_token_alertmanager_sends() -> None:
    source = next(
        d for d in yaml.safe_load_all((PLATFORM / "argo-events/resources/eventsource.yaml").read_text()) if d
    )
    hook = source["spec"]["webhook"]["retraining"]
    assert hook["authSecret"] == {"name": argo_events.WEBHOOK_SECRET, "key": "token"}
    url = f"http://{source['metadata']['name']}-eventsource-svc.{argo_events.NAMESPACE}.svc.cluster.local:"
    url += f"{hook['port']}{hook['endpoint']}"
    assert url == argo_events.WEBHOOK_URL
    config = yaml.safe_load((PLATFORM / "alertmanager/config.yaml").read_text())
    receiver = next(r for r in config["receivers"] if r["name"] == "retraining")["webhook_configs"][0]
    assert receiver["url"] == argo_events.WEBHOOK_URL
    assert receiver["http_config"]["authorization"]["credentials_file"].endswith("retraining-webhook-token")
    assert receiver["send_resolved"] is False  # a resolved alert starts nothing


@pytest.mark.parametrize("alert", ["ModelDatasetDrift", "ModelQualityBelowThreshold"])
def test_drift_and_quality_alerts_reach_the_retraining_receiver_and_the_team(alert: str) -> None:
    """The route comes first and continues: the team is still told; each alert its own group, so the
    Sensor reads its app from `commonLabels.model` (every label is common to a group of one)."""
    route = yaml.safe_load((PLATFORM / "alertmanager/config.yaml").read_text())["route"]["routes"][0]
    assert route["receiver"] == "retraining" and route["continue"] is True
    assert alert in route["matchers"][0] and route["group_by"] == ["..."]
    rules = "".join(p.read_text() for p in (PLATFORM / "prometheus/rules").glob("*.yaml"))
    assert f"alert: {alert}" in rules, f"no alert {alert} in platform/prometheus/rules"


def _admitted(sensor: dict[str, object], body: dict[str, object]) -> bool:
    """Whether the Sensor's data filters pass `body`: each filter's path resolved in the payload and
    matched, unanchored as argo-events matches (regexp Match), against one of its values."""
    dependency = sensor["spec"]["dependencies"][0]  # type: ignore[index]
    for flt in dependency["filters"]["data"]:
        value: object = {"body": body}
        for key in flt["path"].split("."):
            value = value.get(key, "") if isinstance(value, dict) else ""
        if not any(re.search(pattern, str(value)) for pattern in flt["value"]):
            return False
    return True


@pytest.mark.parametrize(
    ("model", "status", "starts"),
    [
        ("iris-classifier", "firing", True),
        ("churn-gbm", "firing", True),
        ("iris-classifier", "resolved", False),
        ("iris-classifier", "notfiring", False),
        ("llm-chat", "firing", False),  # serves, but has no pipeline
        ("", "firing", False),  # an alert without the label
        ("iris-classifier-x", "firing", False),
        ("x.iris-classifier", "firing", False),
        ("Iris-Classifier", "firing", False),
    ],
)
def test_a_forged_or_malformed_alert_starts_no_run(
    retraining_plan: Plan, model: str, status: str, starts: bool
) -> None:
    """Only an alert naming an app with a pipeline, while firing, reaches the trigger."""
    sensor = next(r for r in retraining_plan.resources if r.type == "kubernetes:argoproj.io/v1alpha1:Sensor")
    body = {"status": status, "commonLabels": {"alertname": "ModelDatasetDrift", "model": model}}
    assert _admitted(sensor.inputs, body) is starts, f"{sensor.urn}: {body}"


def test_the_sensor_names_the_workflow_after_the_alert_so_a_repeat_creates_nothing() -> None:
    sensor = next(
        d for d in yaml.safe_load_all((PLATFORM / "argo-events/resources/sensor.yaml").read_text()) if d
    )
    trigger = sensor["spec"]["triggers"][0]["template"]["k8s"]
    assert trigger["operation"] == "create"
    by_dest = {p["dest"]: p["src"] for p in trigger["parameters"]}
    assert ".fingerprint" in by_dest["metadata.name"]["dataTemplate"]
    assert "generateName" not in trigger["source"]["resource"]["metadata"]
    params = trigger["source"]["resource"]["spec"]["arguments"]["parameters"]
    assert params[0] == {"name": "trigger", "value": "drift"} and params[1]["name"] == "triggered-by"
    assert by_dest["spec.arguments.parameters.1.value"]["dataTemplate"].startswith(
        "{{ .Input.body.commonLabels.alertname }}"
    )


def test_the_same_alert_firing_again_after_it_resolved_starts_a_new_run() -> None:
    """A name from the fingerprint alone collides with the last run's Workflow (kept a week after it
    finished): the create fails and a new drift of the same app would start nothing."""
    sensor = next(
        d for d in yaml.safe_load_all((PLATFORM / "argo-events/resources/sensor.yaml").read_text()) if d
    )
    trigger = sensor["spec"]["triggers"][0]["template"]["k8s"]
    name = next(p["src"]["dataTemplate"] for p in trigger["parameters"] if p["dest"] == "metadata.name")
    assert ".startsAt" in name and "sha1sum" in name, name


def _stack(env: str) -> dict[str, object]:
    return safe_yaml.stack_values(REPO / "environments" / f"Pulumi.{env}.yaml")


def test_events_without_workflows_are_refused() -> None:
    values = _stack("dev")
    values["services"]["argo_workflows"]["enabled"] = False  # type: ignore[index]
    with pytest.raises(ConfigError, match=re.escape("argo_events.enabled")):
        load_stack_config(values, "Pulumi.dev.yaml", "dev")


def test_staging_and_prod_run_no_retraining_that_would_pin_dev_to_their_own_registrys_version(
    plan: Plan,
) -> None:
    """A pipeline registers in the MLflow of its own cluster and proposes the number to dev: in staging
    or prod it would pin dev to a version dev's registry does not hold. Only dev plans the pipelines,
    the Sensor and the engines."""
    retraining = [
        r
        for r in plan.resources
        if r.type.startswith("kubernetes:argoproj.io/v1alpha1:")
        and r.type.rsplit(":", 1)[1] in ("WorkflowTemplate", "CronWorkflow", "Sensor", "EventSource")
    ]
    engines = {"argo-workflows", "argo-events"} & set(plan.releases())
    if plan.env == RETRAINING_ENVIRONMENT:
        assert retraining and engines == {"argo-workflows", "argo-events"}, plan.env
    else:
        assert not retraining and not engines, f"{plan.env}: {[r.urn for r in retraining]} {engines}"


def test_alertmanager_posts_to_the_retraining_webhook_only_where_it_exists(plan: Plan) -> None:
    """Posts to an absent Service would fail at every drift alert of staging and prod."""
    release = plan.releases()[monitoring.RELEASE]
    config = release.inputs["values"]["alertmanager"]["config"]
    urls = [w.get("url") for r in config["receivers"] for w in r.get("webhook_configs") or []]
    assert (argo_events.WEBHOOK_URL in urls) is ("argo-events" in plan.releases()), f"{release.urn}: {urls}"
    receivers = {r["name"] for r in config["receivers"]}
    routed = {r["receiver"] for r in config["route"]["routes"]}
    assert routed <= receivers, f"{release.urn}: routes to {sorted(routed - receivers)}"


def test_every_pipeline_proposes_to_the_environment_it_runs_in(retraining_plan: Plan) -> None:
    """What makes dev the retraining environment: its pipelines pin dev's overlay, so the version they
    register in dev's MLflow is the one they propose."""
    for r in _templates(retraining_plan):
        for template in r.inputs["spec"]["templates"]:
            args = (template.get("container") or {}).get("args") or []
            if args[:1] == ["propose"]:
                assert args[args.index("--env") + 1] == retraining_plan.env, f"{r.urn}: {args}"


@pytest.mark.parametrize("env", [e for e in ENVIRONMENTS if e != RETRAINING_ENVIRONMENT])
@pytest.mark.parametrize("key", ["argo_workflows", "argo_events"])
def test_retraining_switched_on_outside_dev_is_refused_naming_the_key(env: str, key: str) -> None:
    values = _stack(env)
    services = values["services"]
    assert isinstance(services, dict)
    services["argo_workflows"] = {"enabled": True}
    services["argo_events"] = {"enabled": key == "argo_events"}
    with pytest.raises(ConfigError) as caught:
        load_stack_config(values, f"Pulumi.{env}.yaml", env)
    said = str(caught.value)
    assert f"services.{key}.enabled: retraining runs in dev only, not {env}" in said, said


@pytest.mark.parametrize(
    ("file", "content", "says"),
    [
        (
            "kustomization.yaml",
            "resources: [workflowtemplate.yaml]\nnamePrefix: x-\n",
            "lists `resources` only",
        ),
        (
            "kustomization.yaml",
            "resources: [../../churn-gbm/training/cronworkflow.yaml]\n",
            "is not a file of",
        ),
        ("workflowtemplate.yaml", "kind: [unclosed\n", "cannot read it"),
        (
            "workflowtemplate.yaml",
            "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: x, namespace: default}\n",
            "must be in namespace argo-workflows",
        ),
    ],
)
def test_a_pipeline_the_program_cannot_apply_is_a_config_error_naming_the_file(
    tmp_path: Path, file: str, content: str, says: str
) -> None:
    """`mlplat plan` turns a ConfigError into exit 2 with its message, never a traceback."""
    for app in ("iris-classifier", "churn-gbm"):
        shutil.copytree(REPO / "apps" / app / "training", tmp_path / "apps" / app / "training")
    (tmp_path / "apps" / "iris-classifier" / "training" / file).write_text(content)
    with pytest.raises(ConfigError, match=re.escape(says)) as caught:
        argo_workflows.training_pipelines(tmp_path)
    assert "apps/iris-classifier/training/" in str(caught.value)


def test_dev_runs_the_weekly_schedule(retraining_plan: Plan) -> None:
    crons = [r for r in retraining_plan.resources if r.type == "kubernetes:argoproj.io/v1alpha1:CronWorkflow"]
    assert crons, retraining_plan.env
    for r in crons:
        assert r.inputs["spec"].get("suspend", False) is False, f"{r.urn}: suspended in {retraining_plan.env}"


def test_the_sensors_trigger_outcomes_are_scraped_for_its_alert(retraining_plan: Plan) -> None:
    """The chart's ServiceMonitor reads the controller only: without a monitor of the Sensor's own pod,
    RetrainingTriggerFailed (platform/prometheus/rules/retraining.yaml) has no series and never fires."""
    monitors = [
        r
        for r in retraining_plan.of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")
        if r.inputs["metadata"]["namespace"] == argo_events.NAMESPACE
        and r.inputs["spec"]["selector"]["matchLabels"].items() <= argo_events.SENSOR_PODS.items()
    ]
    assert monitors, (
        f"{retraining_plan.env}: no PodMonitor selects the Sensor's pods {argo_events.SENSOR_PODS}"
    )
    ports = [e.get("port") for m in monitors for e in m.inputs["spec"]["podMetricsEndpoints"]]
    assert "metrics" in ports, [m.urn for m in monitors]


def _step_args(template: Registered, step: str) -> list[str]:
    spec = next(t for t in template.inputs["spec"]["templates"] if t["name"] == step)
    return [str(a) for a in spec["container"]["args"]]


def test_a_dataset_overwritten_after_a_run_keeps_the_objects_that_run_trained_on(
    retraining_plan: Plan,
) -> None:
    """`fetch` reads a prefix that is overwritten in place: only bucket versioning keeps the objects a
    registered version's data hash was computed over."""
    buckets = {b["name"]: b for b in retraining_plan.releases()["minio"].inputs["values"]["buckets"]}
    for r in _templates(retraining_plan):
        args = _step_args(r, "fetch")
        source = args[args.index("--source") + 1]
        bucket = source.removeprefix("s3://").split("/", 1)[0]
        assert buckets[bucket]["versioning"] is True, f"{r.urn}: reads {source}, bucket {buckets[bucket]}"


def test_lineage_names_the_run_and_where_the_data_it_fetched_is_kept(retraining_plan: Plan) -> None:
    """The version's lineage must lead back to the bytes it was trained on: the Workflow, and the prefix
    under which the app's artifact repository (its keyFormat) stored that run's `fetch` output."""
    workflow = "retrain-app-0123456789abcdef"
    for r in _templates(retraining_plan):
        s3 = _artifact_repository(retraining_plan, r)
        run_prefix = s3["keyFormat"].replace("{{workflow.name}}", workflow).split("{{pod.name}}")[0]
        args = _step_args(r, "register")
        recorded = (
            args[args.index("--triggered-by") + 1]
            .replace("{{workflow.name}}", workflow)
            .replace("{{workflow.parameters.triggered-by}}", "ModelDatasetDrift f00d since 2026-12-01")
        )
        assert recorded.startswith("ModelDatasetDrift f00d since 2026-12-01"), f"{r.urn}: {recorded}"
        assert workflow in recorded and f"s3://{s3['bucket']}/{run_prefix}" in recorded, (
            f"{r.urn}: {recorded}"
        )
