"""The registry gate: an InferenceService may only name a model version the MLflow registry vouches for.

For every rendered InferenceService it asks the registry whether the model (`mlplat/model`) and the
version (`mlplat/model-version`) exist, the version is READY, its source is exactly the manifest's
`storageUri`, it carries the evaluation result its environment requires (`apps/<app>/evaluation.yaml`),
and, for prod, whether it holds the `approved` alias. `mlplat validate` and `mlplat promote` both call
`check`, so a promotion can never write what validate would then reject.

The registry is read through MLflow's REST API with a short timeout and no retries: MLflow's own client
retries for minutes, and a CI run should fail in seconds with the URL and the reason instead.
"""

from __future__ import annotations

import base64
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlplat.findings import Finding, RenderedDoc

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("dev", "staging", "prod")
DEFAULT_ENV = "dev"  # a manifest with neither --env nor an mlplat/environment label: judged by dev's bar
APPROVAL_ALIAS = "approved"
EVALUATION_TAG = "mlplat.evaluation"
EVALUATION_PASSED = "passed"
METRIC_TAG_PREFIX = "mlplat.metric."
REQUEST_TIMEOUT_S = 5.0

MODEL_LABEL = "mlplat/model"
ENV_LABEL = "mlplat/environment"
VERSION_ANNOTATION = "mlplat/model-version"


class RegistryUnavailable(Exception):
    """The registry could not be asked; the message names the URL and the reason."""


class EvaluationFileError(Exception):
    """`apps/<app>/evaluation.yaml` is missing or malformed; the message says which."""


@dataclass(frozen=True)
class Evaluation:
    """What an app's versions must have shown before deploying to each environment."""

    metric: str | None  # None: only the `mlplat.evaluation=passed` sign-off is required
    thresholds: dict[str, float]


def evaluation_path(app: str, repo_root: Path = REPO) -> Path:
    return repo_root / "apps" / app / "evaluation.yaml"


def load_evaluation(app: str, repo_root: Path = REPO) -> Evaluation:
    """Read and check `apps/<app>/evaluation.yaml` (`metric` plus one threshold per environment)."""
    path = evaluation_path(app, repo_root)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise EvaluationFileError(f"{_rel(path, repo_root)} does not exist") from None
    except (OSError, yaml.YAMLError) as err:
        raise EvaluationFileError(f"{_rel(path, repo_root)} cannot be read: {err}") from None
    if not isinstance(data, dict) or set(data) - {"metric", "thresholds", "description"}:
        raise EvaluationFileError(f"{_rel(path, repo_root)}: expected keys metric, thresholds, description")
    metric = data.get("metric")
    if metric is None:
        return Evaluation(metric=None, thresholds={})
    thresholds = data.get("thresholds")
    if not isinstance(metric, str) or not isinstance(thresholds, dict):
        raise EvaluationFileError(f"{_rel(path, repo_root)}: metric must be a name and thresholds a mapping")
    missing = [env for env in ENVIRONMENTS if not _is_number(thresholds.get(env))]
    if missing or set(thresholds) - set(ENVIRONMENTS):
        raise EvaluationFileError(
            f"{_rel(path, repo_root)}: thresholds needs a number for each of {', '.join(ENVIRONMENTS)}"
        )
    return Evaluation(metric=metric, thresholds={env: float(thresholds[env]) for env in ENVIRONMENTS})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


class Registry:
    """The few read calls the gate needs from MLflow's REST API, cached per run."""

    def __init__(self, url: str, timeout: float = REQUEST_TIMEOUT_S) -> None:
        if urllib.parse.urlparse(url).scheme not in ("http", "https"):
            raise RegistryUnavailable(f"registry {url!r}: not an http(s) URL of an MLflow tracking server")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._cache: dict[str, dict[str, Any] | None] = {}

    def _headers(self) -> dict[str, str]:
        # The same credentials MLflow's own client reads, so a protected registry works in CI.
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user, password = (
            os.environ.get("MLFLOW_TRACKING_USERNAME"),
            os.environ.get("MLFLOW_TRACKING_PASSWORD"),
        )
        if token:
            return {"Authorization": f"Bearer {token}"}
        if user and password:
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
        return {}

    def _get(self, path: str, **params: str) -> dict[str, Any] | None:
        """The JSON answer, or None when MLflow says the resource does not exist."""
        url = f"{self.url}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(sorted(params.items()))}"
        if url in self._cache:
            return self._cache[url]
        request = urllib.request.Request(url, headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer: dict[str, Any] | None = json.load(response)
        except urllib.error.HTTPError as err:
            body = _json_or_empty(err)
            if err.code == 404 and body.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
                answer = None
            else:
                reason = body.get("message") or err.reason
                raise RegistryUnavailable(
                    f"registry {self.url}: HTTP {err.code} on {path}: {reason}"
                ) from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise RegistryUnavailable(f"registry {self.url} is unreachable: {reason}") from None
        self._cache[url] = answer
        return answer

    def model(self, name: str) -> dict[str, Any] | None:
        answer = self._get("registered-models/get", name=name)
        return None if answer is None else answer["registered_model"]

    def version(self, name: str, version: str) -> dict[str, Any] | None:
        answer = self._get("model-versions/get", name=name, version=version)
        return None if answer is None else answer["model_version"]


def _json_or_empty(err: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        body = json.load(err)
    except (ValueError, OSError):
        return {}
    return body if isinstance(body, dict) else {}


def environment_of(doc: RenderedDoc) -> str:
    """The env a document is judged for: --env, else its mlplat/environment label, else dev."""
    labels = (doc.doc.get("metadata") or {}).get("labels") or {}
    return doc.env or labels.get(ENV_LABEL) or DEFAULT_ENV


def check(docs: Sequence[RenderedDoc], registry_url: str, *, repo_root: Path = REPO) -> list[Finding]:
    """Findings for every InferenceService in `docs`; RegistryUnavailable if the registry can't be asked."""
    services = [d for d in docs if d.doc.get("kind") == "InferenceService"]
    if not services:
        return []
    registry = Registry(registry_url)
    findings: list[Finding] = []
    for doc in services:
        findings += _check_service(doc, registry, repo_root)
    return findings


def _check_service(rendered: RenderedDoc, registry: Registry, repo_root: Path) -> list[Finding]:
    env = environment_of(rendered)
    meta = rendered.doc.get("metadata") or {}
    model = (meta.get("labels") or {}).get(MODEL_LABEL)
    version = str((meta.get("annotations") or {}).get(VERSION_ANNOTATION) or "")
    storage_uri = ((rendered.doc.get("spec") or {}).get("predictor") or {}).get("model", {}).get("storageUri")

    def finding(rule: str, message: str, fix: str, file: str | None = None) -> Finding:
        return Finding(file or rendered.source_file, rendered.ref, rule, message, fix, env=env)

    overlay = f"apps/{model}/overlays/{env}/model-version.yaml"
    if not model:
        return [
            finding(
                "MLP-REGISTRY-MODEL", f"no {MODEL_LABEL} label", "label it with its registered model name"
            )
        ]
    if registry.model(model) is None:
        return [
            finding(
                "MLP-REGISTRY-MODEL",
                f"registered model {model!r} does not exist in {registry.url}",
                f"register {model!r} in MLflow or correct the {MODEL_LABEL} label",
            )
        ]
    if not version:
        return [
            finding("MLP-REGISTRY-VERSION", f"no {VERSION_ANNOTATION} annotation", f"set it in {overlay}")
        ]
    registered = registry.version(model, version)
    if registered is None:
        return [
            finding(
                "MLP-REGISTRY-VERSION",
                f"{model!r} has no version {version} in {registry.url}",
                f"register version {version} or set {VERSION_ANNOTATION} to an existing version in {overlay}",
            )
        ]
    findings = []
    if registered.get("status") != "READY":
        findings.append(
            finding(
                "MLP-REGISTRY-NOT-READY",
                f"{model} version {version} is {registered.get('status')}, not READY",
                "wait for the registration to finish or register the version again",
            )
        )
    source = registered.get("source")
    if (storage_uri or "").rstrip("/") != (source or "").rstrip("/"):
        findings.append(
            finding(
                "MLP-REGISTRY-STORAGE-URI",
                f"storageUri {storage_uri!r} is not the registered source {source!r} of {model} v{version}",
                f"set spec.predictor.model.storageUri: {source} in {overlay}",
            )
        )
    findings += _check_evaluation(registered, model, version, env, repo_root, finding)
    if env == "prod" and APPROVAL_ALIAS not in (registered.get("aliases") or []):
        holder = _alias_holder(registry.model(model) or {}, APPROVAL_ALIAS)
        findings.append(
            finding(
                "MLP-REGISTRY-APPROVAL",
                f"{model} v{version} does not hold the registry alias {APPROVAL_ALIAS!r}"
                + (f" (v{holder} does)" if holder else " (no version does)"),
                f"have the model owner approve it: set alias {APPROVAL_ALIAS!r} on {model} v{version} in MLflow",
            )
        )
    return findings


def _check_evaluation(
    registered: dict[str, Any],
    model: str,
    version: str,
    env: str,
    repo_root: Path,
    finding: Callable[..., Finding],
) -> list[Finding]:
    rule = "MLP-REGISTRY-EVALUATION"
    try:
        evaluation = load_evaluation(model, repo_root)
    except EvaluationFileError as err:
        return [
            finding(
                rule,
                str(err),
                "add metric and per-environment thresholds",
                _rel(evaluation_path(model, repo_root), repo_root),
            )
        ]
    tags = {t["key"]: t.get("value") for t in registered.get("tags") or []}
    record = f"on {model} v{version}"
    if tags.get(EVALUATION_TAG) != EVALUATION_PASSED:
        return [
            finding(
                rule,
                f"tag {EVALUATION_TAG}={EVALUATION_PASSED} is missing {record} (found {tags.get(EVALUATION_TAG)!r})",
                "evaluate the version and record the result as registry tags",
            )
        ]
    if evaluation.metric is None:
        return []
    threshold = evaluation.thresholds[env]
    tag = METRIC_TAG_PREFIX + evaluation.metric
    try:
        value = float(tags[tag])
    except (KeyError, TypeError, ValueError):
        return [
            finding(rule, f"tag {tag} is missing or not a number {record}", f"record {tag} on the version")
        ]
    if not value >= threshold:
        return [
            finding(
                rule,
                f"{evaluation.metric} {value:g} {record} is below the {env} threshold {threshold:g}",
                f"deploy a version with {evaluation.metric} >= {threshold:g} to {env}",
            )
        ]
    return []


def _alias_holder(registered_model: dict[str, Any], alias: str) -> str | None:
    return next(
        (a["version"] for a in registered_model.get("aliases") or [] if a.get("alias") == alias), None
    )
