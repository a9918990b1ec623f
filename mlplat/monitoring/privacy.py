"""The privacy marshaller: KServe's logger posts every batch here, and only what the app allows is stored.

KServe v0.20 calls an HTTP marshaller when `spec.predictor.logger.marshallerUrl` is set
(pkg/logger/marshaller_http.go): it POSTs the batch as a JSON array of log records and stores the
response body as the object, with the extension named by the `X-Log-Marshal-Extension` header (default
`json`); a non-2xx answer fails the upload, so nothing unfiltered is ever written instead.

Each request body's V2 `inputs` are filtered by the app's field policy (`contract.py`): `keep`, `hash`
(HMAC-SHA256 under the environment's key: equal values stay joinable, the value is not recoverable
without the key) or `drop`; fields the contract does not name are dropped. Responses (the model's
outputs) are kept. A record without a request id or a model version is not stored: drift and quality
could not be attributed to a version. Credentials in logged headers are never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlplat.monitoring.contract import MonitoringContract
from mlplat.monitoring.records import (
    REQUEST,
    LogRecord,
    RecordError,
    dump_batch,
    parse_batch,
    v2_body,
    v2_columns,
)

EXTENSION_HEADER = "X-Log-Marshal-Extension"
MAX_BATCH_BYTES = 16 * 1024 * 1024  # a batch of 100 typical tabular requests is a few hundred KiB
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})


@dataclass(frozen=True)
class FieldPolicy:
    """What one environment stores of one app's requests."""

    contract: MonitoringContract
    hash_key: bytes

    def __post_init__(self) -> None:
        if "hash" in self.contract.fields.values() and len(self.hash_key) < 32:
            raise ValueError("a field is hashed: the environment's hash key must be at least 32 bytes")

    def hashed(self, value: Any) -> str:
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self.hash_key, canonical, hashlib.sha256).hexdigest()

    def filter_record(self, record: LogRecord) -> LogRecord | None:
        """The record as it may be stored, or None when it cannot be attributed to a version."""
        if not record.id or not record.model_version:
            return None
        metadata = {k: v for k, v in record.metadata.items() if k.lower() not in SECRET_HEADERS}
        safe = replace(record, metadata=metadata)
        if record.req_type != REQUEST:
            return safe
        columns = v2_columns(record.body, "inputs", f"request {record.id}")
        stored: dict[str, list[Any]] = {}
        datatypes: dict[str, str] = {}
        for name, values in columns.items():
            policy = self.contract.fields.get(name, "drop")
            if policy == "keep":
                stored[name] = values
            elif policy == "hash":
                stored[name] = [self.hashed(v) for v in values]
                datatypes[name] = "BYTES"
        return safe.with_body(v2_body(record.body, "inputs", stored, datatypes))

    def marshal(self, payload: bytes) -> tuple[bytes, int]:
        """(stored bytes, records dropped) for one batch POSTed by the logger."""
        records = parse_batch(payload, "batch")
        kept = [r for r in (self.filter_record(r) for r in records) if r is not None]
        return dump_batch(kept) if kept else b"[]", len(records) - len(kept)


def handler_for(policy: FieldPolicy) -> type[BaseHTTPRequestHandler]:
    class Marshaller(BaseHTTPRequestHandler):
        """POST: a batch in, the stored form out (KServe's HTTP marshaller protocol)."""

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BATCH_BYTES:
                self._answer(413 if length > MAX_BATCH_BYTES else 400, b"a batch of log records is required")
                return
            try:
                body, dropped = policy.marshal(self.rfile.read(length))
            except RecordError as err:
                self._answer(400, str(err).encode())
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


@contextmanager
def serving(policy: FieldPolicy, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run the marshaller for the block; yields its URL."""
    server = ThreadingHTTPServer((host, port), handler_for(policy))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
