"""Every environment's AppProject and ApplicationSet come from one template and the environment's typed
stack config (infra/gitops.py): what differs between environments is a setting, never a copied file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ConfigError, StackConfig, load_environment
from infra.contract import ENVIRONMENTS
from infra.gitops import TEMPLATE, ModelApps, TemplateError, render
from mlplat.validation.argocd import path_match
from mlplat.validation.targets import COMPONENTS
from tests.support.checkout_copy import (
    add_environment_to_the_contract,
    checkout_copy,
    edit,
    mlplat,
    printed_json,
)
from tests.support.harness import REPO, Plan, Registered, build, build_config

SHARED_CRDS = REPO.parent / "shared" / "reference" / "crds"


def _with_prune(config: StackConfig, prune: bool) -> StackConfig:
    argocd = config.services.argocd.model_copy(update={"prune_models": prune})
    return config.model_copy(update={"services": config.services.model_copy(update={"argocd": argocd})})


def _one(plan: Plan, kind: str) -> Registered:
    (found,) = plan.of_type(f"kubernetes:argoproj.io/v1alpha1:{kind}")
    return found


@pytest.mark.parametrize("prune", [True, False])
def test_whether_automation_may_delete_models_is_the_stack_setting_not_the_environment_name(
    prune: bool,
) -> None:
    """dev with prune_models off gets prod's protection, and the setting decides both deletions: a sync's
    prune and the ApplicationSet deleting the Application of a vanished overlay."""
    appset = _one(build_config(_with_prune(load_environment("dev"), prune)), "ApplicationSet")
    spec = appset.inputs["spec"]
    assert spec["template"]["spec"]["syncPolicy"]["automated"]["prune"] is prune, appset.urn
    assert spec["syncPolicy"]["applicationsSync"] == ("sync" if prune else "create-update"), appset.urn
    assert spec["syncPolicy"]["preserveResourcesOnDeletion"] is True, appset.urn


def test_prod_models_are_never_deleted_by_automation() -> None:
    appset = _one(build("prod"), "ApplicationSet")
    spec = appset.inputs["spec"]
    assert spec["template"]["spec"]["syncPolicy"]["automated"]["prune"] is False, appset.urn
    assert spec["syncPolicy"]["applicationsSync"] == "create-update", appset.urn


# Every way the argo-cd chart hands the ApplicationSet controller a policy of its own (argo-helm
# argo-cd-10.1.1 templates/argocd-applicationset/deployment.yaml), and the key path each is named by.
CONTROLLER_POLICY = """\
configs:
  params:
    applicationsetcontroller.policy: sync
    applicationsetcontroller.enable.policy.override: "false"
applicationSet:
  extraArgs: [--enable-policy-override=false, --debug, --policy, sync]
  extraEnv:
    - {name: ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_POLICY_OVERRIDE, value: "false"}
    - {name: '{{ .Values.policyVariable }}', value: sync}
  extraEnvFrom: [{configMapRef: {name: controller-policy}}]
global:
  env: [{name: ARGOCD_APPLICATIONSET_CONTROLLER_POLICY, value: sync}]
"""
CONTROLLER_POLICY_PATHS = {
    "configs.params.applicationsetcontroller.policy",
    "configs.params.applicationsetcontroller.enable.policy.override",
    "applicationSet.extraArgs[0]",
    "applicationSet.extraArgs[2]",
    "applicationSet.extraEnv[0]",
    "applicationSet.extraEnv[1]",
    "applicationSet.extraEnvFrom",
    "global.env[0]",
}


def test_no_argocd_chart_value_can_make_the_controller_ignore_prods_create_update(tmp_path: Path) -> None:
    """A controller-wide policy wins over every ApplicationSet's `applicationsSync`, and disabling the
    override makes even the default `sync` win (argo-cd v3.5.1
    cmd/argocd-applicationset-controller/commands/applicationset_controller.go: `--enable-policy-override`
    defaults to `policy == ""`; applicationset/utils/policy.go `DefaultPolicy`): prod's create-update would
    silently become deletion. Every way the chart takes such a setting stops `mlplat plan` (and `pulumi up`)."""
    repo = checkout_copy(tmp_path / "checkout")
    values = repo / "platform" / "argo-cd" / "values-prod.yaml"
    values.write_text(values.read_text() + CONTROLLER_POLICY)
    plan = mlplat(repo, "plan", "--env", "prod", "--no-policies")
    assert plan.returncode == 2, plan.stdout[-2000:] + plan.stderr[-3000:]
    assert "Traceback" not in plan.stderr, plan.stderr[-3000:]
    named = {line.split(":")[0].strip() for line in plan.stderr.splitlines() if line.startswith("  ")}
    assert named == CONTROLLER_POLICY_PATHS, plan.stderr


def test_the_values_the_program_computes_cannot_set_the_controller_policy_either(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard reads the values as the release gets them: the files and what infra/services/argocd.py
    computes from the stack."""
    from infra.services import argocd

    computed = argocd.computed_values

    def with_policy(settings: Any) -> dict[str, Any]:
        values = computed(settings)
        values["configs"]["params"] = {"applicationsetcontroller.policy": "sync"}
        return values

    monkeypatch.setattr(argocd, "computed_values", with_policy)
    with pytest.raises(ConfigError, match=r"\n  configs\.params\.applicationsetcontroller\.policy: sets"):
        build_config(load_environment("prod"))


def _rendered_with(kind: str, key_path: str, value: Any, env: str = "prod") -> list[str]:
    """The key paths render refuses once `key_path` (dotted, `[i]` for a list index) of the template's
    `kind` is set to `value`; [] when it renders."""
    docs = list(yaml.safe_load_all((REPO / "platform" / TEMPLATE).read_text()))
    (node,) = [d for d in docs if isinstance(d, dict) and d.get("kind") == kind]
    *parents, last = [
        int(k) if k.isdigit() else k for k in key_path.replace("[", ".").replace("]", "").split(".")
    ]
    for key in parents:
        node = node[key]
    node[last] = value
    try:
        render(docs, f"platform/{TEMPLATE}", ModelApps.of(env, load_environment(env).services.argocd))
    except TemplateError as err:
        return [path for path, _ in err.problems]
    return []


GIT = yaml.safe_load("""\
git:
  repoURL: ${repo_url}
  revision: ${target_revision}
  directories: [{path: "apps/*/overlays/${environment}"}]
""")
PRUNE_TRUE = {"spec": {"syncPolicy": {"automated": {"prune": True}}}}


@pytest.mark.parametrize(
    ("kind", "key_path", "value", "refused"),
    [
        (  # the review's repro: Argo CD merges it into every Application after the template
            "ApplicationSet", "spec.templatePatch",
            "spec:\n  project: default\n  syncPolicy:\n    automated:\n      prune: true\n",
            ["ApplicationSet spec.templatePatch"],
        ),
        (  # a generator's own template wins over spec.template field by field
            "ApplicationSet", "spec.generators[0].git.template", PRUNE_TRUE,
            ["ApplicationSet spec.generators[0].git.template"],
        ),
        (  # a git generator nested in a matrix, with a template of its own there
            "ApplicationSet", "spec.generators",
            [{"matrix": {"generators": [GIT | {"template": PRUNE_TRUE}, {"list": {"elements": [{}]}}]}}],
            ["ApplicationSet spec.generators[0]"],
        ),
        (
            "ApplicationSet", "spec.generators",
            [{"merge": {"mergeKeys": ["path"], "generators": [GIT], "template": PRUNE_TRUE}}],
            ["ApplicationSet spec.generators[0]"],
        ),
        ("ApplicationSet", "spec.generators[0].selector", {"matchLabels": {}}, ["ApplicationSet spec.generators[0]"]),
        (  # hand edits of prune or source on an Application would no longer be reset
            "ApplicationSet", "spec.ignoreApplicationDifferences",
            [{"jsonPointers": ["/spec/syncPolicy"]}], ["ApplicationSet spec.ignoreApplicationDifferences"],
        ),
        (  # a second source would take a revision of its own
            "ApplicationSet", "spec.template.spec.sources",
            [{"repoURL": "${repo_url}", "targetRevision": "feature", "path": "x"}],
            ["ApplicationSet spec.template.spec.sources"],
        ),
        ("AppProject", "spec.sourceNamespaces", ["*"], ["AppProject spec.sourceNamespaces"]),
        ("AppProject", "spec.roles", [{"name": "ci", "policies": ["p, *, *, *, allow"]}], ["AppProject spec.roles"]),
        (
            "AppProject", "spec.sourceRepos", ["${repo_url}", "https://github.com/someone-else/x.git"],
            ["AppProject spec.sourceRepos[1]"],
        ),
        ("AppProject", "spec.destinations[0].namespace", "*", ["AppProject spec.destinations[0]"]),
        (
            "AppProject", "spec.destinations", [{"server": "*", "namespace": "models-*"}],
            ["AppProject spec.destinations[0]"],
        ),
        (
            "AppProject", "spec.destinations", [{"name": "other-cluster", "namespace": "models-*"}],
            ["AppProject spec.destinations[0]"],
        ),
    ],
    ids=[
        "template-patch", "generator-template", "matrix", "merge", "generator-selector",
        "ignore-application-differences", "second-source", "source-namespaces", "project-roles",
        "second-repository", "any-namespace", "any-cluster", "another-cluster",
    ],
)  # fmt: skip
def test_prod_cannot_be_made_to_prune_or_widen_past_the_template_checks(
    kind: str, key_path: str, value: Any, refused: list[str]
) -> None:
    assert _rendered_with(kind, key_path, value) == refused


@pytest.mark.parametrize(
    "project",
    ["default", "{{index .path.segments 1}}", "models-prod", "models-${environment}-x"],
    ids=["default", "templated", "one-environments-name", "another-project"],
)
def test_the_applications_cannot_be_put_in_a_project_other_than_the_environments_own(project: str) -> None:
    """validate judges every app against the AppProject rendered beside the ApplicationSet: an Application
    in any other project (`default` allows everything; a templated one lets a folder pick) is judged by
    rules nobody checked. Even `models-prod` is refused in prod: it would be wrong in every other environment."""
    assert _rendered_with("ApplicationSet", "spec.template.spec.project", project) == [
        "ApplicationSet spec.template.spec.project"
    ]


@pytest.mark.parametrize(
    ("kind", "key_path", "value", "refused"),
    [
        ("ApplicationSet", "spec.generators", 5, ["ApplicationSet spec.generators"]),
        ("ApplicationSet", "spec.generators", [], ["ApplicationSet spec.generators"]),
        ("ApplicationSet", "spec.generators", [5], ["ApplicationSet spec.generators[0]"]),
        ("ApplicationSet", "spec.generators[0].git", 5, ["ApplicationSet spec.generators[0].git"]),
        ("ApplicationSet", "spec.template", 5, ["ApplicationSet spec.template.spec"]),
        ("AppProject", "spec.sourceRepos", 5, ["AppProject spec.sourceRepos"]),
        ("AppProject", "spec.sourceRepos", [], ["AppProject spec.sourceRepos"]),
        ("AppProject", "spec.destinations", 5, ["AppProject spec.destinations"]),
        ("AppProject", "spec.destinations", [5], ["AppProject spec.destinations[0]"]),
    ],
    ids=[
        "generators-5",
        "no-generator",
        "generator-5",
        "git-5",
        "template-5",
        "source-repos-5",
        "no-source-repo",
        "destinations-5",
        "destination-5",
    ],
)
def test_a_badly_shaped_template_is_refused_by_its_key_not_a_crash(
    kind: str, key_path: str, value: Any, refused: list[str]
) -> None:
    """A TypeError here would be a traceback in `pulumi up` and an internal error in validate."""
    assert _rendered_with(kind, key_path, value) == refused


def test_every_environment_renders_every_placeholder() -> None:
    for env in ("dev", "staging", "prod"):
        plan = build(env)
        for kind in ("AppProject", "ApplicationSet"):
            resource = _one(plan, kind)
            assert "${" not in yaml.safe_dump(resource.inputs), resource.urn
            assert resource.inputs["metadata"]["name"] == f"models-{env}", resource.urn


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_an_overlays_folder_among_the_shared_components_never_becomes_an_application(env: str) -> None:
    """`apps/*/overlays/<env>` also matches the shared components' folder: an overlays/ folder there
    (validate refuses it, but an admin's direct push is not validated) made every environment deploy the
    components as an app named `components`. Judged as the git directory generator does: Go's
    path.Match, and an exclude wins over every include (argo-cd v3.4.4 Generators-Git.md)."""
    appset = _one(build(env), "ApplicationSet")
    (git,) = [g["git"] for g in appset.inputs["spec"]["generators"]]

    def generated(folder: str) -> bool:
        matching = [d for d in git["directories"] if path_match(d["path"], folder)]
        return bool(matching) and not any(d.get("exclude") for d in matching)

    assert not generated(f"{COMPONENTS}/overlays/{env}"), appset.urn
    assert generated(f"apps/iris-classifier/overlays/{env}"), appset.urn


def test_renaming_the_contracts_environment_label_renames_it_on_every_application(tmp_path: Path) -> None:
    """One edit of infra/contract.py: the ApplicationSets stamp the new label on the Applications."""
    repo = checkout_copy(tmp_path / "checkout")
    edit(repo / "infra" / "contract.py", '_key("environment")', '_key("stage")')
    code = (
        "import json\n"
        "from infra.config import load_environment\n"
        "from infra.services.argocd import model_apps\n"
        "docs = [d for _, d in model_apps('staging', load_environment('staging').services.argocd)]\n"
        "print(json.dumps([d for d in docs if d['kind'] == 'ApplicationSet']))\n"
    )
    (appset,) = printed_json(repo, code)
    assert appset["spec"]["template"]["metadata"]["labels"] == {
        "mlplat/stage": "staging",
        "mlplat/app": "{{index .path.segments 1}}",
    }


def test_adding_an_environment_needs_no_argocd_file_and_plan_and_validate_accept_it(tmp_path: Path) -> None:
    """The steps of docs/architecture.md ("a new environment"), for `qa`: its name in the contract, its
    stack file, and each app's own values for it (evaluation thresholds, log retention) and overlay. Nothing
    else: no Argo CD file (the program renders qa's AppProject and ApplicationSet, and validate judges
    against them), no model or list of the environments in the code (they read the contract)."""
    repo = checkout_copy(tmp_path / "checkout")
    argocd_before = sorted(p.relative_to(repo) for p in (repo / "platform" / "argocd").rglob("*"))
    # 1. The environment, in promotion order (infra/contract.py).
    add_environment_to_the_contract(repo)
    # 2. Its stack file: here staging's, renamed (a real one also gets its own VPC range, roles, domain).
    staging = (repo / "environments" / "Pulumi.staging.yaml").read_text()
    (repo / "environments" / "Pulumi.qa.yaml").write_text(staging.replace("staging", "qa"))
    # 3. Each app's values for it: log retention and evaluation thresholds, then an overlay where the app
    #    deploys to qa.
    for contract in sorted((repo / "apps").glob("*/base/monitoring.yaml")):
        doc = yaml.safe_load(contract.read_text())
        doc["retention_days"]["qa"] = doc["retention_days"]["staging"]
        contract.write_text(yaml.safe_dump(doc, sort_keys=False))
    for evaluation in sorted((repo / "apps").glob("*/evaluation.yaml")):
        doc = yaml.safe_load(evaluation.read_text())
        if doc.get("thresholds"):  # an app gated on a metric (llm-chat is gated on sign-off only)
            doc["thresholds"]["qa"] = doc["thresholds"]["staging"]
            evaluation.write_text(yaml.safe_dump(doc, sort_keys=False))
    overlay = repo / "apps" / "iris-classifier" / "overlays"
    shutil.copytree(overlay / "staging", overlay / "qa")
    for path in (overlay / "qa").iterdir():
        path.write_text(path.read_text().replace("staging", "qa"))

    plan = mlplat(repo, "plan", "--env", "qa", "--no-policies")
    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-3000:]
    resources = yaml.safe_load((repo / "build" / "plan" / "qa.json").read_text())["resources"]
    argocd = {
        r["type"].rsplit(":", 1)[-1]: r
        for r in resources
        if r["type"].startswith("kubernetes:argoproj.io/v1alpha1:App")
    }
    assert argocd["AppProject"]["inputs"]["metadata"]["name"] == "models-qa", argocd["AppProject"]["urn"]
    appset = argocd["ApplicationSet"]
    (generator,) = appset["inputs"]["spec"]["generators"]
    assert generator["git"]["directories"] == [
        {"path": "apps/*/overlays/qa"},
        {"path": "apps/components/overlays/qa", "exclude": True},
    ], appset["urn"]
    assert appset["inputs"]["spec"]["template"]["spec"]["project"] == "models-qa", appset["urn"]

    validate = mlplat(
        repo, "validate", "--env", "qa", "--no-policy-scan", "--schemas", str(SHARED_CRDS), "--format", "json",
        str(repo / "apps" / "iris-classifier"),
    )  # fmt: skip
    assert validate.returncode == 0, validate.stdout[-3000:] + validate.stderr[-2000:]
    assert "apps/iris-classifier/overlays/qa" in validate.stdout
    assert sorted(p.relative_to(repo) for p in (repo / "platform" / "argocd").rglob("*")) == argocd_before
