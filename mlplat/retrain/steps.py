"""The retraining pipeline's steps after fetch: train, evaluate, register, propose.

Each step reads and writes local folders (on the cluster Argo hands them from step to step as
artifacts) so every step can be run, retried and tested alone. Errors are `UsageError` (exit 2: bad
input, named with where and why) or `Refused` (exit 1: the input is fine but the step must not go on,
such as proposing a version below the environment's threshold).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.contract import ENVIRONMENTS
from mlplat import example_models, model_store, promote, registry_gate
from mlplat.monitoring.contract import REFERENCE_FILE
from mlplat.retrain import card, checkpoint, data, lineage, publish

PARAMS_FILE = "params.json"
EXPERIMENT = "mlplat-retrain"
BRANCH_PREFIX = "retrain/"


class UsageError(Exception):
    """Bad input: unknown app, malformed parameters or files, unreachable registry (exit 2)."""


class Refused(Exception):
    """The step must not go on: the version fails its evaluation or the gate (exit 1)."""


class NothingToPropose(Exception):
    """The environment already runs the version (exit 0): a rerun on the same data and code
    registered nothing new, and its promotion was merged before."""


NOTHING_TO_PROPOSE = "nothing to propose"  # how `propose` says so on stdout; the open-pr step reads it


def example(app: str) -> example_models.Example:
    """The app's training recipe; only the CPU examples can be trained by this pipeline."""
    found = example_models.CPU_EXAMPLES.get(app)
    if found is None:
        known = ", ".join(sorted(example_models.CPU_EXAMPLES))
        raise UsageError(f"app {app!r} has no training recipe here (trainable apps: {known})")
    return found


def parse_params(app: str, text: str | None) -> dict[str, Any]:
    """--params: a JSON object; `variant` picks the app's estimator (1..N, default the newest)."""
    recipe = example(app)
    try:
        given = json.loads(text) if text else {}
    except ValueError as err:
        raise UsageError(f"--params is not JSON: {err}") from None
    if not isinstance(given, dict) or set(given) - {"variant"}:
        raise UsageError('--params: expected an object with at most "variant"')
    variant = given.get("variant", recipe.versions)
    if not isinstance(variant, int) or isinstance(variant, bool) or not 1 <= variant <= recipe.versions:
        raise UsageError(f"--params: variant must be an integer from 1 to {recipe.versions}")
    return {"variant": variant}


def _frames(folder: Path) -> tuple[dict[str, Any], data.Frames]:
    try:
        return data.read_lineage(folder), data.read_frames(folder)
    except data.DataError as err:
        raise UsageError(str(err)) from None


def train(app: str, data_dir: Path, out: Path, checkpoint_dir: Path | None, params_text: str | None) -> str:
    """Fit the app's estimator on `data_dir/train.csv` and write the MLflow model and params.json to `out`.

    What resumes: the fitted model. With `checkpoint_dir` (mirrored to MinIO file by file on the cluster)
    its files are saved there with the data hash and parameters they were fitted for (checkpoint.py); a
    rerun after a spot interruption with the same data and parameters writes them to `out` instead of
    fitting again. A fit interrupted midway starts over: scikit-learn's estimators here have no
    partial-fit state worth saving.
    """
    recipe = example(app)
    params = parse_params(app, params_text)
    record, frames = _frames(data_dir)
    fitted_for = {"data_sha256": record["sha256"], "params": params}
    saved = checkpoint.resume(checkpoint_dir, fitted_for) if checkpoint_dir else None
    if saved is None:
        estimator = example_models.fit(recipe, params["variant"], frames.x_train, frames.y_train)

        def write(path: Path) -> None:
            example_models.save(estimator, recipe, frames.x_train, frames.x_test, path)

        example_models.atomic_save(out, write)
        if checkpoint_dir:
            checkpoint.save(checkpoint_dir, fitted_for, publish.version_files(out))
    else:
        example_models.atomic_save(out, lambda path: publish.write_files(path, saved))
    (out / PARAMS_FILE).write_text(json.dumps(params, sort_keys=True) + "\n")
    how = "fitted" if saved is None else f"resumed from the checkpoint in {checkpoint_dir}"
    return f"{app}: model {how}, written to {out} ({json.dumps(params)})"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def evaluate(app: str, model_dir: Path, data_dir: Path, out: Path, repo_root: Path) -> dict[str, str]:
    """Score the model on `data_dir/test.csv` with the app's metric and write the registry tags the gate
    reads (`mlplat.evaluation`, `mlplat.metric.<metric>`) as a JSON object to `out`."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    example(app)
    evaluation = _evaluation(app, repo_root)
    _, frames = _frames(data_dir)
    if evaluation.metric != "accuracy":
        raise UsageError(
            f"{app}: evaluation.yaml asks for {evaluation.metric!r}; this pipeline computes accuracy"
        )
    try:
        model = mlflow.pyfunc.load_model(str(model_dir))
    except (MlflowException, OSError) as err:
        raise UsageError(f"--model {model_dir}: not an MLflow model: {err}") from None
    from sklearn.metrics import accuracy_score

    value = float(accuracy_score(frames.y_test, model.predict(frames.x_test)))
    passed = value >= evaluation.entry_threshold
    tags = {
        registry_gate.EVALUATION_TAG: registry_gate.EVALUATION_PASSED if passed else "failed",
        registry_gate.METRIC_TAG_PREFIX + evaluation.metric: f"{value:.4f}",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(tags, indent=2, sort_keys=True) + "\n")
    return tags


def _evaluation(app: str, repo_root: Path) -> registry_gate.Evaluation:
    try:
        return registry_gate.load_evaluation(app, repo_root)
    except registry_gate.EvaluationFileError as err:
        raise UsageError(str(err)) from None


def _evaluation_tags(path: Path, metric: str) -> tuple[dict[str, str], float]:
    """The tags `evaluate` wrote, checked: the sign-off and a finite metric value."""
    found = _read_json(path)
    key = registry_gate.METRIC_TAG_PREFIX + metric
    try:
        value = float(found[key])
        if not isinstance(found[registry_gate.EVALUATION_TAG], str) or not math.isfinite(value):
            raise ValueError
    except (TypeError, KeyError, ValueError):
        raise UsageError(
            f"--evaluation {path}: expected the JSON `mlplat retrain evaluate` writes "
            f"({registry_gate.EVALUATION_TAG} and a finite {key})"
        ) from None
    return {registry_gate.EVALUATION_TAG: found[registry_gate.EVALUATION_TAG], key: found[key]}, value


@dataclass(frozen=True)
class Lineage:
    """Who or what started the run, and what it ran: the inputs of `register` beyond the files."""

    trigger: str
    triggered_by: str
    code_commit: str | None = None  # default: the checkout's HEAD
    image_digest: str | None = None
    parent_run: str | None = None


def register(
    app: str,
    model_dir: Path,
    data_dir: Path,
    evaluation_file: Path,
    tracking_uri: str,
    who: Lineage,
    repo_root: Path,
    store_root: Path | None = None,
) -> tuple[str, bool]:
    """Register the model as the app's next version with lineage tags and a model card; returns the
    version and whether it already existed (same data hash, code commit and parameters,
    lineage.SAME_TRAINING: nothing new registered).

    The model and its card go to the version's store key first (publish.py: the bucket on the cluster,
    `store_root` or $MLPLAT_MODEL_STORE_ROOT locally), the MLflow version naming that key after. The same
    bytes at the key (a retried step) are reused; another model's bytes no version names (a run that
    stopped after its upload) are registered as the orphan they are and the next number taken."""
    from mlflow.exceptions import MlflowException

    example(app)
    try:
        registry_gate.split_url(tracking_uri)
    except registry_gate.RegistryUnavailable as err:
        raise UsageError(f"--tracking-uri: {err}") from None
    if who.trigger not in lineage.TRIGGERS:
        raise UsageError(f"--trigger {who.trigger!r}: one of {', '.join(lineage.TRIGGERS)}")
    if not who.triggered_by.strip():
        raise UsageError("--triggered-by is empty: name the alert, schedule or person")
    evaluation = _evaluation(app, repo_root)
    record, frames = _frames(data_dir)
    for name in ("MLmodel", REFERENCE_FILE):  # the model and the drift job's reference data
        if not (model_dir / name).is_file():
            raise UsageError(f"--model {model_dir}: no {name} file (run `mlplat retrain train` into it)")
    params = _read_json(model_dir / PARAMS_FILE)
    if not isinstance(params, dict):
        raise UsageError(f"--model {model_dir}: {PARAMS_FILE} is missing or not a JSON object")
    scores, value = _evaluation_tags(evaluation_file, evaluation.metric or "accuracy")
    # The image's commit before the checkout's: on the cluster the checkout is main as it is at run
    # time, which moves with every merge (the promotion pull requests included), so its HEAD would
    # neither name the code that trained nor keep a rerun on the same data from registering again.
    commit = (
        who.code_commit
        or os.environ.get(lineage.CODE_COMMIT_ENV, "").strip()
        or example_models.git_commit(repo_root)
    )
    if commit.startswith(example_models.NO_COMMIT):  # an image built without .git: its builder knows
        raise UsageError(
            f"{repo_root} is not a git checkout: pass --code-commit with the training code's commit"
        )
    tags = {
        **scores,
        lineage.CODE_COMMIT: commit,
        lineage.DATA_URI: record["uri"],
        lineage.DATA_SHA256: record["sha256"],
        lineage.IMAGE_DIGEST: who.image_digest
        or (lineage.IMAGE_BY_TAG if os.environ.get(lineage.CODE_COMMIT_ENV) else lineage.NO_IMAGE),
        lineage.PARAMS: json.dumps(params, sort_keys=True),
        lineage.PARENT_RUN: who.parent_run or lineage.NO_PARENT,
        lineage.TRIGGER: who.trigger,
        lineage.TRIGGERED_BY: who.triggered_by,
        lineage.MODEL_CARD: lineage.MODEL_CARD_FILE,
        **example_models.REFERENCE,
    }
    try:
        client = example_models.mlflow_client(tracking_uri)
        existing = example_models.existing_versions(client, app)
        for number, version in sorted(existing.items(), key=lambda item: int(item[0])):
            if all(version.tags.get(key) == tags[key] for key in lineage.SAME_TRAINING):
                return number, True
        rows = {"train": len(frames.x_train), "test": len(frames.x_test)}
        store = publish.store_for(store_root)
        next_number = int(example_models.next_version(client, app))
        while True:
            number = str(next_number)
            text = card.render(app, number, tags, evaluation, value, f"test.csv of {record['uri']}", rows)
            files = {**publish.version_files(model_dir), lineage.MODEL_CARD_FILE: text.encode()}
            # The bytes first, then the version naming them (publish.py): a version never points at nothing.
            try:
                publish.publish(store, app, number, files)
                break
            except publish.OccupiedKey as err:
                # An earlier run uploaded here and never registered (one run per app at a time: the
                # training WorkflowTemplate's mutex), so MLflow would give this number again: record
                # those bytes as this version and take the next (example_models.register_orphan).
                example_models.register_orphan(client, app, number, str(err))
                next_number += 1
        metrics = {evaluation.metric or "accuracy": value}
        # The card goes with the run too: the registry gate checks it there (MLP-REGISTRY-LINEAGE).
        example_models.register_version(
            client, app, number, tags, params, metrics, EXPERIMENT, files={lineage.MODEL_CARD_FILE: text}
        )
    except (model_store.ModelStoreError, publish.StoreUnavailable) as err:
        raise UsageError(str(err)) from None
    except publish.StoreConflict as err:
        raise Refused(str(err)) from None
    except (MlflowException, example_models.RegistrationError) as err:
        raise UsageError(f"registry {registry_gate.redact(tracking_uri)}: {err}") from None
    return number, False


def propose(
    app: str, version: str, env: str, branch: str | None, registry: str | None, repo_root: Path
) -> tuple[str, str]:
    """On a new branch of `repo_root`, pin `env` to `version` (gated, as `mlplat promote` is) and commit;
    returns the branch and a pull request body. The version must pass `env`'s evaluation threshold."""
    example(app)
    if not version.isdigit():
        raise UsageError(f"--version {version!r}: a version number")
    if env not in ENVIRONMENTS:
        raise UsageError(f"--env {env!r}: one of {', '.join(ENVIRONMENTS)}")
    if not registry:
        raise UsageError("no registry: pass --registry URL or set MLFLOW_TRACKING_URI")
    try:
        found = registry_gate.Registry(registry).version(app, version)
    except registry_gate.RegistryUnavailable as err:
        raise UsageError(str(err)) from None
    if found is None:
        raise UsageError(f"{app} has no version {version} in {registry_gate.redact(registry)}")
    tags = {t["key"]: t.get("value") or "" for t in found.get("tags") or []}
    try:
        current = promote.read_overlay(repo_root, app, env).version
    except (promote.UsageError, promote.Refused) as err:
        raise UsageError(str(err)) from None
    if current == version:
        raise NothingToPropose(f"{env} already runs {app} version {version}")
    branch = branch or f"{BRANCH_PREFIX}{app}-v{version}"
    git = _Git(repo_root)
    overlay = promote.overlay_path(repo_root, app, env).relative_to(repo_root)
    if git.run("status", "--porcelain", "--", str(overlay)):
        raise UsageError(f"{overlay} has uncommitted changes: commit or discard them first")
    if git.ok("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"):
        raise UsageError(f"branch {branch!r} already exists: name another with --branch")
    previous = git.where()
    git.run("switch", "--quiet", "-c", branch)
    try:
        message = promote.pin(repo_root, app, env, version, registry)
    except (promote.UsageError, promote.Refused) as err:
        git.abandon(branch, previous, str(overlay))
        if isinstance(err, promote.UsageError):
            raise UsageError(str(err)) from None
        raise Refused(str(err)) from None
    data_hash = tags.get(lineage.DATA_SHA256, "unrecorded")
    trigger = f"{tags.get(lineage.TRIGGER, 'unrecorded')} by {tags.get(lineage.TRIGGERED_BY, 'unrecorded')}"
    try:
        git.commit(
            str(overlay),
            f"{app}: run version {version} in {env} (retrained, trigger {trigger}, data sha256 {data_hash[:12]})"
            f"\n\n{message}",
        )
    except UsageError:
        git.abandon(branch, previous, str(overlay))  # else a re-run finds the branch and the edited overlay
        raise
    return branch, pr_body(app, version, env, tags)


def pr_body(app: str, version: str, env: str, tags: dict[str, str]) -> str:
    evaluation = {
        k: v
        for k, v in sorted(tags.items())
        if k.startswith("mlplat.evaluation") or k.startswith(registry_gate.METRIC_TAG_PREFIX)
    }
    return "\n".join(
        [
            f"## {app}: version {version} to {env}",
            "",
            f"Retrained by the pipeline; this changes `apps/{app}/overlays/{env}/model-version.yaml` only.",
            "",
            "### Lineage",
            *[f"- `{key}`: {tags.get(key, 'missing')}" for key in lineage.REQUIRED],
            f"- model card: `{tags.get(lineage.MODEL_CARD, 'missing')}` beside the model in the store",
            "",
            "### Evaluation",
            *[f"- `{k}`: {v}" for k, v in evaluation.items()],
            "",
            f"Proposes staging next: after this merges and {env} looks healthy, "
            f"`mlplat promote {app} --from {env} --to staging`. Prod still needs the owner's `approved` alias.",
            "",
        ]
    )


class _Git:
    """git in one work tree; a failing command is a UsageError naming it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if not self.ok("rev-parse", "--is-inside-work-tree"):
            raise UsageError(f"{root} is not a git work tree: propose commits on a branch")

    def ok(self, *args: str) -> bool:
        return subprocess.run(["git", "-C", str(self.root), *args], capture_output=True).returncode == 0

    def run(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.root), *args], capture_output=True, text=True, input=stdin
        )
        if done.returncode != 0:
            raise UsageError(f"git {' '.join(args)} failed in {self.root}: {done.stderr.strip()}")
        return done.stdout.strip()

    def commit(self, path: str, message: str) -> None:
        # A CI pod or a scratch copy may have no identity: the pipeline commits under its own name then.
        identity = (
            []
            if self.ok("config", "user.email")
            else ["-c", "user.name=mlplat retrain", "-c", "user.email=retrain@mlplat.invalid"]
        )
        self.run("add", "--", path)
        # The message on stdin, not in the arguments a failure is reported with: it says the promotion
        # happened, which a failed commit must not.
        self.run(*identity, "commit", "--quiet", "--file=-", "--", path, stdin=message)

    def where(self) -> list[str]:
        """What `git switch` takes to come back here: the branch checked out, or on a detached HEAD (a
        checkout of one commit, as CI and workflow artifacts make) `--detach` and the commit, since
        `rev-parse --abbrev-ref HEAD` says only "HEAD" there, which `git switch` refuses."""
        if self.ok("symbolic-ref", "--quiet", "HEAD"):
            return [self.run("symbolic-ref", "--quiet", "--short", "HEAD")]
        return ["--detach", self.run("rev-parse", "HEAD")]

    def abandon(self, branch: str, previous: list[str], path: str) -> None:
        """Undo a proposal that did not commit: `path` as HEAD has it (index and work tree), back where
        `previous` (from `where`) says, `branch` deleted."""
        self.run("restore", "--staged", "--worktree", "--", path)
        self.run("switch", "--quiet", *previous)
        self.run("branch", "--quiet", "-D", branch)
