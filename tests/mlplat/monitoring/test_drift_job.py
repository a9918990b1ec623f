"""The drift job on the example iris app: no drift on traffic like the training data, drift on shifted
traffic, quality from late labels, and the exact metric names the alert rules read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlplat import example_models, registry_gate
from mlplat.monitoring import contract as contract_file
from mlplat.monitoring import drift, metrics
from mlplat.monitoring.contract import PREDICTION_COLUMN, REFERENCE_FILE, REFERENCE_TAG
from mlplat.monitoring.records import REQUEST, RESPONSE, VERSION_ANNOTATION, LogRecord
from mlplat.promote import REPO
from tests.support.fake_mlflow import FakeRegistry, serve
from tests.support.inference_traffic import FEATURES, classify, traffic

APP = "iris-classifier"
TARGET = drift.Target(APP, "dev", "models-core-ml", APP, "core-ml")


@pytest.fixture(scope="module")
def data() -> example_models.Dataset:
    return example_models.iris_data()


@pytest.fixture
def store(tmp_path: Path, data: example_models.Dataset) -> Path:
    folder = tmp_path / "store" / APP / "1"
    folder.mkdir(parents=True)
    data.x_train.assign(**{PREDICTION_COLUMN: classify(data.x_train)}).to_csv(
        folder / REFERENCE_FILE, index=False
    )
    return tmp_path / "store"


@pytest.fixture
def registry() -> Iterator[registry_gate.Registry]:
    fake = FakeRegistry()
    fake.add_version(APP, "1", source=f"s3://mlplat-models/{APP}/1", tags={REFERENCE_TAG: REFERENCE_FILE})
    fake.add_version(APP, "2", source=f"s3://mlplat-models/{APP}/2", tags={})  # registered without reference
    with serve(fake):
        yield registry_gate.Registry(fake.url)


def normal(data: example_models.Dataset, n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sample = data.x_test.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    return sample + rng.normal(0, 0.05, sample.shape)


def shifted(data: example_models.Dataset) -> pd.DataFrame:
    frame = normal(data)
    return frame.assign(petal_length=frame["petal_length"] + 2.5, petal_width=frame["petal_width"] + 1.0)


def judge(
    records: list[LogRecord], store: Path, registry: registry_gate.Registry, labels: Path | None = None
) -> list[drift.VersionReport]:
    contract = contract_file.load(APP, REPO, "dev")
    return drift.run(TARGET, records, contract, registry, store, REPO, labels)


def test_traffic_like_the_training_data_is_not_drift(
    data: example_models.Dataset, store: Path, registry: registry_gate.Registry
) -> None:
    (report,) = judge(traffic(normal(data), 200), store, registry)
    assert report.verdict == "no drift" and report.drifted == [], report.feature_scores
    assert report.rows == 600


def test_shifted_petals_are_drift_on_exactly_those_features(
    data: example_models.Dataset, store: Path, registry: registry_gate.Registry
) -> None:
    (report,) = judge(traffic(shifted(data), 200), store, registry)
    assert report.verdict == "drift" and report.dataset_drift
    assert report.drifted == ["petal_length", "petal_width"]
    assert report.prediction_share["2"] > report.reference_prediction_share["2"]  # predictions moved too


def test_too_few_rows_give_no_verdict_rather_than_a_false_alarm(
    data: example_models.Dataset, store: Path, registry: registry_gate.Registry
) -> None:
    (report,) = judge(traffic(shifted(data), 10), store, registry)
    assert (
        report.verdict.startswith("no verdict") and report.feature_scores == {} and not report.dataset_drift
    )


def test_quality_is_measured_on_rows_whose_labels_arrived(
    data: example_models.Dataset, store: Path, registry: registry_gate.Registry, tmp_path: Path
) -> None:
    records = traffic(normal(data), 200)
    labels = tmp_path / "labels" / TARGET.namespace / TARGET.isvc
    labels.mkdir(parents=True)
    for record in records[:100:2]:  # labels for 50 requests; every other one is wrong on its first row
        predicted = json.loads(records[records.index(record) + 1].body)["outputs"][0]["data"]
        truth = [
            (predicted[0] + 1) % 3 if int(record.id.rsplit("-", 1)[1]) % 2 else predicted[0],
            *predicted[1:],
        ]
        (labels / f"{record.id}.json").write_text(json.dumps({"labels": truth}))
    (report,) = judge(records, store, registry, tmp_path / "labels")
    assert report.labelled_rows == 150
    assert report.quality == pytest.approx(1 - 25 / 150)
    assert report.quality_threshold == registry_gate.load_evaluation(APP).thresholds["dev"]


def test_each_version_is_judged_against_its_own_reference(
    data: example_models.Dataset, store: Path, registry: registry_gate.Registry
) -> None:
    v1, v2 = judge(traffic(normal(data), 200) + traffic(normal(data), 200, version="2"), store, registry)
    assert v1.verdict == "no drift"  # a version without reference data does not blind the others
    assert v2.verdict.startswith("no verdict") and "v2 has no mlplat.reference tag" in v2.verdict


def test_refused_and_malformed_requests_are_skipped_not_fatal(
    data: example_models.Dataset, store: Path, registry: registry_gate.Registry
) -> None:
    good = traffic(normal(data), 200)
    unanswered = [r for r in traffic(normal(data), 5, version="1") if r.req_type == REQUEST]
    unanswered = [
        LogRecord(id=f"lost-{i}", req_type=REQUEST, body=r.body, annotations=r.annotations)
        for i, r in enumerate(unanswered)
    ]
    missing = LogRecord(id="partial", req_type=REQUEST, body=b'{"inputs": [{"name": "sepal_length", "data": [1.0]}]}',
                        annotations={VERSION_ANNOTATION: "1"})  # fmt: skip
    answer = LogRecord(id="partial", req_type=RESPONSE, body=b'{"outputs": [{"name": "p", "data": [0]}]}',
                       annotations={VERSION_ANNOTATION: "1"})  # fmt: skip
    (report,) = judge(good + unanswered + [missing, answer], store, registry)
    assert report.skipped_requests == 6 and report.rows == 600 and report.verdict == "no drift"


def test_integer_and_text_values_in_a_feature_do_not_stop_the_job(
    data: example_models.Dataset, store: Path, registry: registry_gate.Registry
) -> None:
    rows = normal(data).round(0).astype(int).astype(object)
    rows.loc[::7, "sepal_width"] = "n/a"
    (report,) = judge(traffic(rows, 200), store, registry)
    assert set(report.feature_scores) == set(FEATURES)


def test_prediction_labels_stay_within_the_reference_classes(
    data: example_models.Dataset, store: Path, registry: registry_gate.Registry
) -> None:
    records = traffic(normal(data), 200)
    odd = json.dumps({"outputs": [{"name": "predict", "data": ["attacker-chosen", 1, 2]}]}).encode()
    records[1] = LogRecord(id=records[1].id, req_type=RESPONSE, body=odd, annotations=records[1].annotations)
    (report,) = judge(records, store, registry)
    assert set(report.prediction_share) <= {"0", "1", "2", "other"} and "other" in report.prediction_share


def test_records_without_a_version_cannot_be_judged(
    data: example_models.Dataset, store: Path, registry: registry_gate.Registry
) -> None:
    records = [LogRecord(id=r.id, req_type=r.req_type, body=r.body) for r in traffic(normal(data), 200)]
    with pytest.raises(drift.DriftJobError, match="metadataAnnotations"):
        judge(records, store, registry)


def published(
    reports: list[drift.VersionReport], tmp_path: Path
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What the job publishes for `reports`, read back from the text format: (name, labels) -> value."""
    out = tmp_path / "drift.prom"
    contract = contract_file.load(APP, REPO, "dev")
    drift.publish(TARGET, drift.exposition(TARGET, contract, reports, now=1.0), None, out)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out.read_text())
        for s in family.samples
    }


def test_published_series_carry_the_names_and_labels_the_rules_read(
    data: example_models.Dataset, store: Path, registry: registry_gate.Registry, tmp_path: Path
) -> None:
    samples = published(judge(traffic(shifted(data), 200), store, registry), tmp_path)
    who = TARGET.identity("1")

    def value(metric: metrics.Metric, **labels: str) -> float:
        return samples[(metric.name, tuple(sorted({**who, **labels}.items())))]

    assert value(metrics.FEATURE_DRIFT, feature="petal_length", method="wasserstein") > 0.3
    assert value(metrics.FEATURE_DRIFT_THRESHOLD, method="wasserstein") == 0.3
    assert value(metrics.DRIFTED_SHARE) == 0.5
    assert value(metrics.DRIFTED_SHARE_THRESHOLD) == 0.5
    assert value(metrics.MONITORED_ROWS) == 600
    assert value(metrics.LAST_RUN) == 1.0
    assert {name for name, _ in samples} <= {m.name for m in metrics.ALL}


def test_empty_window_publishes_nothing_and_exits_2(
    registry: registry_gate.Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Publishing an empty group would erase the last-run time ModelMonitoringStale watches.
    from mlplat import cli

    (tmp_path / "logs").mkdir()
    textfile = tmp_path / "drift.prom"
    argv = ["monitor", "drift", APP, "--env", "dev", "--logs", str(tmp_path / "logs")]
    code = cli.main([*argv, "--registry", registry.url, "--textfile", str(textfile)])
    assert code == 2 and not textfile.exists()
    assert "no records" in capsys.readouterr().err


def test_a_version_without_reference_data_is_published_as_having_no_verdict(
    data: example_models.Dataset, store: Path, registry: registry_gate.Registry, tmp_path: Path
) -> None:
    """Only its last-run time was published: the version looked judged, and no series existed for an
    alert to say that its drift and quality are never judged (ModelMonitoringNoVerdict)."""
    reports = judge(traffic(normal(data), 200) + traffic(normal(data), 200, version="2"), store, registry)
    no_verdict = {
        dict(labels)["model_version"]: (dict(labels)["reason"], value)
        for (name, labels), value in published(reports, tmp_path).items()
        if name == metrics.NO_VERDICT.name
    }
    assert no_verdict == {"2": (metrics.NO_REFERENCE, 1.0)}


def test_the_job_names_the_alert_a_version_without_reference_data_raises(
    data: example_models.Dataset,
    store: Path,
    registry: registry_gate.Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`mlplat monitor drift` says which alerts its scores fire; a version it cannot judge fires one too."""
    from mlplat import cli
    from mlplat.monitoring.records import dump_batch

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "batch.json").write_bytes(dump_batch(traffic(normal(data), 200, version="2")))
    argv = ["monitor", "drift", APP, "--env", "dev", "--logs", str(logs), "--registry", registry.url]
    code = cli.main(
        [*argv, "--model-store", str(store), "--textfile", str(tmp_path / "d.prom"), "--format", "json"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    (version,) = json.loads(out)["versions"]
    assert version["version"] == "2" and version["alerts"] == ["ModelMonitoringNoVerdict"]
