"""How long an app's inference logs live: never longer than its contract promises
(`apps/<app>/base/monitoring.yaml` `retention_days`), and never longer than its environment allows.
Evaluated on the MinIO release's lifecycle commands in the offline plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ENVIRONMENTS
from infra.services import minio
from mlplat.monitoring import contract
from tests.support.mc_ilm import custom_commands, replay

REPO = Path(__file__).resolve().parents[3]


def _minio_values(plan: dict[str, Any]) -> dict[str, Any]:
    (values,) = [
        r["inputs"]["values"]
        for r in plan["resources"]
        if r["type"].endswith("helm.sh/v3:Release") and "customCommands" in (r["inputs"].get("values") or {})
    ]
    return dict(values)


def expiry_rules(plan: dict[str, Any]) -> dict[str, int]:
    """Prefix ('' for the whole bucket) -> days, of the rules on the logs bucket."""
    rules = replay(custom_commands(_minio_values(plan))).get(minio.LOGS_BUCKET, ())
    return {rule.prefix: rule.expire_days for rule in rules if rule.expire_days}


def kept_for(rules: dict[str, int], key: str) -> int:
    """Of all rules matching an object key the shortest expiry wins."""
    return min(days for prefix, days in rules.items() if key.startswith(prefix))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_logs_are_not_kept_longer_than_the_app_promises(env: str, offline_plan: Any) -> None:
    plan = offline_plan(env)
    rules = expiry_rules(plan)
    stack = yaml.safe_load((REPO / "environments" / f"Pulumi.{env}.yaml").read_text())
    environment_days = stack["config"]["mlplat:services"]["inference_logs"]["retention_days"]
    assert rules.get("") == environment_days, rules
    for path in sorted(REPO.glob("apps/*/base/monitoring.yaml")):
        app = path.parent.parent.name
        promised = contract.load(app, REPO).retention_days[env]
        isvc = next(
            d
            for f in sorted(path.parent.glob("*.yaml"))
            for d in yaml.safe_load_all(f.read_text())
            if isinstance(d, dict) and d.get("kind") == "InferenceService"
        )
        # An object as KServe's logger names it (pkg/logger/store.go getObjectPrefix).
        key = f"{isvc['metadata']['namespace']}/{isvc['metadata']['name']}/predictor/records/1-request.json"
        assert kept_for(rules, key) == min(promised, environment_days), f"{app}/{env}: {rules}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_upgrades_do_not_pile_up_expiry_rules_until_minio_refuses_them(env: str, offline_plan: Any) -> None:
    """The hook runs on the first install (no lifecycle configuration yet) and on every upgrade:
    the bucket must hold the same rules after the tenth run as after the first."""
    commands = custom_commands(_minio_values(offline_plan(env)))
    first = replay(commands)
    buckets = first
    for _ in range(9):
        buckets = replay(commands, buckets)
    rules = buckets[minio.LOGS_BUCKET]
    assert rules == first[minio.LOGS_BUCKET] and len(rules) == len(set(rules)), rules
