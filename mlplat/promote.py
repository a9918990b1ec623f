"""`mlplat promote` and `mlplat rollback`: move a model version between environments through Git.

An environment's model version lives in one file, `apps/<app>/overlays/<env>/model-version.yaml`.
Promotion copies the source environment's version into the target's file, rollback restores the
version recorded in its `mlplat/rollback-version` annotation. Both first render the target
InferenceService with the new version and run the registry gate for the target environment, so
they only ever write what `mlplat validate` accepts; nothing else is touched. Exit codes: 0 written (or
nothing to do), 1 refused with a reason, 2 usage error, the registry cannot be asked, the files cannot
be written, or another promote/rollback of the app is running.

One promote or rollback per app at a time (`exclusive`, a lock on the app's overlays folder), and
every change is all or nothing even when the process is killed (`apply_changes`, a journal of the
old bytes that the next run restores from).

Canary (prod only, KServe >= 0.20 `spec.canary`, Standard mode): `promote --canary P` writes the new
version into `overlays/prod/canary.yaml` (KServe runs it as its own Deployment and Service) and the
traffic split into `overlays/prod/canary-route.yaml` (the app's HTTPRoute: P to the canary, 100 - P to
the stable version, plus a header rule per version for A/B), and lists both in the overlay's
`kustomization.yaml`; P = 0 serves the canary by header only. A plain promote of that version is the
full rollout (model-version.yaml gets it, the canary and its split go); rollback with a canary present
removes both, so all traffic is the stable version's again. Multi-file changes are rendered and gated
as a whole in a scratch copy first, then swapped in file by file in an order that keeps the overlay
renderable, and undone if a step fails or the run dies.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import fcntl
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.contract import (
    CANARY_VERSION_ANNOTATION,
    ENVIRONMENTS,
    MODEL_VERSION_ANNOTATION,
    PRODUCTION,
    ROLLBACK_VERSION_ANNOTATION,
)
from mlplat import checkout, model_store, registry_gate, safe_yaml
from mlplat.findings import RenderedDoc
from mlplat.validation import prescreen, routes
from mlplat.validation.capacity import AUTOSCALER_CLASS, autoscaler_class
from mlplat.validation.scaling import EXTERNAL
from mlplat.validation.targets import PROMOTE_JOURNAL

REPO = registry_gate.REPO
OVERLAY_FILE = "model-version.yaml"
CANARY_FILE = registry_gate.CANARY_FILE
CANARY_ROUTE_FILE = "canary-route.yaml"  # the split on the app's HTTPRoute (apps/components/gateway-route)
KUSTOMIZATION = "kustomization.yaml"
CANARY_CONTAINER = "kserve-container"  # the container name KServe gives a predictor's model
FIXED_REPLICAS = "none"  # the KServe autoscaler class that sets a Deployment's replicas to its minReplicas


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


def check_writable_app(repo_root: Path, app: str) -> None:
    """An app promote and rollback may write: a known app that holds no symbolic link and is none.

    Checked before anything is copied or written. promote writes only the app's overlays, but a write
    follows a link: a model-version.yaml linked to a file outside the checkout, or an `apps/<app>`
    linked to another clone's app, would be changed there, by the trial render of a change the gate
    then refuses as much as by the real write. A repository's app needs no links, so any link is a
    usage error naming it."""
    check_app(repo_root, app)
    app_dir = repo_root / "apps" / app
    links = [p for p in (repo_root / "apps", app_dir) if p.is_symlink()]
    if not links:
        for folder, dirs, files in os.walk(
            app_dir
        ):  # followlinks=False: a linked folder is listed, not entered
            links += [Path(folder, name) for name in sorted(dirs + files) if Path(folder, name).is_symlink()]
    if links:
        raise UsageError(
            f"{links[0].relative_to(repo_root)} is a symbolic link: promote and rollback write only real "
            f"files of the app (a write would follow it out of {app_dir.relative_to(repo_root)}); "
            "replace it with the file or folder itself"
        )


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
        return str(self.annotations[MODEL_VERSION_ANNOTATION])

    @property
    def storage_uri(self) -> str:
        return str(self.doc["spec"]["predictor"]["model"]["storageUri"])


def overlay_path(repo_root: Path, app: str, env: str) -> Path:
    return repo_root / "apps" / app / "overlays" / env / OVERLAY_FILE


def read_overlay(repo_root: Path, app: str, env: str) -> Overlay:
    path = overlay_path(repo_root, app, env)
    rel = path.relative_to(repo_root)
    try:
        text, doc = safe_yaml.read_document(path, str(rel))
    except safe_yaml.Unreadable as err:
        where = ": the environment's model version must live there" if err.missing else ""
        raise Refused(f"{err}{where}") from None
    try:
        if doc["kind"] != "InferenceService":
            raise TypeError
        _check_annotations(doc["metadata"].get("annotations"), rel)
        overlay = Overlay(path, _leading_comments(text), doc)
        version, _ = overlay.version, overlay.storage_uri
    except (KeyError, TypeError, AttributeError):
        raise Refused(
            f"{rel} is not a model-version patch (an InferenceService with annotation {MODEL_VERSION_ANNOTATION} "
            "and spec.predictor.model.storageUri)"
        ) from None
    if not version.isdigit():
        raise Refused(f"{rel}: {MODEL_VERSION_ANNOTATION} is {version!r}, not a version number")
    return overlay


def _check_annotations(annotations: Any, rel: Path) -> None:
    """Annotations are a map of strings to strings (Kubernetes ObjectMeta; the kubernetes client 37.0.1
    types them `Dict[str, StrictStr]`). Anything else is misread (a list of pairs as a mapping, a string
    as its characters, a number as the version) or refused at apply: say which key, before any write."""
    if annotations is None:
        return
    if not isinstance(annotations, dict):
        raise UsageError(
            f"{rel}: metadata.annotations is a {type(annotations).__name__}, not a mapping of names to strings"
        )
    for key, value in annotations.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise UsageError(
                f"{rel}: metadata.annotations.{key} is {value!r}: annotation names and values are strings "
                "(quote it)"
            )


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
    annotations[MODEL_VERSION_ANNOTATION] = version
    annotations.pop(ROLLBACK_VERSION_ANNOTATION, None)
    if rollback is not None:
        annotations[ROLLBACK_VERSION_ANNOTATION] = rollback
    doc["spec"]["predictor"]["model"]["storageUri"] = storage_uri
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return overlay.header + body


def render_inference_service(repo_root: Path, app: str, env: str) -> RenderedDoc:
    """The environment's InferenceService as Argo CD would apply it (`kubectl kustomize`)."""
    return _inference_service(render_overlay(repo_root, app, env))


def _inference_service(docs: list[RenderedDoc]) -> RenderedDoc:
    services = [d for d in docs if d.doc.get("kind") == "InferenceService"]
    if len(services) != 1:
        raise Refused(f"{docs[0].target if docs else 'the overlay'} renders {len(services)} InferenceServices; "
                      "promotion expects exactly one")  # fmt: skip
    return services[0]


def render_overlay(repo_root: Path, app: str, env: str) -> list[RenderedDoc]:
    """Every object of the environment's overlay as Argo CD would apply it (`kubectl kustomize`)."""
    target = Path("apps") / app / "overlays" / env
    unsafe = prescreen.unsafe_files(repo_root / target, repo_root)  # kustomize must never parse those
    if unsafe:
        raise Refused("\n".join(str(problem) for problem in unsafe))
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise UsageError("kubectl is not installed: it renders the overlay (run `make tools`)")
    result = subprocess.run(
        [kubectl, "kustomize", str(repo_root / target)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise Refused(f"{target} does not render: {result.stderr.strip()}")
    return [
        RenderedDoc(env, str(target), str(target / OVERLAY_FILE), d)
        for d in yaml.safe_load_all(result.stdout)
        if isinstance(d, dict)
    ]


def with_version(rendered: RenderedDoc, version: str, storage_uri: str) -> RenderedDoc:
    doc = copy.deepcopy(rendered.doc)
    doc["metadata"].setdefault("annotations", {})[MODEL_VERSION_ANNOTATION] = version
    doc["spec"]["predictor"]["model"]["storageUri"] = storage_uri
    return RenderedDoc(rendered.env, rendered.target, rendered.source_file, doc)


@dataclass(frozen=True)
class Change:
    """One file of a planned change: its new text, or None to delete it."""

    path: Path
    text: str | None


def render_planned(repo_root: Path, app: str, env: str, changes: list[Change]) -> list[RenderedDoc]:
    """The environment's objects as they will be once `changes` are written (scratch copy)."""
    with tempfile.TemporaryDirectory(prefix="mlplat-promote-") as scratch:
        shutil.copytree(repo_root / "apps", Path(scratch) / "apps", symlinks=True)
        for change in changes:
            path = Path(scratch) / change.path.relative_to(repo_root)
            path.unlink(missing_ok=True)
            if change.text is not None:
                # A new file, never whatever a link of the same name points at (O_EXCL fails on one).
                with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "w") as stream:
                    stream.write(change.text)
        docs = render_overlay(Path(scratch), app, env)
    return docs


JOURNAL = PROMOTE_JOURNAL  # while a change is being swapped in: see `journal_path`
JOURNAL_MODES = 0o755  # the most a restored file may be: git records a file as 644 or 755, nothing more
TEMP_MARK = ".mlplat-tmp-"  # in the name of every file staged beside the one it will replace
WRITABLE = (
    OVERLAY_FILE,
    CANARY_FILE,
    CANARY_ROUTE_FILE,
    KUSTOMIZATION,
)  # the only files promote/rollback write


@contextlib.contextmanager
def exclusive(repo_root: Path, app: str) -> Iterator[str | None]:
    """Hold the app's promotion lock; first finish whatever an earlier, killed run left behind.

    The lock is flock(2) on the app's `overlays/` folder itself, not on a lock file: nothing is
    created that could be committed or left behind, and the kernel releases it when the holder dies,
    however it dies, so a crash can never wedge later runs. It is taken without waiting: a second
    promote or rollback of the same app fails at once (exit 2) instead of acting on a state the first
    is about to change. Yields a note on what was recovered, or None.
    """
    folder = repo_root / "apps" / app / "overlays"
    try:
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        raise Refused(f"{folder.relative_to(repo_root)} cannot be opened: {err.strerror}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another `mlplat promote` or `mlplat rollback` of {app} is running in this checkout; "
                "run again when it has finished"
            ) from None
        yield recover(repo_root, folder)
    finally:
        os.close(handle)  # releases the lock


def journal_path(repo_root: Path, app: str) -> Path:
    """Where the app's journal lives: somewhere git cannot carry it, since the journal is trusted as
    evidence of a crash and restored without the gate.

    In a git checkout that is its git directory (`git rev-parse --git-path`, git-rev-parse(1): "Resolve
    $GIT_DIR/<path>", per work tree for a linked worktree), which no commit, clone or pull writes to: a
    journal committed into apps/ is never read (`mlplat validate` reports one, MLP-PROMOTE-JOURNAL).
    Only a tree outside git (a copy of apps/ only, the image's copy) keeps it in apps/<app>/overlays/.
    A checkout git cannot read (a `.git` it refuses: "dubious ownership", a broken gitdir) is refused,
    never taken for a tree outside git: its apps/ may hold a committed journal.
    """
    folder = repo_root / "apps" / app / "overlays"
    in_git = (repo_root / ".git").exists()
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "--git-path", f"mlplat-promote/{app}{JOURNAL}"],
            cwd=repo_root, capture_output=True, text=True, check=False,
        )  # fmt: skip
    except OSError as err:  # no git: no repository to carry the journal either
        if in_git:
            raise UsageError(f"{repo_root} is a git checkout, but git cannot run: {err.strerror}") from None
        return folder / JOURNAL
    if in_git and result.returncode != 0:
        raise UsageError(
            f"git cannot read the checkout {repo_root} ({result.stderr.strip()}): promote keeps its journal"
            " in the git directory and would otherwise trust one in apps/"
        )
    lines = result.stdout.splitlines()
    # The repository must be this checkout's own: a tree of apps inside another repository shares its
    # git directory with every other such tree, and one's journal must not restore into another.
    if result.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != repo_root.resolve():
        return folder / JOURNAL
    return (repo_root / lines[1]).resolve()


def recover(repo_root: Path, folder: Path) -> str | None:
    """Under the lock: undo a change a killed run left half swapped in, and drop its staged files.

    A journal present means a change was being swapped in and not finished: every file it lists
    gets its recorded bytes back (or is removed, if it did not exist), so the overlay is as before.
    """
    journal = journal_path(repo_root, folder.parent.name)
    patterns = (
        (folder, f"*/.*{TEMP_MARK}*"),
        (folder, f".*{TEMP_MARK}*"),
        (journal.parent, f".{journal.name}{TEMP_MARK}*"),
    )
    strays = {
        p for where, pattern in patterns for p in where.glob(pattern) if p.is_file()
    }  # a set: one folder outside git
    for stray in strays:
        stray.unlink()
    if not journal.exists():
        return f"removed {len(strays)} staged file(s) of an interrupted run" if strays else None
    rel = journal.relative_to(repo_root) if journal.is_relative_to(repo_root) else journal
    try:
        entries = json.loads(journal.read_text())["files"]
        originals = {_journal_path(folder, e["path"]): _journal_original(e) for e in entries}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise Refused(f"{rel} (left by an interrupted run) cannot be read ({err}): restore by hand") from None
    _restore(originals)
    journal.unlink()
    _fsync_dir(journal.parent)
    restored = ", ".join(str(p.relative_to(repo_root)) for p in originals)
    return f"an earlier promote/rollback was interrupted; restored {restored} as they were before it"


def _journal_path(folder: Path, name: object) -> Path:
    """A journal entry's file: only <env>/<a file promote writes>, so a planted journal can write nothing else."""
    env, _, file = str(name).partition("/")
    if env not in ENVIRONMENTS or file not in WRITABLE:
        raise ValueError(f"{name!r} is not a file promote writes")
    return folder / env / file


def _journal_original(entry: dict[str, Any]) -> tuple[bytes, int] | None:
    if entry["original"] is None:
        return None
    return base64.b64decode(entry["original"], validate=True), int(entry["mode"]) & JOURNAL_MODES


def _restore(originals: dict[Path, tuple[bytes, int] | None]) -> None:
    for path, original in originals.items():
        if original is None:
            path.unlink(missing_ok=True)
        else:
            os.replace(_stage(path, original[0], original[1]), path)
    for folder in {p.parent for p in originals}:
        _fsync_dir(folder)


def apply_changes(changes: list[Change]) -> None:
    """All or nothing, also when the process is killed: the files' old bytes go to a journal first.

    Every new text is staged (written and fsynced) beside its file, the journal of the old bytes is
    put in place atomically, then the files are swapped in (os.replace) in the callers' order and the
    journal removed: that removal is the commit. A failure before it restores every file from the
    journal at once; a kill before it leaves the journal, and the next promote or rollback of the app
    restores from it (`recover`) before doing anything else. The callers order the steps so that even
    the intermediate trees render (a new file before the entry that lists it, an entry removed before
    its file). Call under `exclusive`.
    """
    (folder,) = {c.path.parent.parent for c in changes}
    journal = journal_path(folder.parent.parent.parent, folder.parent.name)
    originals = {
        c.path: (c.path.read_bytes(), c.path.stat().st_mode) if c.path.exists() else None for c in changes
    }
    staged: dict[Path, str] = {}
    started = False
    try:
        for change in changes:
            if change.text is not None:
                staged[change.path] = _stage(change.path, change.text.encode())
        entries = [
            {
                "path": f"{path.parent.name}/{path.name}",
                "original": None if original is None else base64.b64encode(original[0]).decode(),
                "mode": None if original is None else original[1],
            }
            for path, original in originals.items()
        ]
        record = json.dumps({"files": entries}).encode()
        journal.parent.mkdir(exist_ok=True)
        os.replace(_stage(journal, record, 0o600), journal)
        started = True
        _fsync_dir(journal.parent)
        for change in changes:
            if change.text is None:
                change.path.unlink()
            else:
                os.replace(staged[change.path], change.path)
                del staged[change.path]
        for parent in {c.path.parent for c in changes}:
            _fsync_dir(parent)
        journal.unlink()
        _fsync_dir(journal.parent)
    except BaseException as err:
        for temp in staged.values():
            Path(temp).unlink(missing_ok=True)
        if started:
            _restore(originals)
            journal.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise UsageError(f"cannot write the overlay ({err}); every file is as it was") from None
        raise


def _fsync_dir(folder: Path) -> None:
    """Make renames and removals in `folder` durable (POSIX: fsync the directory itself)."""
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _stage(path: Path, data: bytes, mode: int | None = None) -> str:
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_MARK}", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        else:
            shutil.copymode(path if path.exists() else path.parent / KUSTOMIZATION, temp)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return temp


def _gate(
    repo_root: Path, app: str, env: str, changes: list[Change], registry: str | None, what: str
) -> None:
    """Render the overlay as `changes` would leave it; its HTTPRoute must carry the split its
    InferenceService declares (`mlplat.validation.routes`, as `mlplat validate` judges it), and the
    registry gate must pass."""
    if not registry:
        raise UsageError("no registry: pass --registry URL or set MLFLOW_TRACKING_URI")
    docs = render_planned(repo_root, app, env, changes)
    split = routes.check(docs, {docs[0].target} if docs else set())
    if split:
        reasons = "\n".join(f"  {f.as_text()}" for f in split)
        raise Refused(f"the traffic split of {what} for {env} would not hold:\n{reasons}")
    candidate = _inference_service(docs)
    try:
        findings = registry_gate.check([candidate], registry, repo_root=repo_root)
    except registry_gate.RegistryUnavailable as err:
        raise UsageError(str(err)) from None
    if findings:
        reasons = "\n".join(f"  {f.as_text()}" for f in findings)
        raise Refused(f"the registry gate rejects {what} for {env}:\n{reasons}")


@dataclass(frozen=True)
class Canary:
    """The overlay's canary.yaml (one canary named v<version>) and its split, canary-route.yaml."""

    path: Path
    route_path: Path
    version: str
    percent: int
    storage_uri: str


def canary_path(repo_root: Path, app: str, env: str) -> Path:
    return repo_root / "apps" / app / "overlays" / env / CANARY_FILE


def kustomization_path(repo_root: Path, app: str, env: str) -> Path:
    return repo_root / "apps" / app / "overlays" / env / KUSTOMIZATION


def read_canary(repo_root: Path, app: str, env: str) -> Canary | None:
    """The running canary, None without one; Refused when file and kustomization entry disagree."""
    path = canary_path(repo_root, app, env)
    rel = path.relative_to(repo_root)
    kustomization = kustomization_path(repo_root, app, env)
    try:
        text = safe_yaml.read_text(kustomization, str(kustomization.relative_to(repo_root)))
        patches = (yaml.safe_load(text) or {}).get("patches") or []
    except safe_yaml.UnsafeInput as err:
        raise Refused(str(err)) from None
    except (OSError, yaml.YAMLError, AttributeError) as err:
        raise Refused(f"{kustomization.relative_to(repo_root)} cannot be read: {err}") from None
    route = path.with_name(CANARY_ROUTE_FILE)
    listed = {
        p.get("path")
        for p in patches
        if isinstance(p, dict) and p.get("path") in (CANARY_FILE, CANARY_ROUTE_FILE)
    }
    present = {f for f in (CANARY_FILE, CANARY_ROUTE_FILE) if path.with_name(f).exists()}
    if not listed and not present:
        return None
    if listed != {CANARY_FILE, CANARY_ROUTE_FILE} or present != listed:
        state = ", ".join(
            f"{f} {'listed' if f in listed else 'not listed'} in {KUSTOMIZATION} and "
            f"{'present' if f in present else 'missing'}"
            for f in (CANARY_FILE, CANARY_ROUTE_FILE)
        )
        raise Refused(
            f"{rel.parent}: a canary needs both {CANARY_FILE} and {CANARY_ROUTE_FILE}, each listed once ({state}): "
            "fix the overlay by hand first"
        )
    try:
        doc = yaml.safe_load(safe_yaml.read_text(path, str(rel)))
        name = str(doc["metadata"]["name"])
        version = str(doc["metadata"]["annotations"][CANARY_VERSION_ANNOTATION])
        (entry,) = doc["spec"]["canary"]
        percent, predictor = entry["trafficPercent"], entry["predictor"]
        storage_uri = predictor["model"]["storageUri"]
        if not (version.isdigit() and predictor["name"] == f"v{version}" and type(percent) is int):
            raise ValueError
    except safe_yaml.UnsafeInput as err:
        raise Refused(str(err)) from None
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError):
        raise Refused(
            f"{rel} is not a canary patch as `mlplat promote --canary` writes it (annotation "
            f"{CANARY_VERSION_ANNOTATION}: N and exactly one spec.canary entry named vN with trafficPercent and "
            "model.storageUri)"
        ) from None
    stable = read_overlay(repo_root, app, env)
    route_rel = route.relative_to(repo_root)
    try:
        written = safe_yaml.read_text(route, str(route_rel))
    except safe_yaml.UnsafeInput as err:
        raise Refused(str(err)) from None
    except OSError as err:
        raise Refused(f"{route_rel} cannot be read: {err}") from None
    if written != canary_route_text(name, app, env, stable.version, version, percent):
        raise Refused(
            f"{route_rel} is not the split `mlplat promote --canary {percent}` writes for canary version "
            f"{version} beside stable version {stable.version}: fix the overlay by hand first"
        )
    return Canary(path, route, version, percent, str(storage_uri))


def canary_text(
    name: str, app: str, env: str, version: str, percent: int, storage_uri: str, stable: dict[str, Any]
) -> str:
    """canary.yaml: little more than what differs from the stable predictor (KServe merges it over that).

    `stable` is the environment's InferenceService as it renders without a canary. Beyond its model the
    canary sets its version annotation, its fixed replicas (autoscaler class and count), and raises the
    stable predictor's replicas by as many where KServe sizes the stable Deployment (see the comments
    below)."""
    header = (
        f"# {app} in {env}: canary of version {version} beside the stable version of model-version.yaml.\n"
        "# Written by `mlplat promote --canary`; the full rollout (`mlplat promote`) or `mlplat rollback`\n"
        "# deletes it. KServe (>= 0.20, Standard mode) fills every field the canary predictor leaves out\n"
        "# (runtime, protocol, resources, service account, ...) from spec.predictor; the CRD requires\n"
        "# model.modelFormat and model.name (the container, kserve-container) on a canary.\n"
    )
    stable_predictor = stable["spec"]["predictor"]
    model = {
        "name": CANARY_CONTAINER,
        "modelFormat": stable_predictor["model"]["modelFormat"],
        "storageUri": storage_uri,
    }
    # KServe v0.20.0 builds the canary from a copy of the InferenceService, so its pods would carry the
    # stable version's isvc annotation (which the inference logger copies into every record and drift
    # groups by); a predictor annotation wins over the isvc's (kserve/kserve v0.20.0
    # pkg/controller/v1beta1/inferenceservice/components/predictor.go reconcileCanaryDeployments,
    # buildObjectMeta "predictor component > isvc").
    # The canary's Deployment takes its annotations from the same union, so it would also inherit the
    # isvc's autoscalerClass; KServe sets a Deployment's replicas only under class `none`
    # (reconcilers/deployment/deployment_reconciler.go createRawDefaultDeployment), so under `external`
    # (llm-chat, whose ScaledObject names only the stable Deployment) the canary ran Kubernetes' default
    # single pod whatever its minReplicas. Every canary is `none`: its Deployment carries exactly the
    # replicas set below and KServe makes no HPA for it (hpa/hpa_reconciler.go shouldCreateHPA); under
    # `hpa` it had the same count through an HPA pinned at min = max, as buildCanaryPredictor zeroes
    # maxReplicas and createHPA raises max to min. The webhook's canary checks (pkg/apis/serving/v1beta1/
    # inference_service_validation.go validateCanarySpecs) look at no annotation.
    predictor: dict[str, Any] = {
        "name": f"v{version}",
        "annotations": {MODEL_VERSION_ANNOTATION: version, AUTOSCALER_CLASS: FIXED_REPLICAS},
        "model": model,
    }
    stable_min = int(stable_predictor.get("minReplicas", 1))
    # KServe sizes a canary at ceil(stable minReplicas * percent / 100) replicas unless minReplicas is set
    # (0 at 0 %, when an A/B version served by header only needs one pod of its own), and runs the stable
    # Deployment at minReplicas less the canary's, floor 1 (predictor.go canaryReplicaCount,
    # reconcileRawDeployment): the canary's replicas are set here and added to the stable minimum, so
    # the stable version keeps the replicas the environment gives it (prod-availability's two, which its
    # PodDisruptionBudget counts on) while the canary runs. maxReplicas rises only as far as KServe needs
    # (it refuses a minimum above it: pkg/apis/serving/v1beta1/component.go validateReplicas). With
    # autoscalerClass external KEDA sizes the stable Deployment, which KServe leaves alone
    # (reconcilers/deployment/deployment_reconciler.go), so its minReplicas stays as it is.
    replicas = 1 if percent == 0 else math.ceil(stable_min * percent / 100)
    predictor["minReplicas"] = replicas
    if percent == 0:
        header += (
            "# At 0 % it serves only requests with header x-mlplat-variant: v<version>, on one replica.\n"
        )
    spec: dict[str, Any] = {}
    if autoscaler_class(stable) != EXTERNAL:
        header += (
            f"# spec.predictor asks for {stable_min} + {replicas} replicas: KServe runs the stable version\n"
            f"# on {stable_min} of them and the canary on {replicas}.\n"
        )
        sized = {"minReplicas": stable_min + replicas}
        if "maxReplicas" in stable_predictor:
            sized["maxReplicas"] = max(int(stable_predictor["maxReplicas"]), stable_min + replicas)
        spec["predictor"] = sized
    spec["canary"] = [{"trafficPercent": percent, "predictor": predictor}]
    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": {CANARY_VERSION_ANNOTATION: version}},
        "spec": spec,
    }
    return header + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)


def canary_route_text(name: str, app: str, env: str, stable: str, version: str, percent: int) -> str:
    """canary-route.yaml: JSON patch operations on the app's HTTPRoute (apps/components/gateway-route).

    Rule 0 (every request) gets the canary as backendRefs[1] with `percent` and the stable backend the
    rest; rule 1 (header x-mlplat-variant: v<version>) and rule 2 (v<stable>) are copies of rule 0 that
    send 100 to one version. backendRefs[0] is the stable predictor and [1] the canary in every rule,
    which the gateway's per-version metrics rely on (Envoy cluster httproute/<ns>/<name>/rule/<i>/backend/<j>).
    The stable backend's version header is the overlay's replacement's (model-version.yaml's version).
    """
    header = (
        f"# {app} in {env}: the traffic split of the canary of version {version} (canary.yaml) on the app's\n"
        f"# HTTPRoute: {percent} % to v{version}, {100 - percent} % to the stable v{stable}; requests with header\n"
        f"# x-mlplat-variant: v{version} (or v{stable}) always go to that version (A/B). Written by\n"
        '# `mlplat promote --canary`, deleted with canary.yaml; layout in apps/README.md "Traffic split".\n'
    )
    canary = {
        "name": f"{name}-v{version}-predictor",  # KServe v0.20.0: <isvc>-<canary predictor name>-predictor
        "port": routes.SERVICE_PORT,
        "weight": percent,
        "filters": [
            {
                "type": routes.HEADER_FILTER,
                "requestHeaderModifier": {"set": [{"name": routes.VERSION_HEADER, "value": version}]},
            }
        ],
    }

    def pinned(rule: int, pin: str, stable_weight: int) -> list[dict[str, Any]]:
        return [
            {"op": "copy", "from": "/spec/rules/0", "path": f"/spec/rules/{rule}"},
            {
                "op": "add",
                "path": f"/spec/rules/{rule}/matches/0/headers",
                "value": [{"name": routes.VARIANT_HEADER, "value": f"v{pin}"}],
            },
            {"op": "replace", "path": f"/spec/rules/{rule}/backendRefs/0/weight", "value": stable_weight},
            {
                "op": "replace",
                "path": f"/spec/rules/{rule}/backendRefs/1/weight",
                "value": 100 - stable_weight,
            },
        ]

    operations = [
        # Written against the component's route: refuse to patch anything else.
        {"op": "test", "path": "/spec/rules/0/backendRefs/0/name", "value": f"{name}-predictor"},
        {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 100 - percent},
        {"op": "add", "path": "/spec/rules/0/backendRefs/-", "value": canary},
        *pinned(1, version, 0),
        *pinned(2, stable, 100),
    ]
    return header + yaml.dump(
        operations, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000
    )


def stable_inference_service(repo_root: Path, app: str, env: str, running: Canary | None) -> dict[str, Any]:
    """The environment's InferenceService as it renders without the `running` canary (whose canary.yaml
    raises its replicas); the canary repeats its model.modelFormat (the CRD requires it there)."""
    if running is None:
        rendered = render_inference_service(repo_root, app, env)
    else:
        rendered = _inference_service(
            render_planned(repo_root, app, env, canary_removal(repo_root, app, env, running))
        )
    predictor = (rendered.doc.get("spec") or {}).get("predictor") or {}
    model_format = (predictor.get("model") or {}).get("modelFormat")
    if not isinstance(model_format, dict) or not model_format.get("name"):
        raise Refused(
            f"{rendered.target} has no spec.predictor.model.modelFormat.name for the canary to repeat"
        )
    return rendered.doc


def canary_removal(repo_root: Path, app: str, env: str, running: Canary) -> list[Change]:
    """The changes that take the `running` canary out: its kustomization entries, then its two files."""
    kustomization = kustomization_path(repo_root, app, env)
    return [
        Change(kustomization, kustomization_with_canary(kustomization, repo_root, add=False)),
        Change(running.path, None),  # the entries before the files they list
        Change(running.route_path, None),
    ]


_ENTRY = re.compile(r"(?P<lead> *)- path: (?P<path>\S+) *")


def _entry_spans(lines: list[str]) -> dict[str, tuple[int, int]]:
    """`patches` entries written as `- path: X`: the entry's line and the lines indented below it."""
    spans: dict[str, tuple[int, int]] = {}
    for i, line in enumerate(lines):
        match = _ENTRY.fullmatch(line.rstrip("\r\n"))
        if not match:
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() and _indent(lines[end]) > len(match["lead"]):
            end += 1
        spans.setdefault(match["path"], (i, end))
    return spans


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _canary_entries(lines: list[str], rel: Path) -> dict[str, list[str]]:
    """The canary's two entries, copies of model-version.yaml's entry: canary.yaml with the same target,
    then canary-route.yaml targeting the HTTPRoute of the same name (the component names it after the
    InferenceService)."""
    span = _entry_spans(lines).get(OVERLAY_FILE)
    if span is None:
        raise Refused(f"{rel} has no `- path: {OVERLAY_FILE}` patches entry to put the canary beside")
    block = [line if line.endswith("\n") else line + "\n" for line in lines[span[0] : span[1]]]
    kinds = [i for i, line in enumerate(block) if line.strip() == "kind: InferenceService"]
    if len(kinds) != 1:
        raise Refused(
            f"{rel}: the `- path: {OVERLAY_FILE}` entry has no single `kind: InferenceService` target"
        )
    route = [
        line.replace("InferenceService", "HTTPRoute") if i == kinds[0] else line
        for i, line in enumerate(block)
    ]
    return {
        CANARY_FILE: [block[0].replace(OVERLAY_FILE, CANARY_FILE), *block[1:]],
        CANARY_ROUTE_FILE: [route[0].replace(OVERLAY_FILE, CANARY_ROUTE_FILE), *route[1:]],
    }


def kustomization_with_canary(path: Path, repo_root: Path, add: bool) -> str:
    """kustomization.yaml with the canary's two patches entries added right after model-version.yaml's,
    or removed.

    A text edit, so comments and layout stay byte-identical; the result is parsed back and must differ
    from the original by exactly those entries.
    """
    rel = path.relative_to(repo_root)
    text = safe_yaml.read_text(path, str(rel))  # read_canary screened it already; the same bound here
    lines = text.splitlines(keepends=True)
    entries = _canary_entries(lines, rel)
    if add:
        end = _entry_spans(lines)[OVERLAY_FILE][1]
        if end == len(lines) and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        new_lines = lines[:end] + [line for entry in entries.values() for line in entry] + lines[end:]
    else:
        spans = _entry_spans(lines)
        for file, entry in entries.items():
            span = spans.get(file)
            if span is None or lines[span[0] : span[1]] != entry:
                raise Refused(f"{rel}: the {file} entry is not the one `mlplat promote --canary` writes")
        gone = {i for file in entries for i in range(*spans[file])}
        new_lines = [line for i, line in enumerate(lines) if i not in gone]
    new = "".join(new_lines)
    before, after = yaml.safe_load(text), yaml.safe_load(new)
    wanted = copy.deepcopy(before)
    patches = wanted["patches"]
    mine = [yaml.safe_load("".join(line[_indent(e[0]) :] for line in e))[0] for e in entries.values()]
    if add:
        position = next(i for i, p in enumerate(patches) if p.get("path") == OVERLAY_FILE) + 1
        patches[position:position] = mine
    else:
        for entry in mine:
            patches.remove(entry)
    if after != wanted:
        raise Refused(f"{rel}: cannot edit the patches list safely by text; edit it by hand")
    return new


def promote(
    repo_root: Path, app: str, source: str, target: str, registry: str | None, canary: int | None = None
) -> str:
    """Give `target` the source environment's version (as a canary with `canary`); returns what happened."""
    check_env(source)
    check_env(target)
    if source == target:
        raise UsageError(f"--from and --to are both {source}")
    # A canary serves real traffic beside the stable version: only production's traffic is real.
    if canary is not None and target not in PRODUCTION:
        raise UsageError(
            f"--canary is for --to {' or '.join(sorted(PRODUCTION))} only (the other environments take "
            "versions whole)"
        )
    if canary is not None and not 0 <= canary <= 99:
        raise UsageError(
            f"--canary {canary}: the percent must be 0-99 (0: reachable by header only, for A/B; "
            "a full rollout is promote without --canary)"
        )
    check_writable_app(repo_root, app)
    with exclusive(repo_root, app) as recovered:
        message = _promote(repo_root, app, source, target, registry, canary)
    return _with_note(recovered, message)


def _with_note(recovered: str | None, message: str) -> str:
    return f"{recovered}\n{message}" if recovered else message


def _promote(
    repo_root: Path, app: str, source: str, target: str, registry: str | None, canary: int | None
) -> str:
    origin, current = read_overlay(repo_root, app, source), read_overlay(repo_root, app, target)
    running = read_canary(repo_root, app, target)
    if running is not None and running.version != origin.version:
        raise UsageError(
            f"{target} already runs a canary of version {running.version}, not {origin.version}: finish it "
            f"(`mlplat promote {app} --from <env running {running.version}> --to {target}`) or remove it "
            f"(`mlplat rollback {app} --env {target}`) first"
        )
    if canary is not None:
        return _promote_canary(repo_root, app, source, target, registry, canary, origin, current, running)
    if running is not None:
        return _full_rollout(repo_root, app, source, target, registry, origin, current, running)
    if origin.version == current.version and origin.storage_uri == current.storage_uri:
        return f"{app}: {target} already runs version {current.version}; nothing to do"
    changes = [
        Change(current.path, overlay_text(current, origin.version, origin.storage_uri, current.version))
    ]
    _gate(repo_root, app, target, changes, registry, f"{app} v{origin.version}")
    apply_changes(changes)
    return (
        f"{app}: promoted version {origin.version} from {source} to {target} (was {current.version}); "
        f"wrote {current.path.relative_to(repo_root)}; undo with `mlplat rollback {app} --env {target}`"
    )


def pin(repo_root: Path, app: str, env: str, version: str, registry: str | None) -> str:
    """Give `env` registered version `version` (a retrained one no environment runs yet), gated like a
    promotion; used by `mlplat retrain propose`."""
    check_env(env)
    check_writable_app(repo_root, app)
    with exclusive(repo_root, app) as recovered:
        current = read_overlay(repo_root, app, env)
        if read_canary(repo_root, app, env) is not None:
            raise Refused(f"{env} runs a canary: finish or roll it back before pinning version {version}")
        if current.version == version:
            return _with_note(recovered, f"{app}: {env} already runs version {version}; nothing to do")
        storage_uri = model_store.version_uri(app, version)  # the registered model is named after the app
        changes = [Change(current.path, overlay_text(current, version, storage_uri, current.version))]
        _gate(repo_root, app, env, changes, registry, f"{app} v{version}")
        apply_changes(changes)
    return _with_note(
        recovered,
        f"{app}: {env} now runs version {version} (was {current.version}); "
        f"wrote {current.path.relative_to(repo_root)}",
    )


def _promote_canary(
    repo_root: Path,
    app: str,
    source: str,
    target: str,
    registry: str | None,
    percent: int,
    origin: Overlay,
    current: Overlay,
    running: Canary | None,
) -> str:
    if origin.version == current.version:
        if running is None:
            return f"{app}: {target} already runs version {current.version}; nothing to canary"
        raise Refused(
            f"{target} runs version {current.version} both as stable and as canary: roll the canary back"
        )
    if running is not None and running.percent == percent and running.storage_uri == origin.storage_uri:
        return f"{app}: {target} already runs version {origin.version} as a {percent}% canary; nothing to do"
    path = canary_path(repo_root, app, target)
    name = str(current.doc["metadata"]["name"])
    stable = stable_inference_service(repo_root, app, target, running)
    text = canary_text(name, app, target, origin.version, percent, origin.storage_uri, stable)
    route = canary_route_text(name, app, target, current.version, origin.version, percent)
    changes = [Change(path, text), Change(path.with_name(CANARY_ROUTE_FILE), route)]
    kustomization = kustomization_path(repo_root, app, target)
    if running is None:  # the files before the entries that list them: every step renders
        changes.append(Change(kustomization, kustomization_with_canary(kustomization, repo_root, add=True)))
    _gate(repo_root, app, target, changes, registry, f"{app} v{origin.version} as canary")
    apply_changes(changes)
    wrote = ", ".join(str(c.path.relative_to(repo_root)) for c in changes)
    return (
        f"{app}: version {origin.version} from {source} is now a {percent}% canary in {target} beside version "
        f"{current.version}; wrote {wrote}; full rollout: `mlplat promote {app} --from {source} --to {target}`, "
        f"stop it: `mlplat rollback {app} --env {target}`"
    )


def _full_rollout(
    repo_root: Path,
    app: str,
    source: str,
    target: str,
    registry: str | None,
    origin: Overlay,
    current: Overlay,
    running: Canary,
) -> str:
    """The canary's version becomes the stable one; canary.yaml, canary-route.yaml and their entries go."""
    kustomization = kustomization_path(repo_root, app, target)
    changes = []
    if origin.version != current.version or origin.storage_uri != current.storage_uri:
        text = overlay_text(current, origin.version, origin.storage_uri, current.version)
        changes.append(Change(current.path, text))
    changes += canary_removal(repo_root, app, target, running)
    _gate(repo_root, app, target, changes, registry, f"{app} v{origin.version}")
    apply_changes(changes)
    return (
        f"{app}: rolled canary version {origin.version} out to all of {target} (was {current.version}); "
        f"wrote {current.path.relative_to(repo_root)}, {kustomization.relative_to(repo_root)}, removed "
        f"{running.path.relative_to(repo_root)}, {running.route_path.relative_to(repo_root)}; "
        f"undo with `mlplat rollback {app} --env {target}`"
    )


def rollback(repo_root: Path, app: str, env: str, registry: str | None) -> str:
    """Remove a running canary; else restore the version recorded by the last promotion (no ping-pong)."""
    check_env(env)
    check_writable_app(repo_root, app)
    with exclusive(repo_root, app) as recovered:
        message = _rollback(repo_root, app, env, registry)
    return _with_note(recovered, message)


def _rollback(repo_root: Path, app: str, env: str, registry: str | None) -> str:
    running = read_canary(repo_root, app, env)
    if running is not None:
        # Not gated: what stays is the stable predictor, already gated when it was written, and
        # stopping a bad canary must not wait for the registry.
        kustomization = kustomization_path(repo_root, app, env)
        changes = canary_removal(repo_root, app, env, running)
        render_planned(repo_root, app, env, changes)  # refuses if the overlay would not render
        apply_changes(changes)
        return (
            f"{app}: removed the {running.percent}% canary of version {running.version} from {env}, all "
            f"traffic goes to the stable version {read_overlay(repo_root, app, env).version}; wrote "
            f"{kustomization.relative_to(repo_root)}, removed {running.path.relative_to(repo_root)}, "
            f"{running.route_path.relative_to(repo_root)}"
        )
    current = read_overlay(repo_root, app, env)
    previous = current.annotations.get(ROLLBACK_VERSION_ANNOTATION)
    rel = current.path.relative_to(repo_root)
    if previous is None:
        raise Refused(f"{rel} records no {ROLLBACK_VERSION_ANNOTATION}: nothing to roll back to")
    previous = str(previous)
    if not previous.isdigit():
        raise Refused(f"{rel}: {ROLLBACK_VERSION_ANNOTATION} is {previous!r}, not a version number")
    storage_uri = model_store.version_uri(app, previous)  # the registered model is named after the app
    changes = [Change(current.path, overlay_text(current, previous, storage_uri, None))]
    _gate(repo_root, app, env, changes, registry, f"{app} v{previous}")
    apply_changes(changes)
    return f"{app}: rolled {env} back from version {current.version} to {previous}; wrote {rel}"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("app", help="app folder under apps/")
    common.add_argument("--registry", help="MLflow tracking URL (default: $MLFLOW_TRACKING_URI)")
    checkout.add_option(common, "--repo-root", argparse.SUPPRESS)
    parser = subparsers.add_parser(
        "promote", parents=[common], help="give an environment another environment's model version (gated)"
    )
    parser.add_argument("--from", dest="source", required=True, metavar="ENV")
    parser.add_argument("--to", dest="target", required=True, metavar="ENV")
    parser.add_argument(
        "--canary",
        type=int,
        metavar="PERCENT",
        help="prod only: run the version as a canary taking PERCENT (0-99) of the traffic; "
        "0 serves it only to requests with header x-mlplat-variant: v<N> (A/B)",
    )
    parser.set_defaults(func=run)
    parser = subparsers.add_parser(
        "rollback", parents=[common], help="restore the model version recorded by the last promotion (gated)"
    )
    parser.add_argument("--env", required=True, metavar="ENV")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command = "promote" if hasattr(args, "source") else "rollback"
    try:
        # Asked for only when the gate runs: removing a canary must work while the registry is down.
        registry = args.registry or os.environ.get("MLFLOW_TRACKING_URI")
        root = checkout.root(args)
        if command == "promote":
            message = promote(root, args.app, args.source, args.target, registry, args.canary)
        else:
            message = rollback(root, args.app, args.env, registry)
    except Refused as err:
        print(f"mlplat {command}: refused: {err}", file=sys.stderr)
        return 1
    except (UsageError, OSError) as err:  # OSError: e.g. a read-only checkout, said without a traceback
        print(f"mlplat {command}: {err}", file=sys.stderr)
        return 2
    print(message)
    return 0
