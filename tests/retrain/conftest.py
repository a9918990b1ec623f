"""Shared pieces of the retraining tests: a data source, the steps run in-process, an embedded MLflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlplat import cli, example_models
from mlplat.retrain import data

APP = "iris-classifier"


def run(*argv: str) -> int:
    """`mlplat <argv>` in-process: the same parser and exit codes as the command line."""
    args = cli.parser().parse_args(list(argv))
    code: int = args.func(args)
    return code


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


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from mlplat.mlflow_server import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("retrain-mlflow")).start()
    try:
        yield server.url
    finally:
        server.stop()
