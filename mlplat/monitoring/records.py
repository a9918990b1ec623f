"""The inference log record exactly as KServe v0.20's logger writes it, and the rows inside it.

KServe's agent queues one `LogRequest` per request and per response (pkg/logger/types.go at v0.20.0):
`bytes` (the body, base64 as Go encodes `[]byte`), `contentType`, `reqType`
(`org.kubeflow.serving.inference.request|response`, pkg/logger/worker.go), `id` (the request's
`Ce-Id` header or a new UUID, shared by a request and its response), `inferenceService`, `namespace`,
`component`, `endpoint`, `metadata` (allow-listed headers), `annotations` (allow-listed pod annotations,
`metadataAnnotations`) and `occurrenceTime`. A batch is POSTed to the marshaller as a JSON array; the
JSON marshaller answers one object for a batch of one, an array otherwise (marshaller_json.go), and the
blob store writes it to `<prefix>/<namespace>/<isvc>/<component>/<first id>-<request|response>.<ext>`
(store.go, `getObjectKey`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infra.contract import MODEL_VERSION_ANNOTATION

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
# Passed through `logger.metadataAnnotations`: every record names the version that answered.
VERSION_ANNOTATION = MODEL_VERSION_ANNOTATION
# The id comes from the client's `Ce-Id` header (handler.go getOrCreateID) and becomes part of object
# keys and label file names: only ids of this shape are stored or joined (a UUID always is).
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class RecordError(Exception):
    """A record that is not KServe's format or not a V2 body; the message says which and where."""


@dataclass(frozen=True)
class LogRecord:
    """One logged request or response: the fields the platform reads, plus the body as sent."""

    id: str
    req_type: str
    body: bytes
    inference_service: str = ""
    namespace: str = ""
    component: str = ""
    content_type: str = "application/json"
    occurrence_time: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # fields passed through untouched (url, endpoint…)

    @property
    def model_version(self) -> str:
        return self.annotations.get(VERSION_ANNOTATION, "")

    @property
    def kind(self) -> str:
        """`request` or `response`, the suffix KServe's store puts in the object key."""
        return self.req_type.rsplit(".", 1)[-1]

    def with_body(self, body: bytes) -> LogRecord:
        return replace(self, body=body)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.extra,
            "bytes": base64.b64encode(self.body).decode(),
            "contentType": self.content_type,
            "reqType": self.req_type,
            "id": self.id,
            "inferenceService": self.inference_service,
            "namespace": self.namespace,
            "component": self.component,
            "occurrenceTime": self.occurrence_time,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.metadata:
            out["metadata"] = {k: list(v) for k, v in self.metadata.items()}
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> LogRecord:
        if not isinstance(data, dict):
            raise RecordError(f"{where}: a log record is a JSON object")
        try:
            body = base64.b64decode(data.get("bytes") or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise RecordError(f"{where}: `bytes` is not base64") from None
        known = {
            "bytes", "contentType", "reqType", "id", "inferenceService", "namespace",
            "component", "occurrenceTime", "annotations", "metadata",
        }  # fmt: skip
        req_type, record_id = data.get("reqType"), data.get("id")
        if req_type not in (REQUEST, RESPONSE) or not isinstance(record_id, str) or not record_id:
            raise RecordError(f"{where}: needs `reqType` ({REQUEST}|{RESPONSE}) and a non-empty `id`")
        annotations = data.get("annotations") or {}
        metadata = data.get("metadata") or {}
        if not isinstance(annotations, dict) or not isinstance(metadata, dict):
            raise RecordError(f"{where}: `annotations` and `metadata` are JSON objects")
        return cls(
            id=record_id,
            req_type=req_type,
            body=body,
            inference_service=str(data.get("inferenceService") or ""),
            namespace=str(data.get("namespace") or ""),
            component=str(data.get("component") or ""),
            content_type=str(data.get("contentType") or ""),
            occurrence_time=str(data.get("occurrenceTime") or ""),
            annotations={str(k): str(v) for k, v in annotations.items()},
            metadata={str(k): [str(x) for x in v] for k, v in metadata.items() if isinstance(v, list)},
            extra={k: v for k, v in data.items() if k not in known},
        )


def parse_batch(payload: bytes | str, where: str) -> list[LogRecord]:
    """The records of a marshaller request (always an array) or of a stored object (object or array)."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        raise RecordError(f"{where}: not JSON") from None
    items = data if isinstance(data, list) else [data]
    return [LogRecord.from_json(item, f"{where}[{i}]") for i, item in enumerate(items)]


def dump_batch(records: list[LogRecord]) -> bytes:
    """What KServe's JSON marshaller returns: one object for one record, an array otherwise."""
    payload: Any = records[0].to_json() if len(records) == 1 else [r.to_json() for r in records]
    return json.dumps(payload, separators=(",", ":")).encode()


def object_key(prefix: str, first: LogRecord, extension: str = "json") -> str:
    """The key KServe's blob store gives a batch (store.go `getObjectKey`), prefix first."""
    parts = [p for p in (prefix, first.namespace, first.inference_service, first.component) if p]
    return "/".join([*parts, f"{first.id}-{first.kind}.{extension}"])


def read_tree(root: Path) -> Iterator[LogRecord]:
    """Every record stored under `root` (a local copy of a logs prefix), in key order."""
    for path in sorted(root.rglob("*.json")):
        yield from parse_batch(path.read_bytes(), str(path.relative_to(root)))


# --- V2 (Open Inference Protocol) bodies -------------------------------------------------------------


def v2_columns(body: bytes, key: str, where: str) -> dict[str, list[Any]]:
    """`{name: values}` of a V2 request's `inputs` or response's `outputs` (one value per row)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise RecordError(f"{where}: the body is not JSON") from None
    tensors = data.get(key) if isinstance(data, dict) else None
    if not isinstance(tensors, list):
        raise RecordError(f"{where}: the body has no V2 `{key}` list")
    columns: dict[str, list[Any]] = {}
    for tensor in tensors:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise RecordError(f"{where}: every V2 tensor has a name")
        values = tensor.get("data")
        columns[tensor["name"]] = list(_flatten(values)) if isinstance(values, list) else [values]
    return columns


def _flatten(values: Iterable[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value
