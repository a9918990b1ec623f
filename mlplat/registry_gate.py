"""The registry gate: an InferenceService may only name a model version the MLflow registry vouches for.

For every rendered InferenceService it asks the registry whether the model (`mlplat/model`) and the
version (`mlplat/model-version`) exist, the version is READY, its source is exactly the manifest's
`storageUri`, it carries the evaluation result its environment requires (`apps/<app>/evaluation.yaml`),
for staging and prod, whether it carries the lineage tags and model card of `mlplat.retrain.lineage`,
and, for prod, whether it holds the `approved` alias. Every canary in `spec.canary` (KServe >= 0.20,
Standard mode) is judged the same way: its predictor must be named `v<N>`, `<N>` is its version, and
its own `storageUri` must be that version's source; in prod a canary must hold `canary-approved` or
`approved` (MLflow aliases are unique, so the stable version keeps `approved` while the next one is on
canary). `mlplat validate` and `mlplat promote` both call `check`, so a promotion can never write what
validate would then reject.

The registry is read through MLflow's REST API with a short timeout and no retries: MLflow's own client
retries for minutes, and a CI run should fail in seconds with the URL and the reason instead.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.contract import CANARY_VERSION_ANNOTATION, ENVIRONMENTS, MODEL_LABEL, PRODUCTION, app_environments
from infra.contract import ENVIRONMENT_LABEL as ENV_LABEL
from infra.contract import MODEL_VERSION_ANNOTATION as VERSION_ANNOTATION
from mlplat import safe_yaml
from mlplat.findings import Finding, RenderedDoc
from mlplat.retrain import lineage

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ENV = "dev"  # a manifest with neither --env nor an mlplat/environment label: judged by dev's bar
APPROVAL_ALIAS = "approved"
CANARY_APPROVAL_ALIAS = "canary-approved"  # enough for a prod canary; `approved` is too
EVALUATION_TAG = "mlplat.evaluation"
EVALUATION_PASSED = "passed"
METRIC_TAG_PREFIX = "mlplat.metric."
REQUEST_TIMEOUT_S = 5.0
# Every environment after the first (ENVIRONMENTS is in promotion order): dev may run a hand-registered
# experiment; beyond it, no version without its lineage.
LINEAGE_ENVIRONMENTS = ENVIRONMENTS[1:]

CANARY_FILE = "canary.yaml"
CANARY_NAME_PREFIX = "v"  # a canary predictor is named v<N>: KServe runs it as <isvc>-v<N>-predictor


class RegistryUnavailable(Exception):
    """The registry could not be asked; the message names the URL and the reason."""


class EvaluationFileError(Exception):
    """`apps/<app>/evaluation.yaml` is missing or malformed; the message says which."""


@dataclass(frozen=True)
class Evaluation:
    """What an app's versions must have shown before deploying to each environment."""

    metric: str | None  # None: only the `mlplat.evaluation=passed` sign-off is required
    # For every environment the app deploys to (at least), in promotion order.
    thresholds: dict[str, float]

    @property
    def entry_threshold(self) -> float:
        """The bar of the least strict environment given: what a new version must clear to be deployed
        anywhere (`mlplat retrain evaluate` signs off against it)."""
        return next(iter(self.thresholds.values()))


def evaluation_path(app: str, repo_root: Path = REPO) -> Path:
    return repo_root / "apps" / app / "evaluation.yaml"


def load_evaluation(app: str, repo_root: Path = REPO) -> Evaluation:
    """Read and check `apps/<app>/evaluation.yaml` (`metric` plus a threshold for each environment the
    app deploys to: those it has an overlay for, so a new environment in the contract needs no edit here
    until the app deploys there)."""
    path = evaluation_path(app, repo_root)
    try:
        _, data = safe_yaml.read_document(path, _rel(path, repo_root))
    except safe_yaml.Unreadable as err:
        raise EvaluationFileError(str(err)) from None
    if not isinstance(data, dict) or set(data) - {"metric", "thresholds", "description"}:
        raise EvaluationFileError(f"{_rel(path, repo_root)}: expected keys metric, thresholds, description")
    metric = data.get("metric")
    if metric is None:
        return Evaluation(metric=None, thresholds={})
    thresholds = data.get("thresholds")
    where = _rel(path, repo_root)
    if not isinstance(metric, str) or not isinstance(thresholds, dict):
        raise EvaluationFileError(f"{where}: metric must be a name and thresholds a mapping")
    for env, value in thresholds.items():
        if env not in ENVIRONMENTS:
            raise EvaluationFileError(
                f"{where}: thresholds.{env}: not an environment of infra/contract.py ({', '.join(ENVIRONMENTS)})"
            )
        if not _is_number(value):
            raise EvaluationFileError(f"{where}: thresholds.{env}: not a finite number ({value!r})")
    missing = [env for env in app_environments(path.parent) if env not in thresholds]
    if missing:
        raise EvaluationFileError(
            f"{where}: thresholds: no value for {', '.join(missing)}, where the app deploys "
            f"(apps/{app}/overlays/{missing[0]})"
        )
    given = [env for env in ENVIRONMENTS if env in thresholds]
    if not given:
        raise EvaluationFileError(
            f"{where}: thresholds: a metric needs a threshold for at least one environment"
        )
    return Evaluation(metric=metric, thresholds={env: float(thresholds[env]) for env in given})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# An authority's `user:password@` (RFC 3986 3.2.1), to the last `@`: a password pasted unencoded may hold
# '/', '?' or '#' (base64 does), which would otherwise end the match early and show its tail.
_USERINFO = re.compile(r"(?<=//)\S*@")


def redact(url: str) -> str:
    """`url` as any message may show it: the user and password before its host become `***@`. Textual,
    so it holds for a URL too malformed to parse."""
    return _USERINFO.sub("***@", url)


def split_url(url: str) -> urllib.parse.SplitResult:
    """A registry URL's parts, or RegistryUnavailable naming it: parsed once where a client is built, so
    a malformed URL is this error and not, at the first request, one of urllib's or http.client's
    (InvalidURL on a non-numeric port is no URLError) or MLflow's. urlsplit raises ValueError on an
    unclosed IPv6 bracket and `.port` on a port that is not 0-65535 digits (CPython 3.11
    Lib/urllib/parse.py: urlsplit "Invalid IPv6 URL", _NetlocResultMixinBase.port)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (read for the check it makes)
    except ValueError as err:
        raise RegistryUnavailable(f"registry {redact(url)!r}: not a URL ({err})") from None
    return parts


class Registry:
    """The few read calls the gate needs from MLflow's REST API, cached per run."""

    def __init__(self, url: str, timeout: float = REQUEST_TIMEOUT_S) -> None:
        parts = split_url(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryUnavailable(
                f"registry {redact(url)!r}: not an http(s) URL of an MLflow tracking server (http(s)://HOST[:PORT])"
            )
        # Credentials in the URL are sent as basic auth, never as part of the address (urllib would take
        # `user:password@host` for the host) and never shown: `url` is the address without them.
        self._url_credentials = (
            (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password))
            if parts.username is not None and parts.password is not None
            else None
        )
        self.url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl().rstrip("/")
        self.timeout = timeout
        self._cache: dict[str, Any] = {}

    def _headers(self) -> dict[str, str]:
        # The same credentials MLflow's own client sends, in its order. MLflow 3.17.2 hands the tracking
        # URI to requests as it is (mlflow/utils/credentials.py get_default_host_creds: host=store_uri),
        # and requests 2.34.2 turns a URL's user and password into basic auth that replaces any
        # Authorization header (requests/models.py prepare_auth: get_auth_from_url, unquoted, both
        # needed; HTTPBasicAuth.__call__ sets the header). Else a user and password (basic auth) before
        # a token (mlflow/utils/rest_utils.py, the Authorization header of http_request). The platform's
        # MLflow runs basic auth (platform/mlflow/values.yaml `auth`), whose server reads only the user
        # and password of the header (mlflow/server/auth/__init__.py authenticate_request_basic_auth): a
        # Bearer token sent instead is a 401.
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user, password = self._url_credentials or (
            os.environ.get("MLFLOW_TRACKING_USERNAME"),
            os.environ.get("MLFLOW_TRACKING_PASSWORD"),
        )
        if user and password:
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
        if token:
            return {"Authorization": f"Bearer {token}"}
        return {}

    def _get(self, path: str, **params: str) -> Any:
        """The decoded JSON answer, or None when MLflow says the resource does not exist."""
        url = f"{self.url}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(sorted(params.items()))}"
        if url in self._cache:
            return self._cache[url]
        request = urllib.request.Request(url, headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer: Any = json.load(response)
        except urllib.error.HTTPError as err:
            body = _json_or_empty(err)
            if err.code == 404 and body.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
                answer = None
            else:
                reason = body.get("message") or err.reason
                raise RegistryUnavailable(
                    f"registry {self.url}: HTTP {err.code} on {path}: {reason}"
                ) from None
        except json.JSONDecodeError:
            raise RegistryUnavailable(
                f"registry {self.url}: not an MLflow answer (no JSON) on {path}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise RegistryUnavailable(f"registry {self.url} is unreachable: {reason}") from None
        self._cache[url] = answer
        return answer

    def model(self, name: str) -> dict[str, Any] | None:
        model = self._field(self._get("registered-models/get", name=name), "registered_model")
        if model is not None and not _list_of(
            model.get("aliases"), lambda a: isinstance(a, dict) and "version" in a
        ):
            raise RegistryUnavailable(f"registry {self.url}: not an MLflow answer (aliases of {name!r})")
        return model

    def version(self, name: str, version: str) -> dict[str, Any] | None:
        found = self._field(self._get("model-versions/get", name=name, version=version), "model_version")
        # A tag list of strings or an alias string would turn the gate's membership tests into
        # substring tests ("not-approved" contains "approved"): the shapes are checked, not assumed.
        if found is not None and not (
            _list_of(found.get("tags"), lambda t: isinstance(t, dict) and isinstance(t.get("key"), str))
            and _list_of(found.get("aliases"), lambda a: isinstance(a, str))
        ):
            raise RegistryUnavailable(
                f"registry {self.url}: not an MLflow answer (tags/aliases of {name} v{version})"
            )
        return found

    def artifacts(self, run_id: str, folder: str = "") -> list[str] | None:
        """The files of a run's artifact `folder` (MLflow REST `GET artifacts/list`, which answers
        `{"root_uri", "files": [{"path", "is_dir", "file_size"}]}` and omits an empty `files`:
        mlflow/server/handlers.py `_list_artifacts`), None for a run MLflow does not know."""
        params = {"run_id": run_id, **({"path": folder} if folder else {})}
        answer = self._get("artifacts/list", **params)
        if answer is None:
            return None
        files = answer.get("files") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or not _list_of(
            files, lambda f: isinstance(f, dict) and isinstance(f.get("path"), str)
        ):
            raise RegistryUnavailable(
                f"registry {self.url}: not an MLflow answer (artifacts of run {run_id})"
            )
        return [str(f["path"]) for f in files or [] if not f.get("is_dir")]

    def _field(self, answer: Any, key: str) -> dict[str, Any] | None:
        """`answer[key]` when the answer has MLflow's shape; a login page or a proxy's JSON has not."""
        if answer is None:
            return None
        value = answer.get(key) if isinstance(answer, dict) else None
        if not isinstance(value, dict):
            raise RegistryUnavailable(f"registry {self.url}: not an MLflow answer (no {key!r} object)")
        return value


def _list_of(value: Any, valid: Callable[[Any], bool]) -> bool:
    """True for an absent list or a list whose every item is `valid` (MLflow omits empty lists)."""
    return value is None or (isinstance(value, list) and all(valid(item) for item in value))


def _json_or_empty(err: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        body = json.load(err)
    except (ValueError, OSError):
        return {}
    return body if isinstance(body, dict) else {}


def environment_of(doc: RenderedDoc) -> str:
    """The env a document is judged for: --env, else its mlplat/environment label, else dev."""
    return doc.env or doc.labels.get(ENV_LABEL) or DEFAULT_ENV


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
    spec = rendered.doc.get("spec") or {}
    storage_uri = (spec.get("predictor") or {}).get("model", {}).get("storageUri")

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
        findings = [
            finding("MLP-REGISTRY-VERSION", f"no {VERSION_ANNOTATION} annotation", f"set it in {overlay}")
        ]
    else:
        findings = _check_version(
            _Subject(model, version, storage_uri, env, overlay, "", (APPROVAL_ALIAS,)),
            registry,
            repo_root,
            finding,
        )
    return findings + _check_canaries(rendered, model, env, registry, repo_root, finding)


@dataclass(frozen=True)
class _Subject:
    """One predictor to judge: the stable one, or a canary (`who` names it in every message)."""

    model: str
    version: str
    storage_uri: str | None
    env: str
    overlay: str  # where the fix goes
    who: str  # "" for the stable predictor, "canary 'v3': " for a canary
    aliases: tuple[str, ...]  # any of them approves the version for prod
    uri_field: str = "spec.predictor.model.storageUri"


def _check_version(
    subject: _Subject, registry: Registry, repo_root: Path, finding: Callable[..., Finding]
) -> list[Finding]:
    model, version, overlay = subject.model, subject.version, subject.overlay

    def about(rule: str, message: str, fix: str, file: str | None = None) -> Finding:
        """A finding on this predictor: every message says which one (`who`), whichever check made it."""
        return finding(rule, subject.who + message, fix, file)

    registered = registry.version(model, version)
    if registered is None:
        return [
            about(
                "MLP-REGISTRY-VERSION",
                f"{model!r} has no version {version} in {registry.url}",
                f"register version {version} or name an existing version in {overlay}",
            )
        ]
    findings = []
    if registered.get("status") != "READY":
        findings.append(
            about(
                "MLP-REGISTRY-NOT-READY",
                f"{model} version {version} is {registered.get('status')}, not READY",
                "wait for the registration to finish or register the version again",
            )
        )
    source = registered.get("source")
    if (subject.storage_uri or "").rstrip("/") != (source or "").rstrip("/"):
        findings.append(
            about(
                "MLP-REGISTRY-STORAGE-URI",
                f"storageUri {subject.storage_uri!r} is not the registered source {source!r} "
                f"of {model} v{version}",
                f"set {subject.uri_field}: {source} in {overlay}",
            )
        )
    findings += _check_evaluation(subject, registered, repo_root, about)
    findings += _check_lineage(subject, registered, registry, about)
    held = registered.get("aliases") or []
    if subject.env in PRODUCTION and not any(alias in held for alias in subject.aliases):
        holder = _alias_holder(registry.model(model) or {}, APPROVAL_ALIAS)
        if len(subject.aliases) == 1:
            where = f" (v{holder} does)" if holder else " (no version does)"
        else:
            where = f" (v{holder} holds {APPROVAL_ALIAS!r})" if holder else ""
        findings.append(
            about(
                "MLP-REGISTRY-APPROVAL",
                f"{model} v{version} does not hold the registry alias "
                + " or ".join(repr(a) for a in subject.aliases)
                + where,
                f"have the model owner approve it: set alias {subject.aliases[0]!r} on {model} v{version} "
                "in MLflow",
            )
        )
    return findings


def _check_canaries(
    rendered: RenderedDoc,
    model: str,
    env: str,
    registry: Registry,
    repo_root: Path,
    finding: Callable[..., Finding],
) -> list[Finding]:
    """Each `spec.canary` entry names its version `v<N>` and is gated like the stable predictor."""
    canaries = (rendered.doc.get("spec") or {}).get("canary") or []
    annotations = (rendered.doc.get("metadata") or {}).get("annotations") or {}
    overlay = f"apps/{model}/overlays/{env}/{CANARY_FILE}"
    rule = "MLP-REGISTRY-CANARY"

    def in_canary_file(rule: str, message: str, fix: str, file: str | None = None) -> Finding:
        return finding(rule, message, fix, file or overlay)

    if not isinstance(canaries, list):
        return [finding(rule, "spec.canary is not a list", f"fix {overlay}", overlay)]
    findings: list[Finding] = []
    versions = []
    for index, entry in enumerate(canaries):
        predictor = (entry or {}).get("predictor") if isinstance(entry, dict) else None
        name = str((predictor or {}).get("name") or "") if isinstance(predictor, dict) else ""
        version = name.removeprefix(CANARY_NAME_PREFIX)
        if not name.startswith(CANARY_NAME_PREFIX) or not version.isdigit():
            findings.append(
                finding(
                    rule,
                    f"spec.canary[{index}]: predictor name {name!r} does not say its model version",
                    f"name the canary predictor {CANARY_NAME_PREFIX}<version> in {overlay}",
                    overlay,
                )
            )
            continue
        versions.append(version)
        model_spec = (predictor or {}).get("model") or {}
        subject = _Subject(
            model,
            version,
            model_spec.get("storageUri") if isinstance(model_spec, dict) else None,
            env,
            overlay,
            f"canary {name!r}: ",
            (CANARY_APPROVAL_ALIAS, APPROVAL_ALIAS),
            f"spec.canary[{index}].predictor.model.storageUri",
        )
        findings += _check_version(subject, registry, repo_root, in_canary_file)
    recorded = annotations.get(CANARY_VERSION_ANNOTATION)
    if recorded is not None and [str(recorded)] != versions:
        findings.append(
            finding(
                rule,
                f"annotation {CANARY_VERSION_ANNOTATION}={recorded!r} does not match the canaries in "
                f"spec.canary (versions {', '.join(versions) or 'none'})",
                f"keep one canary and its annotation together in {overlay}",
                overlay,
            )
        )
    return findings


def _check_evaluation(
    subject: _Subject, registered: dict[str, Any], repo_root: Path, finding: Callable[..., Finding]
) -> list[Finding]:
    model, version, env = subject.model, subject.version, subject.env
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
    threshold = evaluation.thresholds.get(env)
    if threshold is None:  # judged for an environment it has no overlay for (a label, or the default)
        where = _rel(evaluation_path(model, repo_root), repo_root)
        return [
            finding(
                rule,
                f"{where} has no threshold for {env} {record}",
                f"add thresholds.{env} to {where}, or deploy {model} only where it has an overlay",
                where,
            )
        ]
    tag = METRIC_TAG_PREFIX + evaluation.metric
    try:
        value = float(tags[tag])
    except (KeyError, TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):  # "inf" would pass any threshold
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


def _check_lineage(
    subject: _Subject, registered: dict[str, Any], registry: Registry, finding: Callable[..., Finding]
) -> list[Finding]:
    """Staging and prod serve only versions an auditor can trace: every lineage tag and a model card
    that exists. The card is checked where the registry keeps it, among the artifacts of the
    version's run (`mlplat retrain register` logs it there), not trusted from the tag naming it."""
    model, version, env = subject.model, subject.version, subject.env
    if env not in LINEAGE_ENVIRONMENTS:
        return []
    tags = {t["key"]: t.get("value") for t in registered.get("tags") or []}
    findings = []
    absent = lineage.missing(tags)
    if absent:
        findings.append(
            finding(
                "MLP-REGISTRY-LINEAGE",
                f"{model} v{version} lacks lineage tag(s) {', '.join(absent)} required in {env}",
                "register it through the training pipeline (`mlplat retrain register`), which records them",
            )
        )
    card = (tags.get(lineage.MODEL_CARD) or "").strip()
    if not card:
        findings.append(
            finding(
                "MLP-REGISTRY-LINEAGE",
                f"{model} v{version} has no model card (tag {lineage.MODEL_CARD}) required in {env}",
                "register it through the training pipeline (`mlplat retrain register`), which writes the card",
            )
        )
        return findings
    run_id = registered.get("run_id")
    folder = card.rpartition("/")[0]
    held = registry.artifacts(str(run_id), folder) if run_id else None
    if held is None or card not in held:
        where = f"the artifacts of run {run_id}" if run_id else "any run (the version names none)"
        findings.append(
            finding(
                "MLP-REGISTRY-LINEAGE",
                f"{model} v{version}: its model card {card!r} (tag {lineage.MODEL_CARD}) is not among "
                f"{where}, required in {env}",
                "register it through the training pipeline (`mlplat retrain register`), which logs the card "
                "with the version's run",
            )
        )
    return findings


def _alias_holder(registered_model: dict[str, Any], alias: str) -> str | None:
    return next(
        (a["version"] for a in registered_model.get("aliases") or [] if a.get("alias") == alias), None
    )
