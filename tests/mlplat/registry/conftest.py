"""A real MLflow server on a free loopback port for the whole session, with the iris example registered.

Version 1 and 2 are trained and registered exactly as the demo does (v1 approved for prod); two extra
versions are registered by hand to exercise the gate: v3 without an evaluation result, v4 with an
accuracy between the dev and staging thresholds.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlplat import promote
from mlplat.registry_gate import EVALUATION_PASSED, EVALUATION_TAG, METRIC_TAG_PREFIX, REPO
from mlplat.retrain import lineage
from tests.support.lineage import COMPLETE
from tests.support.processes import child_processes

if TYPE_CHECKING:
    from mlplat.example_models import ExampleVersion

APP = "iris-classifier"


@dataclass(frozen=True)
class Registry:
    url: str
    store: Path
    first_run: list[ExampleVersion]


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    # Imported here, not at the top: most tests of this folder use the fake registry, and these imports
    # (MLflow, the example models) cost every test run about a second.
    from mlflow import MlflowClient

    from mlplat import example_models, model_store
    from mlplat.mlflow_server import MlflowServer

    workdir = tmp_path_factory.mktemp("registry")
    store = workdir / "model-store"
    before = child_processes()
    server = MlflowServer(workdir / "mlflow").start()
    (process,) = child_processes() - before
    try:
        first = example_models.register_app(server.url, APP, store)
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        # Both carry lineage and a card, logged with their run as the pipeline logs it
        # (MLP-REGISTRY-LINEAGE): each misses only what its tests are about.
        experiment = client.create_experiment("registry-tests")
        for number, tags in (
            (3, COMPLETE),
            (4, {EVALUATION_TAG: EVALUATION_PASSED, METRIC_TAG_PREFIX + "accuracy": "0.82", **COMPLETE}),
        ):
            run = client.create_run(experiment).info.run_id
            client.log_text(run, "a model card", lineage.MODEL_CARD_FILE)
            client.create_model_version(
                APP, source=model_store.version_uri(APP, number), run_id=run, tags=tags
            )
        yield Registry(server.url, store, first)
    finally:
        server.stop()
    assert process not in child_processes(), "the MLflow server outlived stop()"


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under `root` with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of the repository's apps/ to promote and roll back in."""
    shutil.copytree(REPO / "apps", tmp_path / "apps")
    return tmp_path


def promote_cli(*argv: str) -> int:
    """`mlplat promote`/`rollback` in-process, as the console script parses them."""
    parser = argparse.ArgumentParser()
    promote.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code
