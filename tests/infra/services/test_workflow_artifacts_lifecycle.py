"""The retraining artifact bucket does not grow without bound: each run's checkpoints (and their
overwritten copies) expire once no attempt of the run can want them, and nothing a registered version's
lineage points at ever does. Judged on the plan: the pipelines' WorkflowTemplates say where they write,
the MinIO release's hook commands (replayed on a model of mc, tests/support/mc_ilm.py) what expires."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.config import RETRAINING_ENVIRONMENT
from infra.contract import ENVIRONMENTS
from infra.services import minio
from tests.support.harness import Plan, Registered, build
from tests.support.mc_ilm import Buckets, custom_commands, replay, rules_for

DAY = 24 * 3600
WORKFLOW = "retrain-app-0123456789abcdef"
S3_URI = re.compile(r"s3://(?P<bucket>[a-z0-9.-]+)/(?P<prefix>\S*)")


def _templates(plan: Plan) -> list[Registered]:
    templates = plan.of_type("kubernetes:argoproj.io/v1alpha1:WorkflowTemplate")
    assert templates, f"{plan.env}: no pipelines in the plan"
    return templates


def _step(template: Registered, name: str) -> dict[str, Any]:
    return dict(next(t for t in template.inputs["spec"]["templates"] if t["name"] == name))


def _hook(plan: Plan) -> list[str]:
    return custom_commands(plan.releases()["minio"].inputs["values"])


def _checkpoint_object(template: Registered) -> tuple[str, str]:
    """(bucket, key) of a checkpoint file of run WORKFLOW, where the train step's sidecar mirrors it."""
    (sidecar,) = [s for s in _step(template, "train")["sidecars"] if s["name"] == "checkpoint-sync"]
    target = str(sidecar["args"][-1]).replace("{{workflow.name}}", WORKFLOW)
    _alias, bucket, folder = target.split("/", 2)
    return bucket, f"{folder}/model.pkl"


def _lineage_objects(template: Registered) -> list[tuple[str, str]]:
    """(bucket, key) of an object under each place a registered version's lineage leads back to: the
    datasets `fetch` reads (overwritten in place, so their noncurrent versions are what a version was
    trained on) and the run's archive of what it fetched, which `register` records."""
    fetch = [str(a) for a in _step(template, "fetch")["container"]["args"]]
    register = " ".join(str(a) for a in _step(template, "register")["container"]["args"])
    pointers = f"{fetch[fetch.index('--source') + 1]} {register.replace('{{workflow.name}}', WORKFLOW)}"
    found = [(m["bucket"], f"{m['prefix'].rstrip('/')}/part-0.csv") for m in S3_URI.finditer(pointers)]
    assert len(found) == 2, f"{template.urn}: lineage points at {found}"
    return found


def _after_upgrades(plan: Plan, runs: int) -> Buckets:
    buckets = replay(_hook(plan))
    for _ in range(runs - 1):
        buckets = replay(_hook(plan), buckets)
    return buckets


def test_finished_runs_checkpoints_expire_but_never_while_an_attempt_may_resume(
    retraining_plan: Plan,
) -> None:
    buckets = replay(_hook(retraining_plan))
    for template in _templates(retraining_plan):
        bucket, key = _checkpoint_object(template)
        rules = rules_for(buckets, bucket, key)
        expiries = [r.expire_days for r in rules if r.expire_days]
        assert expiries, f"{template.urn}: {bucket}/{key} is kept forever: {buckets.get(bucket)}"
        # Of several rules the shortest expiry wins; it must outlast any attempt of the run (the
        # Workflow's deadline bounds them all, retries and their backoff included).
        deadline = template.inputs["spec"].get("activeDeadlineSeconds")
        assert deadline, f"{template.urn}: a run without a deadline may outlive its checkpoints"
        assert min(expiries) * DAY > int(deadline), f"{template.urn}: expires during a run: {rules}"
        assert any(r.noncurrent_expire_days for r in rules), (
            f"{template.urn}: overwritten checkpoints of {key} are kept forever as noncurrent versions"
        )
        assert any(r.expire_delete_marker for r in rules), (
            f"{template.urn}: the delete markers left by expired checkpoints of {key} are never removed"
        )


def test_datasets_and_the_runs_archive_that_lineage_points_at_never_expire(retraining_plan: Plan) -> None:
    """No rule at all reaches them: neither their current objects nor their noncurrent versions."""
    buckets = replay(_hook(retraining_plan))
    for template in _templates(retraining_plan):
        for bucket, key in _lineage_objects(template):
            assert rules_for(buckets, bucket, key) == [], f"{template.urn}: {bucket}/{key} would expire"


def test_checkpoint_rules_do_not_pile_up_across_upgrades(retraining_plan: Plan) -> None:
    """The hook runs on the first install (a bucket without rules) and on every upgrade."""
    first = replay(_hook(retraining_plan)).get(minio.WORKFLOW_ARTIFACTS_BUCKET, ())
    tenth = _after_upgrades(retraining_plan, 10).get(minio.WORKFLOW_ARTIFACTS_BUCKET, ())
    assert first, f"{retraining_plan.env}: no rule on {minio.WORKFLOW_ARTIFACTS_BUCKET}"
    assert tenth == first and len(set(tenth)) == len(tenth), tenth


@pytest.mark.parametrize("env", [e for e in ENVIRONMENTS if e != RETRAINING_ENVIRONMENT])
def test_an_environment_without_retraining_puts_no_rule_on_the_artifact_bucket(env: str) -> None:
    """No checkpoints are written there, and `ilm rule rm` on a bucket that never had a rule would fail
    the whole hook: the hook runs on a new MinIO and leaves that bucket without a configuration."""
    assert minio.WORKFLOW_ARTIFACTS_BUCKET not in _after_upgrades(build(env), 2), env
