"""fetch, train and evaluate: their outputs and every way their input can be wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlplat import example_models, registry_gate
from mlplat.retrain import data, publish, steps
from tests.support.file_events import mirrored

from .conftest import APP, run


def train_with_checkpoint(data_dir: Path, out: Path, checkpoint: Path) -> int:
    """`mlplat retrain train` as the pipeline's train step runs it, with its checkpoint folder."""
    return run(
        "retrain",
        "train",
        APP,
        "--data",
        str(data_dir),
        "--out",
        str(out),
        "--checkpoint-dir",
        str(checkpoint),
    )


def refit(*args: object) -> None:
    """example_models.fit where a test expects the checkpoint to be resumed."""
    raise AssertionError("fitted again although the checkpoint holds the fitted model")


def test_fetch_records_the_content_hash_and_rows_of_the_data(fetched: Path, source: Path) -> None:
    record = json.loads((fetched / data.LINEAGE_FILE).read_text())
    files = {name: (source / name).read_bytes() for name in data.DATA_FILES}
    assert record == {
        "uri": source.resolve().as_uri(),
        "sha256": data.content_hash(files),
        "rows": {"train": 105, "test": 45},
    }


def test_fetch_of_a_folder_without_its_test_split_is_a_usage_error(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (source / data.TEST_FILE).unlink()
    assert run("retrain", "fetch", APP, "--source", str(source), "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert f"{source / data.TEST_FILE}: missing" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("uri", "why"),
    [("gs://bucket/iris", "expected a local folder or an s3://"), ("s3:///iris", "needs a bucket")],
)
def test_fetch_of_an_unusable_uri_is_a_usage_error(
    uri: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("retrain", "fetch", APP, "--source", uri, "--out", str(tmp_path / "out")) == 2
    assert why in capsys.readouterr().err


def test_fetch_of_a_table_without_labels_is_refused_before_training(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (source / data.TRAIN_FILE).write_text("sepal_length,sepal_width\n1,2\n")
    assert run("retrain", "fetch", APP, "--source", str(source), "--out", str(tmp_path / "out")) == 2
    assert "a 'label' column" in capsys.readouterr().err


@pytest.mark.parametrize("step", ["fetch", "train"])
def test_an_app_without_a_training_recipe_is_a_usage_error(
    step: str, fetched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ["--source", str(fetched)] if step == "fetch" else ["--data", str(fetched)]
    assert run("retrain", step, "llm-chat", *options, "--out", str(tmp_path / "out")) == 2
    assert "has no training recipe" in capsys.readouterr().err


def test_data_changed_after_fetch_is_refused_by_train(
    fetched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (fetched / data.TRAIN_FILE).open("a") as table:
        table.write("5.0,3.0,1.0,0.2,0\n")
    assert run("retrain", "train", APP, "--data", str(fetched), "--out", str(tmp_path / "model")) == 2
    assert "no longer match the sha256" in capsys.readouterr().err


@pytest.mark.parametrize("params", ["{", '{"variant": 3}', '{"max_depth": 2}', '{"variant": true}'])
def test_malformed_training_parameters_are_a_usage_error(
    params: str, fetched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        "retrain", "train", APP, "--data", str(fetched), "--out", str(tmp_path / "m"), "--params", params
    )
    assert code == 2
    assert "--params" in capsys.readouterr().err


def test_a_rerun_after_an_interruption_resumes_from_the_checkpoint_instead_of_refitting(
    fetched: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint, out = tmp_path / "checkpoint", tmp_path / "model"
    assert train_with_checkpoint(fetched, out, checkpoint) == 0
    first = (out / "model.skops").read_bytes()
    (out / "MLmodel").unlink()  # the pod died after fitting: the artifact never left it

    monkeypatch.setattr(example_models, "fit", refit)
    assert train_with_checkpoint(fetched, out, checkpoint) == 0
    assert (out / "model.skops").read_bytes() == first and (out / "MLmodel").is_file()
    assert json.loads((out / steps.PARAMS_FILE).read_text()) == {"variant": 2}


def test_a_checkpoint_that_reached_the_bucket_by_file_events_is_resumed(
    fetched: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the cluster the next attempt gets what `mc mirror --watch` uploaded: files on their own close or
    rename events, never a folder. The model was built in a temp folder and renamed into place, so only
    the stamp reached the bucket and every retry after a spot interruption fitted again."""
    checkpoint, bucket, first = tmp_path / "checkpoint", tmp_path / "bucket", tmp_path / "first"
    checkpoint.mkdir()  # kubelet creates the sidecar's subPath before the containers start
    with mirrored(checkpoint, bucket):
        assert train_with_checkpoint(fetched, first, checkpoint) == 0
    monkeypatch.setattr(example_models, "fit", refit)
    out = tmp_path / "model"
    assert train_with_checkpoint(fetched, out, bucket) == 0
    assert publish.version_files(out) == publish.version_files(first)


@pytest.mark.parametrize("damage", ["missing", "cut short"])
def test_a_checkpoint_without_every_file_its_stamp_lists_is_fitted_again(
    damage: str, fetched: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mirror uploads in parallel, so the stamp can reach the bucket before a model file does; and a
    write the interruption cut short is closed, so uploaded, too."""
    checkpoint = tmp_path / "checkpoint"
    assert train_with_checkpoint(fetched, tmp_path / "first", checkpoint) == 0
    model = checkpoint / "model.skops"
    if damage == "missing":
        model.unlink()
    else:
        model.write_bytes(model.read_bytes()[:100])
    fitted: list[int] = []
    real_fit = example_models.fit
    monkeypatch.setattr(example_models, "fit", lambda ex, v, x, y: fitted.append(v) or real_fit(ex, v, x, y))
    assert train_with_checkpoint(fetched, tmp_path / "model", checkpoint) == 0
    assert fitted == [2] and (tmp_path / "model" / "model.skops").is_file()


def test_a_checkpoint_of_other_parameters_is_not_resumed(
    fetched: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint, out = tmp_path / "checkpoint", tmp_path / "model"
    assert train_with_checkpoint(fetched, out, checkpoint) == 0
    fitted: list[int] = []
    real_fit = example_models.fit
    monkeypatch.setattr(example_models, "fit", lambda ex, v, x, y: fitted.append(v) or real_fit(ex, v, x, y))
    args = ["--out", str(out), "--checkpoint-dir", str(checkpoint), "--params", '{"variant": 1}']
    assert run("retrain", "train", APP, "--data", str(fetched), *args) == 0
    assert fitted == [1]


def test_evaluate_writes_the_tags_the_registry_gate_reads(fetched: Path, tmp_path: Path) -> None:
    model, out = tmp_path / "model", tmp_path / "evaluation.json"
    assert run("retrain", "train", APP, "--data", str(fetched), "--out", str(model)) == 0
    assert (
        run("retrain", "evaluate", APP, "--model", str(model), "--data", str(fetched), "--out", str(out)) == 0
    )
    tags = json.loads(out.read_text())
    assert tags[registry_gate.EVALUATION_TAG] == registry_gate.EVALUATION_PASSED
    assert (
        float(tags[registry_gate.METRIC_TAG_PREFIX + "accuracy"])
        >= registry_gate.load_evaluation(APP).thresholds["dev"]
    )


def test_evaluate_signs_off_an_app_that_does_not_deploy_to_dev_against_its_first_environment(
    fetched: Path, scratch: Path, tmp_path: Path
) -> None:
    """An app with no dev overlay owes no dev threshold: evaluate crashed with KeyError 'dev' instead of
    judging the version by the bar of the first environment it deploys to."""
    shutil.rmtree(scratch / "apps" / APP / "overlays" / "dev")
    (scratch / "apps" / APP / "evaluation.yaml").write_text(
        "metric: accuracy\nthresholds: {staging: 0.0, prod: 1.01}\n"  # only staging's bar can be met
    )
    model, out = tmp_path / "model", tmp_path / "evaluation.json"
    assert run("retrain", "train", APP, "--data", str(fetched), "--out", str(model)) == 0
    argv = ["--model", str(model), "--data", str(fetched), "--out", str(out), "--repo-root", str(scratch)]
    assert run("retrain", "evaluate", APP, *argv) == 0
    assert json.loads(out.read_text())[registry_gate.EVALUATION_TAG] == registry_gate.EVALUATION_PASSED


def test_evaluate_of_a_folder_that_is_no_model_is_a_usage_error(
    fetched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "evaluation.json"
    assert (
        run("retrain", "evaluate", APP, "--model", str(fetched), "--data", str(fetched), "--out", str(out))
        == 2
    )
    err = capsys.readouterr().err
    assert "not an MLflow model" in err and "Traceback" not in err


def _stubbed_s3(monkeypatch: pytest.MonkeyPatch, objects: dict[str, bytes]) -> None:
    """boto3's S3 client answering GetObject from `objects` (key -> body), NoSuchKey for anything else."""
    import io

    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    for name in data.DATA_FILES:
        key = f"iris/2026-12-01/{name}"
        if key in objects:
            body = StreamingBody(io.BytesIO(objects[key]), len(objects[key]))
            stubber.add_response("get_object", {"Body": body}, {"Bucket": "training", "Key": key})
        else:
            stubber.add_client_error("get_object", "NoSuchKey", http_status_code=404)
            break
    stubber.activate()
    monkeypatch.setattr(boto3, "client", lambda service: client)


def test_fetch_from_s3_hashes_the_objects_like_local_files(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {name: (source / name).read_bytes() for name in data.DATA_FILES}
    _stubbed_s3(monkeypatch, {f"iris/2026-12-01/{n}": b for n, b in files.items()})
    uri = "s3://training/iris/2026-12-01"
    assert run("retrain", "fetch", APP, "--source", uri, "--out", str(tmp_path / "out")) == 0
    record = json.loads((tmp_path / "out" / data.LINEAGE_FILE).read_text())
    assert record["uri"] == uri and record["sha256"] == data.content_hash(files)


def test_fetch_of_a_missing_s3_object_names_it(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stubbed_s3(monkeypatch, {"iris/2026-12-01/train.csv": (source / data.TRAIN_FILE).read_bytes()})
    code = run(
        "retrain", "fetch", APP, "--source", "s3://training/iris/2026-12-01", "--out", str(tmp_path / "o")
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot read s3://training/iris/2026-12-01/test.csv: NoSuchKey" in err and "Traceback" not in err
