"""The privacy marshaller: KServe's logger posts every batch here, and only what the app allows is stored.

KServe v0.20 calls an HTTP marshaller when `spec.predictor.logger.marshallerUrl` is set
(pkg/logger/marshaller_http.go): it POSTs the batch as a JSON array of log records and stores the
response body as the object, with the extension named by the `X-Log-Marshal-Extension` header (default
`json`); a non-2xx answer fails the upload, so nothing unfiltered is ever written instead.

Each request body's V2 `inputs` are filtered by the app's field policy (`contract.py`): `keep`, `hash`
(HMAC-SHA256 under the environment's key: equal values stay joinable, the value is not recoverable
without the key) or `drop`; fields the contract does not name are dropped, and so is everything in a
body that is not a tensor's data (`FieldPolicy` says how the stored body is rebuilt). A record without
a request id or a model version is not stored: drift and quality could not be attributed to a version.
Logged headers are stored only when the contract names them.

Who may call the marshaller matters: it answers HMACs of whatever it is sent, so anyone who can reach
it can hash guesses of a low-entropy field. On the cluster it runs beside the agent and listens on the
pod's loopback only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler
from typing import Any

from mlplat import loopback
from mlplat.monitoring.contract import MonitoringContract
from mlplat.monitoring.records import (
    REQUEST,
    SAFE_ID,
    LogRecord,
    RecordError,
    dump_batch,
    parse_batch,
    v2_columns,
)

EXTENSION_HEADER = "X-Log-Marshal-Extension"
MAX_BATCH_BYTES = 16 * 1024 * 1024  # a batch of 100 typical tabular requests is a few hundred KiB
MAX_VALUES_PER_TENSOR = 10_000  # rows x elements of one logged tensor; more is not a tabular request
MAX_STRING = 64  # a kept or predicted string longer than this is free text, which is never stored
READ_TIMEOUT_S = 10.0  # a client announcing more bytes than it sends is dropped, not waited for


class UnstorableRecord(Exception):
    """This record cannot be stored safely (not a V2 JSON body, too big); the batch's others can."""


@dataclass(frozen=True)
class FieldPolicy:
    """What one environment stores of one app's requests.

    The stored body is rebuilt from an allow-list, never edited in place: only `inputs` (and, in a
    response, `outputs`) with their `name`, `datatype`, `shape` and `data` survive; the V2 `id`,
    `parameters` and any other key are gone. A kept value must be a finite number, a boolean or a
    short string, so nothing rides along in a field the contract keeps; a hashed value becomes an
    HMAC; headers are kept only when the contract names them.
    """

    contract: MonitoringContract
    hash_key: bytes

    def __post_init__(self) -> None:
        if "hash" in self.contract.fields.values() and len(self.hash_key) < 32:
            raise ValueError("a field is hashed: the environment's hash key must be at least 32 bytes")

    def hashed(self, value: Any) -> str:
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self.hash_key, canonical, hashlib.sha256).hexdigest()

    def filter_record(self, record: LogRecord) -> LogRecord | None:
        """The record as it may be stored, or None when it cannot be attributed to a version.
        UnstorableRecord when its body is not something the policy can judge."""
        if not SAFE_ID.match(record.id) or not record.model_version:
            return None
        allowed = {h.lower() for h in self.contract.headers}
        metadata = {k: v for k, v in record.metadata.items() if k.lower() in allowed}
        safe = replace(record, metadata=metadata)
        key = "inputs" if record.req_type == REQUEST else "outputs"
        tensors = _tensors(record.body, key, record.id)
        stored = []
        for tensor in tensors:
            name = tensor["name"]
            policy = self.contract.fields.get(name, "drop") if key == "inputs" else "keep"
            if policy == "drop":
                continue
            values = tensor["data"]
            datatype: str | None
            if policy == "hash":
                data, datatype = [self.hashed(v) for v in values], "BYTES"
            elif name in self.contract.features:  # compared as numbers: nothing else rides along
                data, datatype = [_number(v) for v in values], tensor.get("datatype")
            else:
                data, datatype = [_plain(v) for v in values], tensor.get("datatype")
            stored.append({"name": name, "datatype": datatype, "shape": [len(data)], "data": data})
        body = json.dumps({key: stored}, separators=(",", ":")).encode()
        return safe.with_body(body)

    def marshal(self, payload: bytes) -> tuple[bytes, int]:
        """(stored bytes, records not stored) for one batch POSTed by the logger. One record the policy
        cannot judge is left out; only a batch that is not KServe's format at all is refused."""
        records = parse_batch(payload, "batch")
        kept = []
        for record in records:
            try:
                stored = self.filter_record(record)
            except UnstorableRecord:
                stored = None
            if stored is not None:
                kept.append(stored)
        return dump_batch(kept) if kept else b"[]", len(records) - len(kept)


def _tensors(body: bytes, key: str, record_id: str) -> list[dict[str, Any]]:
    """The V2 tensors of a body, flattened to one list of values each; UnstorableRecord otherwise."""
    try:
        columns = v2_columns(body, key, f"record {record_id}")
        raw = json.loads(body)[key]
    except (RecordError, ValueError, RecursionError, TypeError, KeyError):
        raise UnstorableRecord(record_id) from None
    out = []
    for tensor in raw:
        values = columns[tensor["name"]]
        if len(values) > MAX_VALUES_PER_TENSOR:
            raise UnstorableRecord(record_id)
        out.append({"name": tensor["name"], "datatype": tensor.get("datatype"), "data": values})
    return out


def _number(value: Any) -> Any:
    return (
        value
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        else None
    )


def _plain(value: Any) -> Any:
    """A kept value as stored: finite numbers, booleans and short strings; anything else is null."""
    if isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value)):
        return value
    if isinstance(value, str) and len(value) <= MAX_STRING:
        return value
    return None


def handler_for(policy: FieldPolicy) -> type[BaseHTTPRequestHandler]:
    class Marshaller(BaseHTTPRequestHandler):
        """POST: a batch in, the stored form out (KServe's HTTP marshaller protocol)."""

        timeout = READ_TIMEOUT_S  # socketserver applies it to the connection: no read waits forever

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length <= 0 or length > MAX_BATCH_BYTES:
                self._answer(413 if length > MAX_BATCH_BYTES else 400, b"a batch of log records is required")
                return
            try:
                payload = self.rfile.read(length)
                if len(payload) != length:
                    raise RecordError("the batch ended before its Content-Length")
                body, dropped = policy.marshal(payload)
            except RecordError as err:
                self._answer(400, str(err).encode())
                return
            except TimeoutError:
                self.close_connection = True
                return
            self._answer(200, body, {EXTENSION_HEADER: "json", "X-Mlplat-Dropped-Records": str(dropped)})

        def do_GET(self) -> None:
            self._answer(
                200 if self.path == "/healthz" else 405, b"ok" if self.path == "/healthz" else b"POST only"
            )

        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:  # request bodies never reach the pod log
            return

    return Marshaller


def serving(policy: FieldPolicy, host: str = "127.0.0.1", port: int = 0) -> AbstractContextManager[str]:
    """Run the marshaller for the block; yields its URL."""
    return loopback.serving(handler_for(policy), host, port)
