"""An app's `retention_days` (apps/<app>/base/monitoring.yaml) is keyed by the contract's environments
(infra/contract.py) and owed for every environment the app deploys to (an overlay,
`apps/<app>/overlays/<env>/`): one the app deploys to but forgets, or one the contract does not know, is
refused at the door with the file and the key, never found missing while the program writes the logs
bucket's lifecycle; an environment the app does not deploy to needs nothing from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from infra import monitoring_contract
from infra.contract import ENVIRONMENTS
from infra.services import model_monitoring
from tests.support.checkout_copy import add_environment_to_the_contract, checkout_copy, mlplat, printed_json

CONTRACT = "fields: {x: keep}\nfeatures: [x]\nprediction: class\nretention_days: {%s}\n"
APP = "a"


def _days(**days: int) -> str:
    return ", ".join(f"{env}: {n}" for env, n in days.items())


def _app(repo: Path, deploys_to: tuple[str, ...], **days: int) -> Path:
    """An app under `repo` with an overlay folder for each of `deploys_to` and `days` as its retention."""
    for env in deploys_to:
        (repo / "apps" / APP / "overlays" / env).mkdir(parents=True)
    path = monitoring_contract.path_of(APP, repo)
    path.parent.mkdir(parents=True)
    path.write_text(CONTRACT % _days(**days))
    return path


def _qa_checkout(tmp_path: Path) -> Path:
    """A checkout copy with `qa` in the contract and a stack file for it, no app touched."""
    repo = checkout_copy(tmp_path / "checkout")
    add_environment_to_the_contract(repo)
    staging = (repo / "environments" / "Pulumi.staging.yaml").read_text()
    (repo / "environments" / "Pulumi.qa.yaml").write_text(staging.replace("staging", "qa"))
    return repo


def test_an_environment_added_to_the_contract_needs_no_edit_of_apps_that_do_not_deploy_there(
    tmp_path: Path, reference: Path
) -> None:
    """`qa` added to the contract with its stack file, no app with a qa overlay: the plan (MinIO's
    lifecycle rules, the drift jobs) stopped, and validate refused every logging app, until each app's
    monitoring.yaml named qa."""
    repo = _qa_checkout(tmp_path)

    validate = mlplat(
        repo, "validate", "--no-policy-scan", "--schemas", str(reference / "crds"), "--format", "json"
    )
    assert validate.returncode == 0, validate.stdout[-3000:] + validate.stderr[-2000:]

    plan = mlplat(repo, "plan", "--env", "qa", "--no-policies")

    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-3000:]
    resources = yaml.safe_load((repo / "build" / "plan" / "qa.json").read_text())["resources"]
    drift_jobs = [
        r
        for r in resources
        if r["type"] == "kubernetes:batch/v1:CronJob"
        and r["inputs"]["metadata"]["namespace"] == model_monitoring.NAMESPACE
    ]
    assert drift_jobs == [], [r["urn"] for r in drift_jobs]  # no app deploys to qa: none is monitored there


def test_an_app_deploying_to_an_environment_without_its_retention_stops_the_plan_naming_the_file_and_key(
    tmp_path: Path,
) -> None:
    """An overlay for qa, but the app's monitoring.yaml does not say how long qa keeps its logs: the plan
    says so (exit 2), instead of a KeyError traceback in infra/services/minio.py."""
    repo = _qa_checkout(tmp_path)
    overlays = repo / "apps" / "iris-classifier" / "overlays"
    shutil.copytree(overlays / "staging", overlays / "qa")

    plan = mlplat(repo, "plan", "--env", "qa", "--no-policies")

    assert plan.returncode == 2, plan.stdout[-2000:] + plan.stderr[-3000:]
    assert "Traceback" not in plan.stderr, plan.stderr[-3000:]
    assert "apps/iris-classifier/base/monitoring.yaml: retention_days: no value for qa" in plan.stderr, (
        plan.stderr
    )


@pytest.mark.parametrize("missing", ENVIRONMENTS)
def test_an_app_without_the_retention_of_an_environment_it_deploys_to_is_refused_naming_it(
    tmp_path: Path, missing: str
) -> None:
    _app(tmp_path, ENVIRONMENTS, **{env: 30 for env in ENVIRONMENTS if env != missing})
    with pytest.raises(monitoring_contract.ContractError) as raised:
        monitoring_contract.load(APP, tmp_path)
    assert str(raised.value).startswith(f"apps/{APP}/base/monitoring.yaml: retention_days: "), raised.value
    assert f"no value for {missing}" in str(raised.value)
    assert f"apps/{APP}/overlays/{missing}" in str(raised.value)


def test_an_app_needs_no_retention_for_an_environment_it_does_not_deploy_to(tmp_path: Path) -> None:
    deploys_to = ENVIRONMENTS[1:]
    _app(tmp_path, deploys_to, **dict.fromkeys(deploys_to, 30))
    assert monitoring_contract.load(APP, tmp_path).retention_days == dict.fromkeys(deploys_to, 30)


def test_the_most_strict_environment_an_app_names_keeps_logs_at_least_as_long_as_the_least(
    tmp_path: Path,
) -> None:
    least, most = ENVIRONMENTS[1], ENVIRONMENTS[-1]
    path = _app(tmp_path, (least, most), **{least: 30, most: 10})
    with pytest.raises(monitoring_contract.ContractError, match=f"retention_days.{most} must not be shorter"):
        monitoring_contract.load_file(path, "x")


def test_an_app_cannot_keep_its_production_logs_shorter_than_production_keeps_any(tmp_path: Path) -> None:
    """Its own expiry rule comes before the bucket's: 7 days in prod would undercut the 30 every prod
    stack file is held to (infra/config.py)."""
    path = tmp_path / "monitoring.yaml"
    path.write_text(CONTRACT % _days(**dict.fromkeys(ENVIRONMENTS, 7)))
    with pytest.raises(
        monitoring_contract.ContractError,
        match=r"retention_days\.prod: production keeps inference logs at least 30",
    ):
        monitoring_contract.load_file(path, "x")


def test_a_monitoring_file_naming_an_environment_the_contract_does_not_know_names_it(tmp_path: Path) -> None:
    path = tmp_path / "monitoring.yaml"
    path.write_text(CONTRACT % _days(**dict.fromkeys(ENVIRONMENTS, 30), qa=30))
    with pytest.raises(
        monitoring_contract.ContractError, match=r"^apps/a/base/monitoring\.yaml: retention_days\.qa: "
    ):
        monitoring_contract.load_file(path, "apps/a/base/monitoring.yaml")


def test_retention_is_read_per_environment_of_the_contract(tmp_path: Path) -> None:
    path = tmp_path / "monitoring.yaml"
    days = {env: 10 * (i + 1) for i, env in enumerate(ENVIRONMENTS)}
    path.write_text(CONTRACT % _days(**days))
    assert monitoring_contract.load_file(path, "x").retention_days == days


def test_an_apps_log_expiry_stays_while_its_overlay_comes_and_goes(tmp_path: Path) -> None:
    """The program applies MinIO's expiry rules only when it deploys, and deploy.yml does not run on apps/:
    a rule that followed the overlays would be missing for an app promoted into prod since the last
    deploy (90 days instead of its 30), and `ilm rule rm --all` would lengthen what it already kept."""
    repo = checkout_copy(tmp_path / "checkout")
    shutil.rmtree(repo / "apps" / "iris-classifier" / "overlays" / "prod")
    code = (
        "import json\n"
        "from infra.services.minio import logs_lifecycle_commands\n"
        "print(json.dumps(logs_lifecycle_commands('prod', 90)))\n"
    )
    commands = [c["command"] for c in printed_json(repo, code)]
    days = yaml.safe_load((repo / "apps" / "iris-classifier" / "base" / "monitoring.yaml").read_text())[
        "retention_days"
    ]["prod"]
    assert any("models-core-ml/iris-classifier/" in c and f"--expire-days {days}" in c for c in commands), (
        commands
    )
