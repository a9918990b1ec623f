"""Off the cluster, what KServe's agent does on it: log each request and response through the marshaller.

On the platform the agent sidecar of a logged predictor queues a record per request and per response
and hands batches to the marshaller, then to the logs bucket (`records.py` cites the source). Here the
demo's client calls the model server itself, so this recorder builds the same records (same fields, the
`Ce-Id` request id shared by request and response, the version annotation), posts each batch to the
same privacy marshaller over HTTP, and writes what it answers under the same object keys into a local
folder standing in for the bucket.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlplat.monitoring.records import REQUEST, RESPONSE, VERSION_ANNOTATION, LogRecord, object_key

BATCH_SIZE = 50  # the logger's `batchSize`: records per stored object


@dataclass
class Recorder:
    """Calls a V2 endpoint and logs both sides like KServe's agent (component `predictor`)."""

    logs_root: Path
    marshaller_url: str
    namespace: str
    isvc: str
    model_version: str
    _pending: list[LogRecord] = field(default_factory=list)

    def infer(self, url: str, payload: dict[str, Any], timeout: float = 10.0) -> tuple[dict[str, Any], str]:
        """The model's answer and the request id it was logged under."""
        request_id = str(uuid.uuid4())
        body = json.dumps(payload).encode()
        call = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json", "Ce-Id": request_id}, method="POST"
        )
        with urllib.request.urlopen(call, timeout=timeout) as answer:
            response = answer.read()
        self._log(request_id, REQUEST, body)
        self._log(request_id, RESPONSE, response)
        return json.loads(response), request_id

    def _log(self, request_id: str, req_type: str, body: bytes) -> None:
        self._pending.append(
            LogRecord(
                id=request_id,
                req_type=req_type,
                body=body,
                inference_service=self.isvc,
                namespace=self.namespace,
                component="predictor",
                occurrence_time=datetime.now(UTC).isoformat(),
                annotations={VERSION_ANNOTATION: self.model_version},
            )
        )
        if len(self._pending) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        """Marshal the pending batch and store the answer under the key KServe's store would use."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        body = json.dumps([r.to_json() for r in batch]).encode()
        post = urllib.request.Request(
            self.marshaller_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(post, timeout=10) as answer:
            stored = answer.read()
            extension = answer.headers.get("X-Log-Marshal-Extension") or "json"
        path = self.logs_root / object_key("", batch[0], extension)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(stored)
