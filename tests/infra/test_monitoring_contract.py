"""An app's `retention_days` (apps/<app>/base/monitoring.yaml) is keyed by the contract's environments
(infra/contract.py): one the app forgets, or one the contract does not know, is refused at the door with
the file and the key, never found missing while the program writes the logs bucket's lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import monitoring_contract
from infra.contract import ENVIRONMENTS
from tests.support.checkout_copy import add_environment_to_the_contract, checkout_copy, mlplat

CONTRACT = "fields: {x: keep}\nfeatures: [x]\nprediction: class\nretention_days: {%s}\n"


def _days(**days: int) -> str:
    return ", ".join(f"{env}: {n}" for env, n in days.items())


def test_an_environment_an_app_keeps_no_logs_for_stops_the_plan_naming_the_file_and_the_environment(
    tmp_path: Path,
) -> None:
    """`qa` added to the contract and given a stack file, but no app's monitoring.yaml says how long qa
    keeps its logs: the plan crashed with a KeyError traceback in infra/services/minio.py."""
    repo = checkout_copy(tmp_path / "checkout")
    add_environment_to_the_contract(repo)
    staging = (repo / "environments" / "Pulumi.staging.yaml").read_text()
    (repo / "environments" / "Pulumi.qa.yaml").write_text(staging.replace("staging", "qa"))

    plan = mlplat(repo, "plan", "--env", "qa", "--no-policies")

    assert plan.returncode == 2, plan.stdout[-2000:] + plan.stderr[-3000:]
    assert "Traceback" not in plan.stderr, plan.stderr[-3000:]
    first_app = sorted(repo.glob("apps/*/base/monitoring.yaml"))[0].parent.parent.name
    assert f"apps/{first_app}/base/monitoring.yaml: retention_days: " in plan.stderr, plan.stderr
    assert "no value for qa" in plan.stderr, plan.stderr


@pytest.mark.parametrize("missing", ENVIRONMENTS)
def test_a_monitoring_file_without_an_environments_retention_names_it(tmp_path: Path, missing: str) -> None:
    path = tmp_path / "monitoring.yaml"
    path.write_text(CONTRACT % _days(**{env: 30 for env in ENVIRONMENTS if env != missing}))
    with pytest.raises(monitoring_contract.ContractError) as raised:
        monitoring_contract.load_file(path, "apps/a/base/monitoring.yaml")
    assert str(raised.value).startswith("apps/a/base/monitoring.yaml: retention_days: "), raised.value
    assert f"no value for {missing}" in str(raised.value)


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
