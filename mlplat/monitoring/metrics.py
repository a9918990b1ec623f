"""The names and labels of every metric the drift job publishes: the one place they are written.

The alert rules (platform/prometheus/rules/model-monitoring.yaml), their promtool tests, the metrics
catalog and the model-monitoring dashboard read these names; a test fails when any of them names a
metric this module does not define, or this module defines one nothing reads.
"""

from __future__ import annotations

from dataclasses import dataclass

# Labels of every series: which InferenceService (as the serving rules name it) and which version.
IDENTITY = ("namespace", "isvc", "team", "model", "model_version")
JOB = "mlplat-model-monitoring"  # the Pushgateway job label
# Quality is judged only over at least this many labelled rows (the ModelQualityBelowThreshold rule
# says the same number; a test holds them equal).
MIN_LABELLED_ROWS = 100


@dataclass(frozen=True)
class Metric:
    name: str
    help: str
    labels: tuple[str, ...] = ()


FEATURE_DRIFT = Metric(
    "mlplat_model_feature_drift_score",
    "Drift score of one input feature against the version's reference data.",
    ("feature", "method"),
)
FEATURE_DRIFT_THRESHOLD = Metric(
    "mlplat_model_feature_drift_threshold",
    "Score above which a feature counts as drifted (monitoring.yaml).",
    ("method",),
)
DRIFTED_SHARE = Metric("mlplat_model_drifted_features_share", "Share of monitored features that drifted.")
DRIFTED_SHARE_THRESHOLD = Metric(
    "mlplat_model_dataset_drift_share_threshold", "Share of drifted features at which the dataset drifts."
)
PREDICTION_SHARE = Metric(
    "mlplat_model_prediction_share",
    'Share of predictions per class in the window (reference: window="reference").',
    ("prediction", "window"),
)
QUALITY = Metric(
    "mlplat_model_quality",
    "The app's evaluation metric on logged requests whose labels arrived.",
    ("metric",),
)
QUALITY_THRESHOLD = Metric(
    "mlplat_model_quality_threshold",
    "The environment's threshold for that metric (evaluation.yaml).",
    ("metric",),
)
REGISTRY_EVALUATION = Metric(
    "mlplat_model_registry_evaluation",
    "The metric the version scored at evaluation, as recorded in the registry (mlplat.metric.<name>).",
    ("metric",),
)
LABELLED_ROWS = Metric(
    "mlplat_model_quality_labelled_rows", "Logged rows with a ground-truth label in the window."
)
MONITORED_ROWS = Metric("mlplat_model_monitored_rows", "Logged rows the drift job compared in the window.")
LAST_RUN = Metric("mlplat_model_monitoring_last_run_timestamp_seconds", "When the drift job last published.")
NO_VERDICT = Metric(
    "mlplat_model_monitoring_no_verdict",
    "1 while the drift job finds a version in its window but gives it no verdict; `reason` says why.",
    ("reason",),
)
# The values of NO_VERDICT's `reason`: the version's reference data cannot be found or read (not in the
# registry, no mlplat.reference tag, the file unreadable), or the window holds fewer rows than the
# app's min_requests (monitoring.yaml).
NO_REFERENCE = "no_reference"
TOO_FEW_ROWS = "too_few_rows"

ALL = (
    FEATURE_DRIFT,
    FEATURE_DRIFT_THRESHOLD,
    DRIFTED_SHARE,
    DRIFTED_SHARE_THRESHOLD,
    PREDICTION_SHARE,
    QUALITY,
    QUALITY_THRESHOLD,
    REGISTRY_EVALUATION,
    LABELLED_ROWS,
    MONITORED_ROWS,
    LAST_RUN,
    NO_VERDICT,
)
