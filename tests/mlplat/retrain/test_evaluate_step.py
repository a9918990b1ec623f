"""The pipelines' `evaluate` step (apps/<app>/training/workflowtemplate.yaml), run as the template writes
it: its input artifacts laid out where it mounts them, its container's command and arguments."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from mlplat.registry_gate import REPO

APP = "iris-classifier"
POD_ROOT = "/work/"


def _evaluate_template() -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "apps" / APP / "training" / "workflowtemplate.yaml").read_text())
    template: dict[str, Any] = next(t for t in doc["spec"]["templates"] if t["name"] == "evaluate")
    return template


def test_evaluate_holds_the_model_to_the_thresholds_of_the_revision_the_run_cloned(
    fetched: Path, tmp_path: Path
) -> None:
    """register and propose read the runtime clone; evaluate must too, or a threshold raised in git
    after the image was built is not applied to the version the run registers and proposes."""
    pod = tmp_path / "pod"
    model = tmp_path / "model"
    train = ["train", APP, "--data", str(fetched), "--out", str(model)]
    subprocess.run([sys.executable, "-m", "mlplat.retrain", *train], check=True, capture_output=True)
    # The clone: the repository at the revision Argo CD syncs, where dev's bar was raised above what
    # this model scores (0.98 on the iris split) since the image was built.
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "apps", clone / "apps", symlinks=True)
    evaluation = clone / "apps" / APP / "evaluation.yaml"
    spec = yaml.safe_load(evaluation.read_text())
    spec["thresholds"]["dev"] = 0.99
    evaluation.write_text(yaml.safe_dump(spec))
    contents = {"data": fetched, "model": model, "repo": clone}
    template = _evaluate_template()
    for artifact in template["inputs"]["artifacts"]:
        shutil.copytree(contents[artifact["name"]], pod / artifact["path"].removeprefix(POD_ROOT))
    container = template["container"]
    args = [str(a).replace(POD_ROOT, f"{pod}/") for a in container["args"]]
    assert container["command"] == ["python", "-m", "mlplat.retrain"], container["command"]
    done = subprocess.run(
        [sys.executable, "-m", "mlplat.retrain", *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "mlplat.evaluation=failed" in done.stdout, f"judged by the image's thresholds: {done.stdout}"
