"""Every environment's AppProject and ApplicationSet come from one template and the environment's typed
stack config (infra/gitops.py): what differs between environments is a setting, never a copied file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.config import StackConfig, load_environment
from tests.support.checkout_copy import add_environment_to_the_contract, checkout_copy, edit, mlplat
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


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_applicationset_controller_obeys_each_applicationsets_own_policy(env: str) -> None:
    """A controller-wide `applicationsetcontroller.policy` wins over every ApplicationSet's
    `applicationsSync` unless policy override is enabled again (argo-cd v3.5.1
    cmd/argocd-applicationset-controller/commands/applicationset_controller.go: `--enable-policy-override`
    defaults to `policy == ""`; applicationset/utils/policy.go `DefaultPolicy`): prod's create-update would
    silently become the controller's policy."""
    release = build(env).releases()["argocd"]
    params = release.inputs["values"].get("configs", {}).get("params", {})
    assert (
        "applicationsetcontroller.policy" not in params
        or str(params.get("applicationsetcontroller.enable.policy.override")).lower() == "true"
    ), (release.urn, params)


def test_every_environment_renders_every_placeholder() -> None:
    for env in ("dev", "staging", "prod"):
        plan = build(env)
        for kind in ("AppProject", "ApplicationSet"):
            resource = _one(plan, kind)
            assert "${" not in yaml.safe_dump(resource.inputs), resource.urn
            assert resource.inputs["metadata"]["name"] == f"models-{env}", resource.urn


def test_renaming_the_contracts_environment_label_renames_it_on_every_application(tmp_path: Path) -> None:
    """One edit of infra/contract.py: the ApplicationSets stamp the new label on the Applications."""
    repo = checkout_copy(tmp_path / "checkout")
    edit(repo / "infra" / "contract.py", '"mlplat/environment"', '"mlplat/stage"')
    code = (
        "import json\n"
        "from infra.config import load_environment\n"
        "from infra.services.argocd import model_apps\n"
        "docs = [d for _, d in model_apps('staging', load_environment('staging').services.argocd)]\n"
        "print(json.dumps([d for d in docs if d['kind'] == 'ApplicationSet']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (appset,) = yaml.safe_load(result.stdout)
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
    assert generator["git"]["directories"] == [{"path": "apps/*/overlays/qa"}], appset["urn"]
    assert appset["inputs"]["spec"]["template"]["spec"]["project"] == "models-qa", appset["urn"]

    validate = mlplat(
        repo, "validate", "--env", "qa", "--no-policy-scan", "--schemas", str(SHARED_CRDS), "--format", "json",
        str(repo / "apps" / "iris-classifier"),
    )  # fmt: skip
    assert validate.returncode == 0, validate.stdout[-3000:] + validate.stderr[-2000:]
    assert "apps/iris-classifier/overlays/qa" in validate.stdout
    assert sorted(p.relative_to(repo) for p in (repo / "platform" / "argocd").rglob("*")) == argocd_before
