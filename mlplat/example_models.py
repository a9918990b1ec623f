"""Train, evaluate and register the example models, the way a training pipeline would.

Each version is trained with fixed seeds, evaluated on a held-out split, saved as an MLflow model
into the model store at `<model>/<N>`, and registered with `source = s3://mlplat-models/<model>/<N>`
so a manifest can name it deterministically. The evaluation result goes onto the version as tags
(`mlplat.evaluation`, `mlplat.metric.<name>`) that the registry gate reads; version 1 gets the
`approved` alias that prod requires. Re-running reuses every version already registered and stored.

`llm-chat` cannot be trained or downloaded here: it is registered as metadata only, its store folder
holding a model card that says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplat import model_store
from mlplat.monitoring.contract import PREDICTION_COLUMN, REFERENCE_FILE, REFERENCE_TAG
from mlplat.registry_gate import (
    APPROVAL_ALIAS,
    EVALUATION_PASSED,
    EVALUATION_TAG,
    METRIC_TAG_PREFIX,
    REPO,
    Evaluation,
    load_evaluation,
)
from mlplat.retrain import lineage

EXPERIMENT = "mlplat-examples"
NO_COMMIT = "unknown: not a git checkout"
SEED = 0


@dataclass(frozen=True)
class Dataset:
    x_train: Any
    x_test: Any
    y_train: Any
    y_test: Any
    description: str


@dataclass(frozen=True)
class ExampleVersion:
    """One registered version: what the training step produced and recorded."""

    model: str
    version: str
    source: str
    metric: str | None
    value: float | None
    reused: bool


def _split(x: Any, y: Any, test_size: float) -> tuple[Any, Any, Any, Any]:
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=test_size, random_state=SEED, stratify=y)  # type: ignore[no-any-return]


def iris_data() -> Dataset:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    x = frame.drop(columns="target").set_axis(
        ["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1
    )
    return Dataset(
        *_split(x, frame["target"], 0.3), "iris (bundled with scikit-learn), 30% stratified hold-out"
    )


def churn_data() -> Dataset:
    """Synthetic, seeded churn-like data: no customer data set ships offline, and this says so."""
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=4000, n_features=6, n_informative=4, n_redundant=1, flip_y=0.03, class_sep=0.9,
        random_state=7,
    )  # fmt: skip
    columns = [
        "tenure_months",
        "monthly_charges",
        "support_calls",
        "contract_length",
        "data_usage",
        "late_payments",
    ]
    frame = pd.DataFrame(x, columns=columns)
    return Dataset(
        *_split(frame, pd.Series(y, name="churned"), 0.25), "synthetic churn (seed 7), 25% hold-out"
    )


def _iris_model(version: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    if version == 1:
        return DecisionTreeClassifier(max_depth=2, random_state=SEED)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _churn_model(version: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    if version == 1:
        return HistGradientBoostingClassifier(max_iter=30, max_depth=3, random_state=SEED)
    return HistGradientBoostingClassifier(max_iter=150, random_state=SEED)


@dataclass(frozen=True)
class Example:
    data: Callable[[], Dataset]
    estimator: Callable[[int], Any]
    # skops refuses tree node storage unless named: these are the types our own estimators contain.
    trusted_types: tuple[str, ...] = ()
    versions: int = 2


CPU_EXAMPLES: dict[str, Example] = {
    "iris-classifier": Example(iris_data, _iris_model, ("sklearn.tree._tree.Tree",)),
    "churn-gbm": Example(
        churn_data, _churn_model, ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)
    ),
}
LLM_EXAMPLE = "llm-chat"
LLM_CARD = """# llm-chat version 1 (metadata only)

This folder stands in for the weights of a chat LLM served by the KServe Hugging Face runtime on a GPU.
The demo machine has no GPU and no access to the Hugging Face Hub, so no weights were downloaded and no
evaluation was run here: the registry entry exists so manifests, promotion and the registry gate can be
exercised end to end. On the platform this prefix holds the real weights.
"""


class RegistrationError(Exception):
    """The registry numbered a version differently than the store path it was saved under."""


def mlflow_client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def existing_versions(client: Any, name: str) -> dict[str, Any]:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=f"mlplat example app {name}")
        return {}
    return {v.version: v for v in client.search_model_versions(f"name='{name}'")}


def next_version(client: Any, name: str) -> str:
    """One past the highest version the registry shows: the number a new version gets unless a newer
    one was deleted. MLflow gives one past the highest number in its table, deleted versions included
    (mlflow/store/model_registry/sqlalchemy_store.py create_model_version `max(version) + 1` over every
    row; delete_model_version keeps the row as Deleted_Internal: read in mlflow 3.17.2, the client this
    repository installs; the server image infra/versions.py pins is 3.15.1), and no API lists deleted
    versions, so that case is only seen once a version is created (DELETED_NEWER below). A guess from the
    model's last-update time was tried and dropped: a description edited in MLflow's UI stamps it too,
    and would have stopped retraining for good."""
    return str(max((int(n) for n in existing_versions(client, name)), default=0) + 1)


# What a created version numbered past its store key means, and what an operator does about it.
DELETED_NEWER = (
    "MLflow numbers past every version it ever gave, deleted ones included, so a newer version was "
    "probably deleted. The version it created is tagged mlplat.orphaned and carries no lineage, so the "
    "registry gate serves it nowhere; keep it (deleting it would skip another number) and run again: "
    "the next version takes the number after it, and its store key matches"
)


def atomic_save(target: Path, write: Callable[[Path], None]) -> None:
    """Write a store folder in a temp sibling and rename it in place: readers never see half a model."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(staging / "model")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / "model", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _requirements() -> list[str]:
    """Pinned from this environment: MLflow would otherwise infer them in a subprocess per model (~20 s)."""
    from importlib.metadata import version

    return [
        f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "numpy", "pandas", "scipy", "skops")
    ]


def fit(example: Example, version: int, x_train: Any, y_train: Any) -> Any:
    """The example's estimator `version`, fitted (also the retraining pipeline's train step)."""
    from threadpoolctl import threadpool_limits

    estimator = example.estimator(version)
    # One thread: OpenMP oversubscription on shared cores made gradient boosting ~50x slower.
    with threadpool_limits(limits=1):
        estimator.fit(x_train, y_train)
    return estimator


def accuracy(estimator: Any, x_test: Any, y_test: Any) -> float:
    """The examples' one metric (apps/<app>/evaluation.yaml names it)."""
    from sklearn.metrics import accuracy_score
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return float(accuracy_score(y_test, estimator.predict(x_test)))


# The registry tag of every version registered from a folder `save` wrote: the drift job finds the
# version's reference data only through it (drift.reference_for), and judges nothing without it.
REFERENCE = {REFERENCE_TAG: REFERENCE_FILE}


def save(estimator: Any, example: Example, x_train: Any, x_sample: Any, path: Path) -> None:
    """Write a fitted estimator as an MLflow model plus the drift job's reference data into `path`."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        signature = infer_signature(x_sample, estimator.predict(x_sample))
        reference = x_train.assign(**{PREDICTION_COLUMN: estimator.predict(x_train)})
    mlflow.sklearn.save_model(
        estimator,
        str(path),
        signature=signature,
        input_example=x_sample.head(2),
        skops_trusted_types=list(example.trusted_types),
        pip_requirements=_requirements(),
    )
    # What the drift job compares production inputs with: the training inputs and the model's
    # predictions on them, stored with the version so the registry knows the reference.
    reference.to_csv(path / REFERENCE_FILE, index=False)


def _train(
    app: str, example: Example, version: int, evaluation: Evaluation, target: Path, repo_root: Path
) -> tuple[float, dict[str, Any], dict[str, str]]:
    """Fit, score and store one example version with its model card; returns the score, the run's
    params and the version's tags (evaluation, reference data, lineage, card)."""
    from mlplat.retrain import card
    from mlplat.retrain import data as training_data

    metric = evaluation.metric or "accuracy"
    if metric != "accuracy":
        raise RegistrationError(
            f"{app}: the examples only compute accuracy, evaluation.yaml asks for {metric}"
        )
    data = example.data()
    estimator = fit(example, version, data.x_train, data.y_train)
    value = accuracy(estimator, data.x_test, data.y_test)
    params = {"estimator": type(estimator).__name__, "seed": SEED, "dataset": data.description}
    files = training_data.to_files(data.x_train, data.y_train, data.x_test, data.y_test)
    # The bar `mlplat retrain evaluate` signs off against; an app gated on sign-off only has none.
    entry_bar = evaluation.entry_threshold if evaluation.thresholds else 0.0
    tags = {
        EVALUATION_TAG: EVALUATION_PASSED if value >= entry_bar else "failed",
        METRIC_TAG_PREFIX + metric: f"{value:.4f}",
        "mlplat.evaluation.dataset": data.description,
        **REFERENCE,
        # The examples are trained by the demo from data bundled in code: their lineage says exactly that.
        lineage.CODE_COMMIT: git_commit(repo_root),
        lineage.DATA_URI: f"python:mlplat.example_models.{example.data.__name__}",
        lineage.DATA_SHA256: training_data.content_hash(files),
        lineage.IMAGE_DIGEST: lineage.NO_IMAGE,
        lineage.PARAMS: json.dumps({"variant": version, **params}, sort_keys=True),
        lineage.PARENT_RUN: lineage.NO_PARENT,
        lineage.TRIGGER: "manual",
        lineage.TRIGGERED_BY: "mlplat demo (example registration)",
        lineage.MODEL_CARD: lineage.MODEL_CARD_FILE,
    }
    rows = {"train": len(data.x_train), "test": len(data.x_test)}
    text = card.render(app, str(version), tags, evaluation, value, data.description, rows)

    def write(path: Path) -> None:
        save(estimator, example, data.x_train, data.x_test, path)
        (path / lineage.MODEL_CARD_FILE).write_text(text)

    atomic_save(target, write)
    return value, params, tags


def git_commit(repo_root: Path) -> str:
    """The commit checked out in `repo_root`, with `-dirty` when tracked files differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo_root), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return NO_COMMIT
    return commit + ("-dirty" if dirty else "")


def register_version(
    client: Any,
    name: str,
    version: str,
    tags: dict[str, str],
    params: dict[str, Any],
    metrics: dict[str, float],
    experiment: str = EXPERIMENT,
    files: dict[str, str] | None = None,
) -> str:
    """One run recording the training (with `files`, name to text, as its artifacts: the model card
    the registry gate looks for), then the version pointing at the store (number checked); returns
    the run's id."""
    from mlflow.entities import Metric, Param

    expect_next(client, name, version)  # before the run too: a refused version leaves nothing behind
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id, run_name=f"{name}-v{version}", tags={"mlplat.model": name})
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
        params=[Param(k, str(v)) for k, v in params.items()],
    )
    for artifact, text in (files or {}).items():
        client.log_text(run.info.run_id, text, artifact)
    client.set_terminated(run.info.run_id)
    source = model_store.version_uri(name, version)
    # Created bare and tagged once its number is known good: a version numbered past its store key must
    # never carry this model's lineage, which is what the registry gate serves by.
    created = client.create_model_version(name, source=source, run_id=run.info.run_id)
    if created.version != version:
        client.set_model_version_tag(
            name, created.version, ORPHANED_TAG, f"numbered past its store key {source}"
        )
        raise RegistrationError(
            f"{name}: registry created version {created.version} but the model was saved as {source}. "
            + DELETED_NEWER
        )
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return str(run.info.run_id)


def expect_next(client: Any, name: str, version: str) -> None:
    """Refuse, before creating anything, a version the registry already shows is past `version` (its
    store key): e.g. a hand-run register took the number between this run's upload and its registration."""
    given = next_version(client, name)
    if given != version:
        raise RegistrationError(
            f"{name}: the registry's next version is {given}, but the model was saved as "
            f"{model_store.version_uri(name, version)}; nothing was registered"
        )


# Tag of a version that records bytes found at its store key which no version named (publish.OccupiedKey):
# the value says how they were found. Such a version has no lineage, so the registry gate never lets an
# environment serve it (MLP-REGISTRY-LINEAGE).
ORPHANED_TAG = "mlplat.orphaned"


def register_orphan(client: Any, name: str, version: str, found: str) -> None:
    """Name the bytes at `version`'s store key with that version, tagged ORPHANED_TAG with `found`.

    MLflow numbers a model's next version one past the highest it ever gave (next_version), so a
    number whose upload was never registered is the one it gives next, and a key whose bytes
    cannot be replaced would hold retraining at that number for good. Registering the bytes as what
    they are moves the registry past it, and the pipelines may not delete (their MLflow account has
    EDIT, which cannot delete versions: mlflow/server/auth/permissions.py EDIT `can_delete=False`,
    DeleteModelVersion needs it)."""
    source = model_store.version_uri(name, version)
    expect_next(client, name, version)
    created = client.create_model_version(name, source=source, tags={ORPHANED_TAG: found})
    if created.version != version:
        raise RegistrationError(
            f"{name}: registry created version {created.version} for the unregistered model at {source}. "
            + DELETED_NEWER
        )


def register_app(
    tracking_uri: str, app: str, store_root: Path, repo_root: Path = REPO, versions: int | None = None
) -> list[ExampleVersion]:
    """Train and register versions 1..N of one CPU example app (skipping what exists) and approve v1."""
    example = CPU_EXAMPLES[app]
    evaluation = load_evaluation(app, repo_root)
    metric = evaluation.metric or "accuracy"
    client = mlflow_client(tracking_uri)
    existing = existing_versions(client, app)
    results = []
    for number in range(1, (versions or example.versions) + 1):
        version = str(number)
        source = model_store.version_uri(app, version)
        target = model_store.to_local(source, store_root)
        registered = existing.get(version)
        stored = ("MLmodel", REFERENCE_FILE, lineage.MODEL_CARD_FILE)
        card = target / lineage.MODEL_CARD_FILE
        if registered is not None and all((target / name).is_file() for name in stored):
            log_card(client, registered.run_id, card.read_text())
            value = float(registered.tags.get(METRIC_TAG_PREFIX + metric, "nan"))
            results.append(ExampleVersion(app, version, source, metric, value, reused=True))
            continue
        value, params, tags = _train(app, example, number, evaluation, target, repo_root)
        if registered is None:
            files = {lineage.MODEL_CARD_FILE: card.read_text()}
            register_version(client, app, version, tags, params, {metric: value}, files=files)
        else:  # registered before its reference data or card existed: the store holds them now
            for key, tag in tags.items():
                if key not in registered.tags:
                    client.set_model_version_tag(app, version, key, tag)
            log_card(client, registered.run_id, card.read_text())
        results.append(ExampleVersion(app, version, source, metric, value, reused=False))
    _ensure_alias(client, app, "1")
    return results


def register_llm(tracking_uri: str, store_root: Path, repo_root: Path = REPO) -> ExampleVersion:
    """Register llm-chat v1 as metadata only: a model card in the store, no weights, no evaluation run."""
    client = mlflow_client(tracking_uri)
    source = model_store.version_uri(LLM_EXAMPLE, "1")
    target = model_store.to_local(source, store_root)
    if not (target / lineage.MODEL_CARD_FILE).is_file():
        atomic_save(target, _write_card)
    params = {"weights": "none (metadata only)"}
    tags = {
        EVALUATION_TAG: EVALUATION_PASSED,
        "mlplat.evaluation.note": "metadata-only demo registration: no weights and no evaluation run here",
        # Lineage that says what it is: nothing was trained, so no data and no image.
        lineage.CODE_COMMIT: git_commit(repo_root),
        lineage.DATA_URI: "none: metadata only, no training data",
        lineage.DATA_SHA256: "none: metadata only, no training data",
        lineage.IMAGE_DIGEST: lineage.NO_IMAGE,
        lineage.PARAMS: json.dumps(params),
        lineage.PARENT_RUN: lineage.NO_PARENT,
        lineage.TRIGGER: "manual",
        lineage.TRIGGERED_BY: "mlplat demo (example registration)",
        lineage.MODEL_CARD: lineage.MODEL_CARD_FILE,
    }
    registered = existing_versions(client, LLM_EXAMPLE).get("1")
    if registered is None:
        register_version(
            client, LLM_EXAMPLE, "1", tags, params, {}, files={lineage.MODEL_CARD_FILE: LLM_CARD}
        )
    else:  # registered by an earlier demo before lineage was recorded
        for key, tag in tags.items():
            if key not in registered.tags:
                client.set_model_version_tag(LLM_EXAMPLE, "1", key, tag)
        log_card(client, registered.run_id, LLM_CARD)
    _ensure_alias(client, LLM_EXAMPLE, "1")
    return ExampleVersion(LLM_EXAMPLE, "1", source, None, None, reused=registered is not None)


def log_card(client: Any, run_id: str | None, text: str) -> None:
    """Log the model card with a version's run unless the run holds it already: versions registered
    by an earlier demo, before the registry gate looked for the card there."""
    if run_id and lineage.MODEL_CARD_FILE not in {f.path for f in client.list_artifacts(run_id)}:
        client.log_text(run_id, text, lineage.MODEL_CARD_FILE)


def _write_card(path: Path) -> None:
    path.mkdir()
    (path / lineage.MODEL_CARD_FILE).write_text(LLM_CARD)


def _ensure_alias(client: Any, name: str, version: str) -> None:
    """Approve `version` for prod unless some version already holds the alias (an owner's decision)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version_by_alias(name, APPROVAL_ALIAS)
    except MlflowException:
        client.set_registered_model_alias(name, APPROVAL_ALIAS, version)


def register_examples(tracking_uri: str, store_root: Path, repo_root: Path = REPO) -> list[ExampleVersion]:
    """All example apps: the CPU models trained and registered, the LLM as metadata."""
    results = [v for app in CPU_EXAMPLES for v in register_app(tracking_uri, app, store_root, repo_root)]
    results.append(register_llm(tracking_uri, store_root, repo_root))
    return results
