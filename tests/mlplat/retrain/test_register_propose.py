"""register, propose and history against an embedded MLflow and a scratch git checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mlplat import example_models, model_store, registry_gate
from mlplat.monitoring import contract as monitoring_contract
from mlplat.monitoring import drift
from mlplat.monitoring.contract import REFERENCE_FILE
from mlplat.registry_gate import REPO
from mlplat.retrain import data, lineage
from tests.support.embedded_mlflow import Registry
from tests.support.inference_traffic import traffic

from .conftest import APP, register, run, trained

COMMIT = "d" * 40  # a commit id: low entropy (the secrets scan) and no placeholder account number
BY_HAND = ("--trigger", "manual", "--triggered-by", "someone")  # a run someone started, not the pipelines


def _version_tags(url: str, version: str) -> dict[str, str]:
    found = registry_gate.Registry(url).version(APP, version)
    assert found is not None
    return {t["key"]: t["value"] for t in found["tags"]}


def propose(version: str, registry: str, checkout: Path, *options: str) -> int:
    """`mlplat retrain propose` of the app's `version`, gated by `registry`, in `checkout`."""
    argv = ("retrain", "propose", APP, "--version", version, *options, "--registry", registry)
    return run(*argv, "--repo-root", str(checkout))


def git(checkout: Path, *args: str) -> str:
    """What git prints for `args` in `checkout`."""
    return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True).stdout


def _register(
    registry: Registry,
    fetched: Path,
    model: Path,
    scores: Path,
    commit: str,
    capsys: pytest.CaptureFixture[str],
) -> str:
    capsys.readouterr()
    code = register(
        model, scores, fetched, registry.url, "--trigger", "drift", "--triggered-by", "alert MlplatFeatureDrift",
        "--code-commit", commit, "--image-digest", "sha256:" + "b" * 64, "--parent-run", "run-0",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    return out.strip().splitlines()[-1]


@pytest.fixture
def store(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(model_store.ROOT_ENV, str(registry.store))
    return registry.store


DriftRun = Callable[..., str]


@pytest.fixture
def drift_run(
    registry: Registry, store: Path, fetched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> DriftRun:
    """The drift pipeline's train, evaluate and register steps with `commit` as the code commit (and
    evaluate's result replaced by `evaluation`, when given): the version that register printed."""

    def run_steps(commit: str, evaluation: dict[str, str] | None = None) -> str:
        model, scores = trained(fetched, tmp_path, evaluation)
        return _register(registry, fetched, model, scores, commit, capsys)

    return run_steps


def test_register_records_lineage_and_stores_the_model_card_with_the_version(
    registry: Registry, store: Path, fetched: Path, drift_run: DriftRun
) -> None:
    version = drift_run("2" * 40)
    tags = _version_tags(registry.url, version)
    record = json.loads((fetched / data.LINEAGE_FILE).read_text())
    assert lineage.missing(tags) == []
    assert tags[lineage.DATA_SHA256] == record["sha256"] and tags[lineage.DATA_URI] == record["uri"]
    assert tags[lineage.CODE_COMMIT] == "2" * 40 and tags[lineage.TRIGGER] == "drift"
    assert tags[registry_gate.EVALUATION_TAG] == registry_gate.EVALUATION_PASSED
    card = (store / APP / version / tags[lineage.MODEL_CARD]).read_text()
    assert record["sha256"] in card and "alert MlplatFeatureDrift" in card


def test_a_version_the_pipeline_registers_gets_a_drift_verdict(
    registry: Registry, store: Path, drift_run: DriftRun
) -> None:
    """The drift job finds a version's reference data through its mlplat.reference tag: register stored
    reference.csv but never tagged it, so every retrained version got "no verdict" and its drift and
    quality alerts could never fire."""
    version = drift_run("0b" * 20)
    contract = monitoring_contract.load(APP, REPO, "dev")
    target = drift.Target(APP, "dev", "models-core-ml", APP, "core-ml")
    records = traffic(example_models.iris_data().x_test, 200, version)
    (report,) = drift.run(target, records, contract, registry_gate.Registry(registry.url), store, REPO)
    assert report.verdict == "no drift", report.verdict


def test_register_of_a_model_without_its_reference_data_is_a_usage_error(
    registry: Registry, store: Path, fetched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version without reference data could never be judged for drift: refused before registering."""
    model, scores = trained(fetched, tmp_path)
    (model / REFERENCE_FILE).unlink()
    assert register(model, scores, fetched, registry.url, *BY_HAND) == 2
    err = capsys.readouterr().err
    assert f"--model {model}: no {REFERENCE_FILE} file" in err and "Traceback" not in err


def test_registering_the_same_data_and_code_again_returns_the_existing_version(
    registry: Registry, store: Path, fetched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, scores = trained(fetched, tmp_path)
    first = _register(registry, fetched, model, scores, "3" * 40, capsys)
    again = _register(registry, fetched, model, scores, "3" * 40, capsys)
    newer_code = _register(registry, fetched, model, scores, "4" * 40, capsys)
    assert again == first and int(newer_code) == int(first) + 1


def test_other_parameters_on_the_same_data_and_code_register_a_new_version(
    registry: Registry, store: Path, fetched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another estimator variant trained on the same data in the same image is another model: matched on
    data and code alone, register printed the old version, and propose pinned the old model."""
    newest = trained(fetched, tmp_path / "newest")
    first = _register(registry, fetched, *newest, "0a" * 20, capsys)
    oldest = trained(fetched, tmp_path / "oldest", params='{"variant": 1}')
    other = _register(registry, fetched, *oldest, "0a" * 20, capsys)
    assert int(other) == int(first) + 1
    assert json.loads(_version_tags(registry.url, other)[lineage.PARAMS]) == {"variant": 1}
    assert _register(registry, fetched, *oldest, "0a" * 20, capsys) == other


def test_a_rerun_after_main_moved_registers_nothing_new_for_the_same_image_and_data(
    registry: Registry,
    store: Path,
    fetched: Path,
    scratch: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On the cluster `register` clones main, which moves with every merge (the promotion pull request
    of the last run included): the training code is the image's commit, so the scheduled rerun on the
    same data finds the version it made instead of registering a copy."""
    monkeypatch.setenv(lineage.CODE_COMMIT_ENV, "6" * 40)
    model, scores = trained(fetched, tmp_path)

    def scheduled_run() -> str:
        capsys.readouterr()
        code = register(
            model, scores, fetched, registry.url,
            "--trigger", "schedule", "--triggered-by", "cronworkflow/retrain-iris-classifier", "--repo-root", str(scratch),
        )  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, out
        return out.strip().splitlines()[-1]

    first = scheduled_run()
    (scratch / "merged.txt").write_text("the promotion pull request merged\n")
    for args in (
        ["add", "merged.txt"],
        ["-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "m"],
    ):
        subprocess.run(["git", "-C", str(scratch), *args], check=True, capture_output=True)
    assert scheduled_run() == first
    assert _version_tags(registry.url, first)[lineage.CODE_COMMIT] == "6" * 40


def test_a_version_trained_in_the_image_never_claims_it_was_trained_outside_a_container(
    registry: Registry,
    store: Path,
    fetched: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The pipelines pin the image by tag and pass no --image-digest: the tag says so, not "none"."""
    monkeypatch.setenv(lineage.CODE_COMMIT_ENV, "8" * 40)
    model, scores = trained(fetched, tmp_path)
    capsys.readouterr()
    code = register(model, scores, fetched, registry.url, *BY_HAND)
    out = capsys.readouterr().out
    assert code == 0, out
    digest = _version_tags(registry.url, out.strip().splitlines()[-1])[lineage.IMAGE_DIGEST]
    assert digest != lineage.NO_IMAGE and digest.startswith("unrecorded"), digest


def test_register_prints_only_the_version_which_the_workflow_hands_to_propose(
    registry: Registry, store: Path, fetched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The step's whole stdout becomes `{{steps.register.outputs.result}}`: `propose --version` and the
    branch name. A "View run ... at" line from MLflow's client there fails every run at `propose`."""
    model, scores = trained(fetched, tmp_path)
    capsys.readouterr()
    code = register(model, scores, fetched, registry.url, *BY_HAND, "--code-commit", "9" * 40)
    out = capsys.readouterr().out
    assert code == 0 and out.strip().isdigit(), repr(out)


def test_register_refuses_an_evaluation_file_that_is_not_evaluate_output(
    registry: Registry, store: Path, fetched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, scores = trained(
        fetched, tmp_path, {"mlplat.evaluation": "passed", "mlplat.metric.accuracy": "inf"}
    )
    code = register(model, scores, fetched, registry.url, *BY_HAND)
    assert code == 2
    assert "--evaluation" in capsys.readouterr().err


def test_a_version_below_the_dev_threshold_is_registered_but_propose_refuses_it(
    registry: Registry, drift_run: DriftRun, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    low = {registry_gate.EVALUATION_TAG: "failed", registry_gate.METRIC_TAG_PREFIX + "accuracy": "0.5"}
    version = drift_run("5" * 40, low)
    head = git(scratch, "rev-parse", "HEAD")
    code = propose(version, registry.url, scratch)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "MLP-REGISTRY-EVALUATION" in err
    assert git(scratch, "rev-parse", "HEAD") == head
    assert git(scratch, "branch", "--list", "retrain/*") == ""


def test_a_refused_proposal_from_a_detached_checkout_goes_back_to_its_commit_and_says_why(
    registry: Registry, drift_run: DriftRun, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a detached HEAD the branch to return to was the literal "HEAD": the clean-up's `git switch
    HEAD` failed, the gate's refusal became exit 2 "git switch ... failed", and the checkout stayed on
    retrain/<app>-v<N>, so a re-run failed on "branch already exists"."""
    low = {registry_gate.EVALUATION_TAG: "failed", registry_gate.METRIC_TAG_PREFIX + "accuracy": "0.5"}
    version = drift_run("f0" * 20, low)  # a commit no other test registers: the registry is shared
    head = git(scratch, "rev-parse", "HEAD")
    git(scratch, "switch", "--quiet", "--detach", head.strip())
    code = propose(version, registry.url, scratch)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "MLP-REGISTRY-EVALUATION" in err
    assert git(scratch, "rev-parse", "HEAD") == head
    assert git(scratch, "symbolic-ref", "--quiet", "HEAD") == "", "not detached any more"
    assert git(scratch, "branch", "--list", "retrain/*") == ""


def test_propose_of_a_version_the_registry_lacks_never_shows_the_registrys_password(
    registry: Registry, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal printed the registry URL as given, password and all, into CI logs."""
    with_password = registry.url.replace("http://", "http://bot:S3cretPW@")  # pragma: allowlist secret
    assert propose("97", with_password, scratch) == 2
    err = capsys.readouterr().err
    assert "has no version 97 in http://***@" in err and "S3cretPW" not in err, err


def test_propose_commits_the_promotion_on_a_branch_and_history_shows_the_chain(
    registry: Registry, fetched: Path, drift_run: DriftRun, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = drift_run(COMMIT)
    code = propose(version, registry.url, scratch)
    out = capsys.readouterr().out
    assert code == 0
    branch = f"retrain/{APP}-v{version}"
    assert f"branch: {branch}" in out and "Proposes staging next" in out
    subject = git(scratch, "log", "-1", "--format=%s", branch)
    sha = json.loads((fetched / data.LINEAGE_FILE).read_text())["sha256"]
    assert f"version {version}" in subject and "drift" in subject and sha[:12] in subject
    overlay = scratch / "apps" / APP / "overlays" / "dev" / "model-version.yaml"
    assert f'mlplat/model-version: "{version}"' in overlay.read_text()

    assert run("history", APP, "--env", "dev", "--registry", registry.url, "--repo-root", str(scratch)) == 0
    chain = capsys.readouterr().out
    commit = git(scratch, "log", "-1", "--format=%h", branch).strip()
    assert f"dev: {APP} v{version}" in chain and "drift by alert MlplatFeatureDrift" in chain
    assert sha in chain and COMMIT in chain and f"by: {commit}" in chain
    assert "Argo CD synced commit: not known offline" in chain


def test_a_rerun_whose_version_dev_already_runs_proposes_nothing_and_succeeds(
    registry: Registry, drift_run: DriftRun, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The next run on the same data and code gets the same version back from `register`; once its
    promotion merged, `propose` has nothing to commit. That is success, not a failed run every week."""
    version = drift_run("7" * 40)
    assert propose(version, registry.url, scratch) == 0  # the first run's promotion, on the checkout now
    capsys.readouterr()
    head = git(scratch, "rev-parse", "HEAD")
    assert propose(version, registry.url, scratch, "--branch", "retrain/again") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"nothing to propose: dev already runs {APP} version {version}"), out
    assert git(scratch, "rev-parse", "HEAD") == head
    assert git(scratch, "branch", "--list", "retrain/again") == ""


def test_propose_to_an_existing_branch_is_a_usage_error(
    registry: Registry, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subprocess.run(["git", "-C", str(scratch), "branch", "taken"], check=True)
    # Version 1: dev runs 2, which propose would answer with "nothing to propose" first.
    assert propose("1", registry.url, scratch, "--branch", "taken") == 2
    assert "already exists" in capsys.readouterr().err


def test_history_without_a_registry_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert run("history", APP) == 2
    assert "no registry" in capsys.readouterr().err


def test_register_outside_a_git_checkout_without_code_commit_is_a_usage_error(
    registry: Registry, store: Path, fetched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, scores = trained(fetched, tmp_path)
    tree = tmp_path / "image"  # the repository's files as an image holds them, without .git
    (tree / "apps" / APP).mkdir(parents=True)
    shutil.copy(REPO / "apps" / APP / "evaluation.yaml", tree / "apps" / APP)
    code = register(
        model,
        scores,
        fetched,
        registry.url,
        "--trigger",
        "schedule",
        "--triggered-by",
        "cron",
        "--repo-root",
        str(tree),
    )
    assert code == 2
    assert "pass --code-commit" in capsys.readouterr().err


def test_propose_to_an_unknown_environment_is_refused_before_any_branch_is_made(
    scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert propose("2", "http://127.0.0.1:9", scratch, "--env", "qa") == 2
    assert "--env 'qa': one of dev, staging, prod" in capsys.readouterr().err
    assert git(scratch, "branch", "--format=%(refname:short)").split() == ["main"]


def test_a_propose_whose_commit_fails_leaves_the_checkout_as_it_was_and_a_rerun_proposes(
    registry: Registry, drift_run: DriftRun, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seen before: the branch made and the overlay pinned stayed after a refused commit (a signing or
    hook failure), the error said dev now ran the version, and every re-run failed on the branch."""
    version = drift_run("9" * 40)
    hook = scratch / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho refused by hook >&2\nexit 1\n")
    hook.chmod(0o755)
    head = git(scratch, "rev-parse", "HEAD")
    capsys.readouterr()
    assert propose(version, registry.url, scratch) == 2
    err = capsys.readouterr().err
    assert "refused by hook" in err and "now runs" not in err, err
    assert git(scratch, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert git(scratch, "rev-parse", "HEAD") == head
    assert git(scratch, "status", "--porcelain") == "", "the pinned overlay was left behind"
    assert git(scratch, "branch", "--list", "retrain/*") == ""
    hook.unlink()
    assert propose(version, registry.url, scratch) == 0
