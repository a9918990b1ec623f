"""Inference log records of the iris example as KServe's agent stores them: what the drift job reads.

Shared by the drift job's tests and the retraining tests that check a registered version can be judged.
"""

from __future__ import annotations

import json

import pandas as pd

from mlplat.monitoring.records import REQUEST, RESPONSE, VERSION_ANNOTATION, LogRecord

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def classify(frame: pd.DataFrame) -> list[int]:
    """A stand-in model good enough to make labels meaningful: petal length decides."""
    return [0 if p < 2.5 else 1 if p < 4.9 else 2 for p in frame["petal_length"]]


def traffic(
    rows: pd.DataFrame, requests: int, version: str = "1", rows_per_request: int = 3
) -> list[LogRecord]:
    """Request/response records as the agent logs them, `rows_per_request` rows each."""
    out = []
    for i in range(requests):
        chunk = rows.iloc[(i * rows_per_request) % len(rows) :][:rows_per_request]
        if len(chunk) < rows_per_request:
            chunk = rows.iloc[:rows_per_request]
        inputs = [
            {"name": f, "shape": [len(chunk)], "datatype": "FP64", "data": chunk[f].tolist()}
            for f in FEATURES
        ]
        outputs = [{"name": "predict", "shape": [len(chunk)], "datatype": "INT64", "data": classify(chunk)}]
        for req_type, body in ((REQUEST, {"inputs": inputs}), (RESPONSE, {"outputs": outputs})):
            out.append(
                LogRecord(
                    id=f"req-{version}-{i}",
                    req_type=req_type,
                    body=json.dumps(body).encode(),
                    annotations={VERSION_ANNOTATION: version},
                )
            )
    return out
