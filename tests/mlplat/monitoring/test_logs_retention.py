"""How long an app's inference logs live: never longer than its contract promises
(`apps/<app>/base/monitoring.yaml` `retention_days`), and never longer than its environment allows.
Evaluated on the MinIO release's lifecycle commands in the offline plan."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ENVIRONMENTS
from infra.services import minio
from mlplat.monitoring import contract

REPO = Path(__file__).resolve().parents[3]
# `mc ilm rule add [--prefix P] --expire-days N <alias>/<bucket>` (minio/docs mc-ilm-rule-add.rst).
RULE = re.compile(
    r"ilm rule add (?:--prefix (?P<prefix>\S+) )?--expire-days (?P<days>\d+) myminio/(?P<bucket>\S+)$"
)


def expiry_rules(plan: dict[str, Any]) -> dict[str, int]:
    """Prefix ('' for the whole bucket) -> days, of the rules on the logs bucket."""
    (values,) = [
        r["inputs"]["values"]
        for r in plan["resources"]
        if r["type"].endswith("helm.sh/v3:Release") and "customCommands" in (r["inputs"].get("values") or {})
    ]
    rules: dict[str, int] = {}
    for command in values["customCommands"]:
        match = RULE.match(command["command"])
        if match and match["bucket"] == minio.LOGS_BUCKET:
            rules[match["prefix"] or ""] = int(match["days"])
    return rules


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


def replay_hook(
    commands: list[dict[str, Any]], bucket_rules: list[tuple[str, int]] | None
) -> list[tuple[str, int]]:
    """The chart's hook running `mc <command>` under `set -e` on the logs bucket: `rule add` appends
    (creating the configuration), `rule rm --all --force` fetches the configuration, failing when
    there is none, and empties it (minio/mc cmd/ilm-add.go, cmd/ilm-remove.go)."""
    for command in (c["command"] for c in commands):
        if command == f"ilm rule rm --all --force myminio/{minio.LOGS_BUCKET}":
            assert bucket_rules is not None, "mc: Unable to fetch lifecycle rules (the hook fails)"
            bucket_rules = []
        elif match := RULE.match(command):
            if match["bucket"] == minio.LOGS_BUCKET:
                bucket_rules = [*(bucket_rules or []), (match["prefix"] or "", int(match["days"]))]
        else:
            raise AssertionError(f"a command this replay does not model: {command}")
    return bucket_rules or []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_upgrades_do_not_pile_up_expiry_rules_until_minio_refuses_them(env: str, offline_plan: Any) -> None:
    """The hook runs on the first install (no lifecycle configuration yet) and on every upgrade:
    the bucket must hold the same rules after the tenth run as after the first."""
    (values,) = [
        r["inputs"]["values"]
        for r in offline_plan(env)["resources"]
        if r["type"].endswith("helm.sh/v3:Release") and "customCommands" in (r["inputs"].get("values") or {})
    ]
    first = replay_hook(values["customCommands"], None)
    rules = first
    for _ in range(9):
        rules = replay_hook(values["customCommands"], rules)
    assert rules == first and len(first) == len(set(first)), rules
