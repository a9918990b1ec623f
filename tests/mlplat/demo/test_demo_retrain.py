"""The demo's retraining step: drift verdict → new version with lineage → promotion commit that validates."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlplat import demo, model_store
from mlplat.retrain import lineage
from tests.support.embedded_mlflow import Registry


def test_drift_verdict_leads_to_a_validated_promotion_commit_and_a_reported_chain(
    registry: Registry, tmp_path: Path, demo_run: demo.Demo
) -> None:
    run = demo_run
    run.report.drift = [{"window": "shifted", "verdict": "drift"}]
    env = {**os.environ, model_store.ROOT_ENV: str(run.store), "MLFLOW_TRACKING_URI": registry.url}
    with run.step("retrain") as step:
        run.retrain_and_propose(step, registry.url, env)
    assert step.status == "ok", step.detail
    retrained = run.report.retrain
    version = retrained["version"]
    checkout = tmp_path / "retrain-checkout"
    branch = subprocess.run(
        ["git", "-C", str(checkout), "branch", "--show-current"], capture_output=True, text=True
    ).stdout.strip()
    assert branch == retrained["branch"] == f"retrain/{demo.SERVED_APP}-v{version}"
    assert (run.store / demo.SERVED_APP / version / lineage.MODEL_CARD_FILE).is_file()
    assert (demo.REPO / "apps").resolve() != (checkout / "apps").resolve()

    run.report.drift = []  # the stand-in verdict has no figures for the drift table
    report = demo.render_markdown(run.report)
    assert f"dev: {demo.SERVED_APP} v{version}" in report
    assert "drift by mlplat demo: drift verdict on the shifted traffic window" in report
    assert retrained["data_sha256"] in report and "Argo CD synced commit: not known offline" in report


def test_retraining_is_skipped_and_said_so_without_a_drift_verdict(tmp_path: Path) -> None:
    run = demo.Demo(tmp_path)
    assert "## Retraining" not in demo.render_markdown(run.report)
