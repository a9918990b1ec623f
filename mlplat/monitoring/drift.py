"""The drift job: logged inputs against the served version's reference data, published as metrics.

For each model version found in a window of stored log records, the job rebuilds the rows the model
received (V2 `inputs`, one value per row), pairs them with the predictions of the matching responses
(same request id), and compares the app's `features` with the reference sample saved beside that
version in the model store at training time (`reference.csv`, named by the version's
`mlplat.reference` registry tag). Drift per feature is scored by Evidently (Apache-2.0; telemetry off) with the app's method;
quality is the app's evaluation metric on rows whose ground-truth labels have arrived under
`<labels>/<namespace>/<isvc>/<request id>.json` (`{"labels": [...]}`, one per row). Everything is
published under the names in `metrics.py`, to a Pushgateway or a text file.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplat import model_store, registry_gate
from mlplat.monitoring import metrics
from mlplat.monitoring.contract import PREDICTION_COLUMN, REFERENCE_TAG, MonitoringContract
from mlplat.monitoring.records import REQUEST, SAFE_ID, LogRecord, RecordError, v2_columns

# Evidently reports usage unless DO_NOT_TRACK is set (evidently/telemetry.py, 0.7.x); the job never does.
os.environ.setdefault("DO_NOT_TRACK", "1")


class DriftJobError(Exception):
    """The job cannot judge: no reference data, an unknown version, unreadable records."""


@dataclass(frozen=True)
class Target:
    """Which InferenceService the records belong to, as the serving alerts label it."""

    app: str
    env: str
    namespace: str
    isvc: str
    team: str

    def identity(self, version: str) -> dict[str, str]:
        return {
            "namespace": self.namespace,
            "isvc": self.isvc,
            "team": self.team,
            "model": self.app,
            "model_version": version,
        }


@dataclass
class Window:
    """The rows one model version received, with their predictions and request ids."""

    columns: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    predictions: list[Any] = field(default_factory=list)
    row_ids: list[tuple[str, int]] = field(default_factory=list)  # (request id, row within the request)
    skipped: int = 0  # requests not answered, or without the features

    @property
    def rows(self) -> int:
        return len(self.row_ids)


@dataclass(frozen=True)
class VersionReport:
    version: str
    rows: int
    feature_scores: dict[str, float]
    drifted: list[str]
    drifted_share: float
    dataset_drift: bool
    prediction_share: dict[str, float]
    reference_prediction_share: dict[str, float]
    quality: float | None
    quality_threshold: float | None
    registry_evaluation: float | None  # what the version scored when it was evaluated
    metric: str  # the app's evaluation metric (evaluation.yaml), the label of the quality series
    labelled_rows: int
    skipped_requests: int
    verdict: str  # "drift", "no drift", or why no verdict was given
    no_verdict: str | None  # None when judged, else one of metrics' no-verdict reasons


def windows(records: Iterable[LogRecord], features: list[str]) -> dict[str, Window]:
    """Rows per model version, from requests the model answered.

    KServe's agent logs a request before the model sees it and its response only on HTTP 200
    (pkg/logger/handler.go), so a request without a response was refused or never answered: it is
    counted as skipped, like a request that lacks a feature or is not a V2 body. One bad request
    never stops the verdict on the others.
    """
    requests: dict[str, LogRecord] = {}
    responses: dict[str, LogRecord] = {}
    for record in records:
        (requests if record.req_type == REQUEST else responses)[record.id] = record
    by_version: dict[str, Window] = defaultdict(Window)
    for request_id, request in sorted(requests.items()):
        window = by_version[request.model_version]
        rows = _rows(request, responses.get(request_id), features)
        if rows is None:
            window.skipped += 1
            continue
        inputs, predictions = rows
        for feature in features:
            window.columns[feature].extend(inputs[feature])
        window.row_ids.extend((request_id, i) for i in range(len(predictions)))
        window.predictions.extend(predictions)
    return dict(by_version)


def _rows(
    request: LogRecord, response: LogRecord | None, features: list[str]
) -> tuple[dict[str, list[Any]], list[Any]] | None:
    """(feature columns, predictions) of one answered request, or None when it cannot be used."""
    if response is None:
        return None
    try:
        inputs = v2_columns(request.body, "inputs", f"request {request.id}")
        outputs = v2_columns(response.body, "outputs", f"response {response.id}")
    except RecordError:
        return None
    if any(f not in inputs for f in features):
        return None
    lengths = {len(inputs[f]) for f in features}
    predictions = next(iter(outputs.values()), [])
    if len(lengths) != 1 or lengths != {len(predictions)}:
        return None
    return {f: inputs[f] for f in features}, predictions


def registered_tags(registry: registry_gate.Registry, app: str, version: str) -> dict[str, Any]:
    """The version's registry tags, with its source under `__source__`."""
    registered = registry.version(app, version)
    if registered is None:
        raise DriftJobError(f"{app} v{version} is not in the registry {registry.url}")
    tags = {t["key"]: t.get("value") for t in registered.get("tags") or []}
    return {**tags, "__source__": registered.get("source")}


def reference_for(tags: dict[str, Any], app: str, version: str, store_root: Path) -> Any:
    """The version's reference sample (a DataFrame), found through the registry like the manifest's model."""
    import pandas as pd

    name = tags.get(REFERENCE_TAG)
    if not name:
        raise DriftJobError(
            f"{app} v{version} has no {REFERENCE_TAG} tag: it was registered without reference data"
        )
    try:
        path = model_store.to_local(str(tags["__source__"]), store_root) / name
        return pd.read_csv(path)
    except (model_store.ModelStoreError, OSError, ValueError) as err:
        raise DriftJobError(f"{app} v{version}: reference data {name!r} cannot be read: {err}") from None


def feature_scores(current: Any, reference: Any, contract: MonitoringContract) -> dict[str, float]:
    """The drift score of each feature, computed by Evidently with the app's method.

    Every feature is declared numerical: Evidently would otherwise take a column of few distinct
    integers for a category, which the distance methods refuse; a value that is not a number is
    missing, not a reason to stop.
    """
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    definition = DataDefinition(numerical_columns=list(contract.features))

    def numeric(frame: Any) -> Any:
        return Dataset.from_pandas(
            pd.DataFrame(
                {f: pd.to_numeric(frame[f], errors="coerce").astype(float) for f in contract.features}
            ),
            data_definition=definition,
        )

    report = Report(
        [
            ValueDrift(column=f, method=contract.drift.method, threshold=contract.drift.threshold)
            for f in contract.features
        ]
    )
    snapshot = report.run(numeric(current), numeric(reference)).dict()
    return {result["config"]["column"]: float(result["value"]) for result in snapshot["metrics"]}


def _bucketed(predictions: list[Any], reference: Iterable[Any]) -> list[Any]:
    """Predictions as label values: classes the reference knows, every other answer as `other`
    (a model's output is not trusted to keep the metric's label values bounded)."""
    known = {str(v) for v in reference}
    return [None if p is None else (str(p) if str(p) in known else "other") for p in predictions]


def shares(values: Iterable[Any]) -> dict[str, float]:
    counted = Counter(str(v) for v in values if v is not None)
    total = sum(counted.values())
    return {k: counted[k] / total for k in sorted(counted)} if total else {}


def labels_for(labels_root: Path | None, target: Target, row_ids: list[tuple[str, int]]) -> list[Any]:
    """The ground-truth label of each row, None where none has arrived."""
    if labels_root is None:
        return [None] * len(row_ids)
    folder = labels_root / target.namespace / target.isvc
    cache: dict[str, list[Any]] = {}
    out: list[Any] = []
    for request_id, row in row_ids:
        if not SAFE_ID.match(request_id):  # never a path: ids come from a client header
            out.append(None)
            continue
        if request_id not in cache:
            try:
                data = json.loads((folder / f"{request_id}.json").read_text(encoding="utf-8"))
                cache[request_id] = list(data["labels"]) if isinstance(data, dict) else []
            except (OSError, ValueError, KeyError, TypeError):
                cache[request_id] = []
        got = cache[request_id]
        out.append(got[row] if row < len(got) else None)
    return out


def judge(
    target: Target,
    version: str,
    window: Window,
    reference: Any,
    contract: MonitoringContract,
    evaluation: registry_gate.Evaluation,
    labels_root: Path | None,
    registry_evaluation: float | None = None,
) -> VersionReport:
    import pandas as pd

    no_verdict = None
    if window.rows < contract.drift.min_requests:
        verdict = f"no verdict: {window.rows} rows, fewer than {contract.drift.min_requests}"
        no_verdict = metrics.TOO_FEW_ROWS
        scores: dict[str, float] = {}
    else:
        scores = feature_scores(pd.DataFrame(window.columns), reference, contract)
        verdict = ""
    drifted = sorted(f for f, s in scores.items() if s > contract.drift.threshold)
    share = len(drifted) / len(contract.features) if scores else 0.0
    dataset_drift = bool(scores) and share >= contract.drift.dataset_share
    verdict = verdict or ("drift" if dataset_drift else "no drift")
    truth = labels_for(labels_root, target, window.row_ids)
    pairs = [
        (p, t) for p, t in zip(window.predictions, truth, strict=True) if p is not None and t is not None
    ]
    quality = None
    if pairs and evaluation.metric == "accuracy":
        quality = sum(str(p) == str(t) for p, t in pairs) / len(pairs)
    reference_predictions = reference.get(PREDICTION_COLUMN, [])
    return VersionReport(
        version=version,
        rows=window.rows,
        feature_scores=scores,
        drifted=drifted,
        drifted_share=share,
        dataset_drift=dataset_drift,
        prediction_share=shares(_bucketed(window.predictions, reference_predictions))
        if contract.prediction == "class"
        else {},
        reference_prediction_share=shares(reference_predictions) if contract.prediction == "class" else {},
        quality=quality,
        quality_threshold=evaluation.thresholds.get(target.env) if evaluation.metric else None,
        registry_evaluation=registry_evaluation,
        metric=evaluation.metric or "",
        labelled_rows=len(pairs),
        skipped_requests=window.skipped,
        verdict=verdict,
        no_verdict=no_verdict,
    )


def run(
    target: Target,
    records: Iterable[LogRecord],
    contract: MonitoringContract,
    registry: registry_gate.Registry,
    store_root: Path,
    repo_root: Path,
    labels_root: Path | None = None,
) -> list[VersionReport]:
    """One report per model version in the window, oldest version number first."""
    try:
        evaluation = registry_gate.load_evaluation(target.app, repo_root)
        by_version = windows(records, contract.features)
    except (registry_gate.EvaluationFileError, RecordError) as err:
        raise DriftJobError(str(err)) from None
    if "" in by_version:
        raise DriftJobError("records without a model version: the logger's metadataAnnotations must pass it")
    reports = []
    for version in sorted(by_version, key=lambda v: int(v) if v.isdigit() else math.inf):
        window = by_version[version]
        try:
            tags = registered_tags(registry, target.app, version)
            reference = reference_for(tags, target.app, version, store_root)
        except DriftJobError as err:  # one version without reference data does not blind the others
            reports.append(_no_verdict(version, window, evaluation, f"no verdict: {err}"))
            continue
        recorded = _number(tags.get(registry_gate.METRIC_TAG_PREFIX + (evaluation.metric or "")))
        reports.append(judge(target, version, window, reference, contract, evaluation, labels_root, recorded))
    return reports


def _no_verdict(
    version: str, window: Window, evaluation: registry_gate.Evaluation, why: str
) -> VersionReport:
    return VersionReport(
        version=version,
        rows=window.rows,
        feature_scores={},
        drifted=[],
        drifted_share=0.0,
        dataset_drift=False,
        prediction_share={},
        reference_prediction_share={},
        quality=None,
        quality_threshold=None,
        registry_evaluation=None,
        metric=evaluation.metric or "",
        labelled_rows=0,
        skipped_requests=window.skipped,
        verdict=why,
        no_verdict=metrics.NO_REFERENCE,
    )


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def exposition(
    target: Target, contract: MonitoringContract, reports: list[VersionReport], now: float | None = None
) -> Any:
    """A prometheus_client registry holding every series of the reports."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()

    def gauge(metric: metrics.Metric) -> Gauge:
        return Gauge(metric.name, metric.help, [*metrics.IDENTITY, *metric.labels], registry=registry)

    g = {m.name: gauge(m) for m in metrics.ALL}
    method = contract.drift.method
    for report in reports:
        who = target.identity(report.version)
        for feature, score in report.feature_scores.items():
            g[metrics.FEATURE_DRIFT.name].labels(**who, feature=feature, method=method).set(score)
        if report.feature_scores:
            g[metrics.FEATURE_DRIFT_THRESHOLD.name].labels(**who, method=method).set(contract.drift.threshold)
            g[metrics.DRIFTED_SHARE.name].labels(**who).set(report.drifted_share)
            g[metrics.DRIFTED_SHARE_THRESHOLD.name].labels(**who).set(contract.drift.dataset_share)
        for window, share_of in (
            ("current", report.prediction_share),
            ("reference", report.reference_prediction_share),
        ):
            for prediction, share in share_of.items():
                g[metrics.PREDICTION_SHARE.name].labels(**who, prediction=prediction, window=window).set(
                    share
                )
        metric = report.metric
        if report.registry_evaluation is not None:
            g[metrics.REGISTRY_EVALUATION.name].labels(**who, metric=metric).set(report.registry_evaluation)
        if report.quality is not None and report.quality_threshold is not None:
            g[metrics.QUALITY.name].labels(**who, metric=metric).set(report.quality)
            g[metrics.QUALITY_THRESHOLD.name].labels(**who, metric=metric).set(report.quality_threshold)
        g[metrics.LABELLED_ROWS.name].labels(**who).set(report.labelled_rows)
        g[metrics.MONITORED_ROWS.name].labels(**who).set(report.rows)
        g[metrics.LAST_RUN.name].labels(**who).set(time.time() if now is None else now)
        # A version the job cannot judge would otherwise look judged: its last-run time is fresh and
        # no drift or quality series exists for an alert to fire on (ModelMonitoringNoVerdict).
        if report.no_verdict is not None:
            g[metrics.NO_VERDICT.name].labels(**who, reason=report.no_verdict).set(1)
    return registry


def publish(target: Target, registry: Any, pushgateway: str | None, textfile: Path | None) -> None:
    """Push to the Pushgateway (grouped per InferenceService, so apps never overwrite each other) or
    write the text exposition format."""
    from prometheus_client import push_to_gateway, write_to_textfile

    if pushgateway:
        push_to_gateway(
            pushgateway,
            job=metrics.JOB,
            grouping_key={"namespace": target.namespace, "isvc": target.isvc},
            registry=registry,
        )
    if textfile:
        textfile.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(textfile), registry)
