"""`mlplat promote` and `mlplat rollback`: move a model version between environments through Git.

An environment's model version lives in one file, `apps/<app>/overlays/<env>/model-version.yaml`.
Promotion copies the source environment's version into the target's file, rollback restores the
version recorded in its `mlplat/rollback-version` annotation. Both first render the target
InferenceService with the new version and run the registry gate for the target environment, so
they only ever write what `mlplat validate` accepts; the file is replaced atomically and nothing
else is touched. Exit codes: 0 written (or nothing to do), 1 refused with a reason, 2 usage error
or the registry cannot be asked.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlplat import model_store, registry_gate
from mlplat.findings import RenderedDoc

REPO = registry_gate.REPO
ENVIRONMENTS = registry_gate.ENVIRONMENTS
OVERLAY_FILE = "model-version.yaml"
VERSION_ANNOTATION = registry_gate.VERSION_ANNOTATION
ROLLBACK_ANNOTATION = "mlplat/rollback-version"


class UsageError(Exception):
    """Unknown app or environment, same environment twice, no registry: exit 2."""


class Refused(Exception):
    """The change would not be valid (gate findings, nothing to roll back, broken overlay): exit 1."""


def app_names(repo_root: Path) -> list[str]:
    return sorted(p.parent.parent.name for p in (repo_root / "apps").glob("*/base/kustomization.yaml"))


def check_app(repo_root: Path, app: str) -> None:
    if app not in app_names(repo_root):
        known = ", ".join(app_names(repo_root)) or "none"
        raise UsageError(f"unknown app {app!r} (apps: {known})")


def check_env(env: str) -> None:
    if env not in ENVIRONMENTS:
        raise UsageError(f"unknown environment {env!r} (choose one of {', '.join(ENVIRONMENTS)})")


@dataclass(frozen=True)
class Overlay:
    """One environment's model-version.yaml: its leading comments and its patch document."""

    path: Path
    header: str
    doc: dict[str, Any]

    @property
    def annotations(self) -> dict[str, Any]:
        return dict(self.doc["metadata"].get("annotations") or {})

    @property
    def version(self) -> str:
        return str(self.annotations[VERSION_ANNOTATION])

    @property
    def storage_uri(self) -> str:
        return str(self.doc["spec"]["predictor"]["model"]["storageUri"])


def overlay_path(repo_root: Path, app: str, env: str) -> Path:
    return repo_root / "apps" / app / "overlays" / env / OVERLAY_FILE


def read_overlay(repo_root: Path, app: str, env: str) -> Overlay:
    path = overlay_path(repo_root, app, env)
    rel = path.relative_to(repo_root)
    try:
        text = path.read_text()
        doc = yaml.safe_load(text)
    except FileNotFoundError:
        raise Refused(f"{rel} does not exist: the environment's model version must live there") from None
    except (OSError, yaml.YAMLError) as err:
        raise Refused(f"{rel} cannot be read: {err}") from None
    try:
        if doc["kind"] != "InferenceService":
            raise TypeError
        overlay = Overlay(path, _leading_comments(text), doc)
        version, _ = overlay.version, overlay.storage_uri
    except (KeyError, TypeError, AttributeError):
        raise Refused(
            f"{rel} is not a model-version patch (an InferenceService with annotation {VERSION_ANNOTATION} "
            "and spec.predictor.model.storageUri)"
        ) from None
    if not version.isdigit():
        raise Refused(f"{rel}: {VERSION_ANNOTATION} is {version!r}, not a version number")
    return overlay


def _leading_comments(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


class _Dumper(yaml.SafeDumper):
    """Quote numeric strings with double quotes, as the hand-written overlays do, so diffs stay minimal."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if value.isdigit() else None)


_Dumper.add_representer(str, _represent_str)


def overlay_text(overlay: Overlay, version: str, storage_uri: str, rollback: str | None) -> str:
    """The new file: same comments, same keys in the same order, only version/URI/record changed."""
    doc = copy.deepcopy(overlay.doc)
    annotations = doc["metadata"].setdefault("annotations", {})
    annotations[VERSION_ANNOTATION] = version
    annotations.pop(ROLLBACK_ANNOTATION, None)
    if rollback is not None:
        annotations[ROLLBACK_ANNOTATION] = rollback
    doc["spec"]["predictor"]["model"]["storageUri"] = storage_uri
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return overlay.header + body


def write_atomic(path: Path, text: str) -> None:
    """Write beside the file and rename over it: a crash leaves the old or the new file, never half."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        shutil.copymode(path, temp)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def render_inference_service(repo_root: Path, app: str, env: str) -> RenderedDoc:
    """The environment's InferenceService as Argo CD would apply it (`kubectl kustomize`)."""
    target = Path("apps") / app / "overlays" / env
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise UsageError("kubectl is not installed: it renders the overlay (run `make tools`)")
    result = subprocess.run(
        [kubectl, "kustomize", str(repo_root / target)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise Refused(f"{target} does not render: {result.stderr.strip()}")
    services = [d for d in yaml.safe_load_all(result.stdout) if d and d.get("kind") == "InferenceService"]
    if len(services) != 1:
        raise Refused(f"{target} renders {len(services)} InferenceServices; promotion expects exactly one")
    return RenderedDoc(env, str(target), str(target / OVERLAY_FILE), services[0])


def with_version(rendered: RenderedDoc, version: str, storage_uri: str) -> RenderedDoc:
    doc = copy.deepcopy(rendered.doc)
    doc["metadata"].setdefault("annotations", {})[VERSION_ANNOTATION] = version
    doc["spec"]["predictor"]["model"]["storageUri"] = storage_uri
    return RenderedDoc(rendered.env, rendered.target, rendered.source_file, doc)


def _gate(repo_root: Path, app: str, env: str, version: str, storage_uri: str, registry: str) -> None:
    candidate = with_version(render_inference_service(repo_root, app, env), version, storage_uri)
    try:
        findings = registry_gate.check([candidate], registry, repo_root=repo_root)
    except registry_gate.RegistryUnavailable as err:
        raise UsageError(str(err)) from None
    if findings:
        reasons = "\n".join(f"  {f.as_text()}" for f in findings)
        raise Refused(f"the registry gate rejects {app} v{version} for {env}:\n{reasons}")


def promote(repo_root: Path, app: str, source: str, target: str, registry: str) -> str:
    """Give `target` the source environment's version; returns what happened."""
    check_env(source)
    check_env(target)
    if source == target:
        raise UsageError(f"--from and --to are both {source}")
    check_app(repo_root, app)
    origin, current = read_overlay(repo_root, app, source), read_overlay(repo_root, app, target)
    if origin.version == current.version and origin.storage_uri == current.storage_uri:
        return f"{app}: {target} already runs version {current.version}; nothing to do"
    _gate(repo_root, app, target, origin.version, origin.storage_uri, registry)
    write_atomic(current.path, overlay_text(current, origin.version, origin.storage_uri, current.version))
    return (
        f"{app}: promoted version {origin.version} from {source} to {target} (was {current.version}); "
        f"wrote {current.path.relative_to(repo_root)}; undo with `mlplat rollback {app} --env {target}`"
    )


def rollback(repo_root: Path, app: str, env: str, registry: str) -> str:
    """Restore the version recorded by the last promotion and clear the record (no ping-pong)."""
    check_env(env)
    check_app(repo_root, app)
    current = read_overlay(repo_root, app, env)
    previous = current.annotations.get(ROLLBACK_ANNOTATION)
    rel = current.path.relative_to(repo_root)
    if previous is None:
        raise Refused(f"{rel} records no {ROLLBACK_ANNOTATION}: nothing to roll back to")
    previous = str(previous)
    if not previous.isdigit():
        raise Refused(f"{rel}: {ROLLBACK_ANNOTATION} is {previous!r}, not a version number")
    storage_uri = model_store.version_uri(app, previous)  # the registered model is named after the app
    _gate(repo_root, app, env, previous, storage_uri, registry)
    write_atomic(current.path, overlay_text(current, previous, storage_uri, None))
    return f"{app}: rolled {env} back from version {current.version} to {previous}; wrote {rel}"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("app", help="app folder under apps/")
    common.add_argument("--registry", help="MLflow tracking URL (default: $MLFLOW_TRACKING_URI)")
    common.add_argument("--repo-root", type=Path, default=REPO, help=argparse.SUPPRESS)
    parser = subparsers.add_parser(
        "promote", parents=[common], help="give an environment another environment's model version (gated)"
    )
    parser.add_argument("--from", dest="source", required=True, metavar="ENV")
    parser.add_argument("--to", dest="target", required=True, metavar="ENV")
    parser.set_defaults(func=run)
    parser = subparsers.add_parser(
        "rollback", parents=[common], help="restore the model version recorded by the last promotion (gated)"
    )
    parser.add_argument("--env", required=True, metavar="ENV")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command = "promote" if hasattr(args, "source") else "rollback"
    try:
        registry = args.registry or os.environ.get("MLFLOW_TRACKING_URI")
        if not registry:
            raise UsageError("no registry: pass --registry URL or set MLFLOW_TRACKING_URI")
        root = args.repo_root.resolve()
        if command == "promote":
            message = promote(root, args.app, args.source, args.target, registry)
        else:
            message = rollback(root, args.app, args.env, registry)
    except UsageError as err:
        print(f"mlplat {command}: {err}", file=sys.stderr)
        return 2
    except Refused as err:
        print(f"mlplat {command}: refused: {err}", file=sys.stderr)
        return 1
    print(message)
    return 0
