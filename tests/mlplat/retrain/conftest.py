"""Shared pieces of the retraining tests: a data source and the steps run in-process (the embedded
MLflow they register in is tests/mlplat/conftest.py's `registry`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mlplat import cli, example_models
from mlplat.registry_gate import REPO
from mlplat.retrain import data

APP = "iris-classifier"


def run(*argv: str) -> int:
    """`mlplat <argv>` in-process: the same parser and exit codes as the command line."""
    args = cli.parser().parse_args(list(argv))
    code: int = args.func(args)
    return code


def register(model: Path, scores: Path, fetched: Path, tracking_uri: str, *options: str) -> int:
    """`mlplat retrain register` of a trained `model`, its `scores` and the `fetched` data it learnt from;
    `options` say what triggered the run and what else the step is told."""
    return run(
        "retrain", "register", APP, "--model", str(model), "--data", str(fetched), "--evaluation", str(scores),
        "--tracking-uri", tracking_uri, *options,
    )  # fmt: skip


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """The iris example's split, written as the pipeline's data folder."""
    folder = tmp_path / "source"
    folder.mkdir()
    split = example_models.iris_data()
    for name, body in data.to_files(split.x_train, split.y_train, split.x_test, split.y_test).items():
        (folder / name).write_bytes(body)
    return folder


@pytest.fixture
def fetched(source: Path, tmp_path: Path) -> Path:
    out = tmp_path / "data"
    assert run("retrain", "fetch", APP, "--source", str(source), "--out", str(out)) == 0
    return out


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A git checkout holding a copy of apps/, committed: what `propose` branches from."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "apps", root / "apps", symlinks=True)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "apps"],
    ):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return root


def trained(
    fetched: Path, tmp_path: Path, evaluation: dict[str, str] | None = None, params: str | None = None
) -> tuple[Path, Path]:
    """Train (with `--params`, when given) and evaluate into `tmp_path` (`evaluation` replaces what
    evaluate wrote); the model and scores."""
    model, scores = tmp_path / "model", tmp_path / "evaluation.json"
    options = ["--params", params] if params else []
    assert run("retrain", "train", APP, "--data", str(fetched), "--out", str(model), *options) == 0
    assert (
        run("retrain", "evaluate", APP, "--model", str(model), "--data", str(fetched), "--out", str(scores))
        == 0
    )
    if evaluation is not None:
        scores.write_text(json.dumps(evaluation))
    return model, scores
