"""A loopback stand-in for the two MLflow REST reads the registry gate makes.

Starting a real MLflow server costs ~15 s; the gate's branches (a version not READY, a failed
registration, a proxy's plain 404, a 5xx, credentials, malformed answers) need answers MLflow itself
would never give on demand. The answers follow MLflow's REST API: `GET
/api/2.0/mlflow/registered-models/get?name=` returns `{"registered_model": {...}}` and `GET
/api/2.0/mlflow/model-versions/get?name=&version=` returns `{"model_version": {...}}`; an unknown
one is HTTP 404 with `{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}`
(mlflow/server/handlers.py, `_get_registered_model` / `_get_model_version`, MLflow 3.x). `GET
/api/2.0/mlflow/artifacts/list?run_id=&path=` returns `{"root_uri": ..., "files": [{"path", "is_dir",
"file_size"}]}` (`_list_artifacts`): each version's run holds the files given to `add_version`, by
default the model card its tag names, as `mlplat retrain register` logs it.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from mlplat.loopback import serving
from mlplat.retrain import lineage

API = "/api/2.0/mlflow/"


@dataclass(frozen=True)
class Raw:
    """An answer given verbatim, whatever was asked: a status code and a body."""

    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class FakeRegistry:
    """Registered models by name, versions by (name, version); `override` answers every request."""

    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # run id -> artifact paths
    override: Raw | None = None
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def add_version(
        self,
        name: str,
        version: str,
        *,
        source: str,
        status: str = "READY",
        tags: dict[str, str] | None = None,
        aliases: tuple[str, ...] = (),
        artifacts: tuple[str, ...] | None = None,
    ) -> None:
        model = self.models.setdefault(name, {"name": name, "aliases": []})
        model["aliases"] += [{"alias": a, "version": version} for a in aliases]
        run_id = f"run-{name}-{version}"
        card = (tags or {}).get(lineage.MODEL_CARD)
        self.runs[run_id] = artifacts if artifacts is not None else ((card,) if card else ())
        self.versions[(name, version)] = {
            "name": name,
            "version": version,
            "source": source,
            "status": status,
            "run_id": run_id,
            "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
            "aliases": list(aliases),
        }

    def answer(self, path: str, params: dict[str, str]) -> Raw:
        if self.override is not None:
            return self.override
        if path == "registered-models/get" and params.get("name") in self.models:
            return _json(200, {"registered_model": self.models[params["name"]]})
        key = (params.get("name", ""), params.get("version", ""))
        if path == "model-versions/get" and key in self.versions:
            return _json(200, {"model_version": self.versions[key]})
        if path == "artifacts/list" and params.get("run_id") in self.runs:
            folder = params.get("path", "")
            inside = [a for a in self.runs[params["run_id"]] if a.rpartition("/")[0] == folder]
            files = [{"path": a, "is_dir": False, "file_size": 1} for a in inside]
            return _json(
                200,
                {"root_uri": f"mlflow-artifacts:/{params['run_id']}", **({"files": files} if files else {})},
            )
        return _json(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"{path} {params} not found"})


def _json(status: int, body: dict[str, Any]) -> Raw:
    return Raw(status, json.dumps(body).encode())


@contextmanager
def serve(registry: FakeRegistry) -> Iterator[FakeRegistry]:
    """Serve `registry` on a free loopback port for the block; its `url` is set while it runs."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            registry.seen_headers.append(dict(self.headers.items()))
            params = dict(urllib.parse.parse_qsl(url.query))
            raw = registry.answer(url.path.removeprefix(API), params)
            self.send_response(raw.status)
            self.send_header("Content-Type", raw.content_type)
            self.send_header("Content-Length", str(len(raw.body)))
            self.end_headers()
            self.wfile.write(raw.body)

        def log_message(self, *args: Any) -> None:  # quiet test output
            return

    with serving(Handler, poll_interval=0.01) as url:
        registry.url = url
        yield registry
