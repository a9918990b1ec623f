"""Fixtures shared by the tool tests of several folders (tests/mlplat/registry keeps its own `registry`,
which also registers versions with lineage and cards for the gate's tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.embedded_mlflow import Registry

APP = "iris-classifier"


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An embedded MLflow holding the iris example's versions 1 and 2, as the demo registers them."""
    from mlplat import example_models
    from mlplat.mlflow_server import MlflowServer

    workdir = tmp_path_factory.mktemp("retrain-mlflow")
    server = MlflowServer(workdir / "mlflow").start()
    try:
        example_models.register_app(server.url, APP, workdir / "store")
        yield Registry(server.url, workdir / "store")
    finally:
        server.stop()
