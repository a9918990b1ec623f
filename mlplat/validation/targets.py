"""What to validate: PATH arguments, or every app, or only the apps a git change touches.

A target is one thing to render: an overlay (`apps/<app>/overlays/<env>`), an app's retraining
pipeline (`apps/<app>/training`, rendered once: it holds no environment data), any other
kustomization folder, or a file or folder of plain manifests. An app folder expands to its overlays
and its pipeline.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlplat.validation import ENVIRONMENTS, UsageError, rel, within

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
OVERLAY = re.compile(r"^apps/(?P<app>[^/]+)/overlays/(?P<env>[^/]+)$")
# An app's retraining pipeline (README "Retraining"): Argo objects the platform applies, not Argo CD.
TRAINING = re.compile(r"^apps/(?P<app>[^/]+)/training$")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# The shared kustomize components: no app, every app may use them.
COMPONENTS = "apps/components"
# Argo CD reads these from an Application's path and merges them into its source before choosing the
# tool (argo-cd v3.4.4 reposerver/repository/repository.go GetAppSourceType -> mergeSourceParameters:
# `.argocd-source.yaml` and `.argocd-source-<app name>.yaml`).
ARGOCD_SOURCE = ".argocd-source"
# `mlplat promote`'s journal of a change being swapped in (mlplat/promote.py `journal_path`): trusted as
# evidence of a crash, so in a git checkout it lives in the git directory, and one in apps/ is a finding.
PROMOTE_JOURNAL = ".mlplat-promote.journal"
# What renders every environment's AppProject and ApplicationSet from platform/argocd/ (infra/gitops.py).
GITOPS_RENDERER = "infra/gitops.py"


@dataclass(frozen=True, order=True)
class Target:
    rel: str  # repo-relative path, the target's name in findings
    env: str | None
    kustomize: bool
    app: str | None = None

    def path(self, root: Path) -> Path:
        return root / self.rel


def is_kustomization(folder: Path) -> bool:
    return any((folder / name).is_file() for name in KUSTOMIZATION_FILES)


def apps_in(folder: Path, root: Path) -> list[Path]:
    """The apps directly in `folder`: each subfolder with an overlays/ folder, but the shared components
    (an overlays/ folder there makes no app of them: `stray_dirs`)."""
    return sorted(p for p in folder.iterdir() if (p / "overlays").is_dir() and rel(p, root) != COMPONENTS)


def app_dirs(root: Path) -> list[Path]:
    """Every app: a folder under apps/ with an overlays/ folder (apps/components is not one)."""
    apps = root / "apps"
    return apps_in(apps, root) if apps.is_dir() else []


def stray_dirs(root: Path) -> list[Path]:
    """Folders under apps/ that are no app, which validate reports (MLP-APP-LAYOUT) rather than pass over:
    a folder without overlays/ (no ApplicationSet deploys it), and an overlays/ folder of the shared
    components (every environment's ApplicationSet would deploy `apps/components/overlays/<env>` as an
    app named `components`: `apps/*/overlays/<env>` in platform/argocd/models.yaml, matched with Go's
    path.Match by argo-cd applicationset/generators/git.go filterApps)."""
    apps = root / "apps"
    folders = [p for p in apps.iterdir() if p.is_dir()] if apps.is_dir() else []
    found = [p for p in folders if not (p / "overlays").is_dir() and rel(p, root) != COMPONENTS]
    components_overlays = root / COMPONENTS / "overlays"
    return sorted(found + ([components_overlays] if components_overlays.is_dir() else []))


def is_training(target: Target) -> bool:
    return TRAINING.match(target.rel) is not None


def app_targets(app: Path, root: Path, env: str | None) -> list[Target]:
    """The app's overlays of `env` (or of every environment, and then also any overlay named after
    none, MLP-APP-LAYOUT). Every folder is one: Argo CD's ApplicationSet makes an Application of each
    `apps/*/overlays/<env>` folder whatever it holds, and a folder without a kustomization is applied
    as plain manifests (MLP-OVERLAY-TOOL, mlplat.validation.trees)."""
    overlays = app / "overlays"
    found = {p.name for p in overlays.iterdir() if p.is_dir()} if overlays.is_dir() else set()
    envs = [env] if env else [*ENVIRONMENTS, *sorted(found - set(ENVIRONMENTS))]
    return [
        Target(rel(overlays / e, root), e if e in ENVIRONMENTS else None, True, app.name)
        for e in envs
        if e in found
    ]


def stray_targets(root: Path, env: str | None) -> list[Target]:
    """One target per stray folder (none with --env: it belongs to no environment), named after the app
    folder it is in, as the ApplicationSet names apps."""
    if env:
        return []
    return [Target(name, None, True, name.split("/")[1]) for name in (rel(p, root) for p in stray_dirs(root))]


def training_targets(app: Path, root: Path) -> list[Target]:
    """The app's retraining pipeline, if it has one: no environment, no Argo CD app."""
    training = app / "training"
    return [Target(rel(training, root), None, True)] if is_kustomization(training) else []


def all_targets(root: Path, env: str | None) -> list[Target]:
    """Every overlay (of `env`, or all), every retraining pipeline, and every stray apps/ folder."""
    apps = [t for app in app_dirs(root) for t in app_targets(app, root, env) + training_targets(app, root)]
    return apps + stray_targets(root, env)


def resolve(paths: list[str], root: Path, env: str | None) -> list[Target]:
    """Targets for PATH arguments, deduplicated and sorted."""
    found: set[Target] = set()
    for raw in paths:
        path = Path(raw)
        path = path if path.is_absolute() else Path.cwd() / path
        if not path.exists():
            raise UsageError(f"{raw}: no such file or folder")
        if not (path.is_file() or path.is_dir()):  # a device, a pipe, a socket: nothing to render
            raise UsageError(f"{raw}: not a file or folder: validate reads manifest files and folders")
        found.update(_targets_for(path.resolve(), root, env))
    return sorted(found)


def _targets_for(path: Path, root: Path, env: str | None) -> list[Target]:
    name = rel(path, root)
    if path.is_file():
        return [Target(name, env, False)]
    if (path / "overlays").is_dir() and name != COMPONENTS:
        targets = app_targets(path, root, env)
        if not targets:
            raise UsageError(f"{name}: no overlay for {env or 'any environment'} under {name}/overlays")
        return targets + training_targets(path, root)
    overlay = OVERLAY.match(name)
    if overlay and env and overlay["env"] != env:
        raise UsageError(f"{name} is the {overlay['env']} overlay, but --env says {env}")
    if overlay:  # whatever it holds: Argo CD deploys it (app_targets)
        known = overlay["env"] if overlay["env"] in ENVIRONMENTS else None
        return [Target(name, known, True, overlay["app"])]
    strays = [t for t in stray_targets(root, None) if t.rel == name]
    if strays:
        return strays
    if is_kustomization(path):
        return [Target(name, env, True)]
    apps = apps_in(path, root)
    if apps:
        strays = stray_targets(root, env) if name == "apps" else []
        return [t for app in apps for t in app_targets(app, root, env) + training_targets(app, root)] + strays
    if not any(p.suffix in MANIFEST_SUFFIXES for p in path.rglob("*") if p.is_file()):
        raise UsageError(f"{name}: no kustomization and no manifests (*.yaml, *.yml, *.json) in this folder")
    return [Target(name, env, False)]


def git_output(root: Path, *args: str) -> str:
    """What git prints, run in `root`; a failure is a UsageError naming the command. Public:
    `--changed`'s file list and the GPU cost's render at the merge base both ask git through it, so
    a missing git or a bad ref reads the same wherever it comes from."""
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UsageError("--changed needs git on the PATH") from None
    if result.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def git_lines(root: Path, *args: str) -> list[str]:
    """The non-empty lines git prints (git_output)."""
    return [line for line in git_output(root, *args).splitlines() if line]


def changed_files(root: Path, base: str) -> list[str]:
    """Files changed since the merge base with REF, plus uncommitted and untracked ones.

    `--no-renames`: git diff detects renames by default (diff.renames, true since git 2.9, git commit
    5404c116 "diff: activate diff.renames by default") and `--name-only` then lists only the new path,
    so a file moved out of an app would leave that app unvalidated. `-z`: without it git quotes a path
    holding bytes above 0x80 (git-config(1) core.quotePath: `"apps/a/extr\\303\\244.yaml"`), which
    names no file; with it every path is printed verbatim and ends in a NUL."""
    diff = ("diff", "--name-only", "--no-renames", "-z")
    files = set(git_output(root, *diff, f"{base}...HEAD").split("\0"))
    files.update(git_output(root, *diff, "HEAD").split("\0"))
    files.update(git_output(root, "ls-files", "-z", "--others", "--exclude-standard").split("\0"))
    return sorted(files - {""})


def changed_targets(root: Path, base: str, env: str | None) -> list[Target]:
    """Overlays affected by the changed files; shared inputs (components, Argo CD's template and its
    renderer, stacks) affect all."""
    wanted: set[Target] = set()
    apps = {p.name: p for p in app_dirs(root)}
    # Components, stacks and Argo CD's projects shape the overlays, never a retraining pipeline.
    overlays = [t for app in apps.values() for t in app_targets(app, root, env)]
    strays = stray_targets(root, env)
    for name in changed_files(root, base):
        parts = name.split("/")
        # A stray folder's own files (apps/components/overlays/ is one, also a change to the components).
        wanted.update(t for t in strays if within(name, t.rel))
        # The components first: they are no app even when an overlays/ folder among them makes them look one.
        if within(name, COMPONENTS) or parts[0] == "environments":
            stack_env = re.fullmatch(r"environments/Pulumi\.(\w+)\.yaml", name)
            only = stack_env[1] if stack_env else None
            wanted.update(t for t in overlays if only in (None, t.env))
        elif parts[0] == "apps" and len(parts) > 3 and parts[1] in apps and parts[2] == "training":
            wanted.update(training_targets(apps[parts[1]], root))
        elif parts[0] == "apps" and len(parts) > 2 and parts[1] in apps:
            wanted.update(app_targets(apps[parts[1]], root, env))
        elif parts[0] == "apps" and len(parts) == 2 and parts[1].startswith(ARGOCD_SOURCE):
            wanted.update(overlays)  # every app path's check lists it (MLP-ARGOCD-SOURCE)
        elif name.startswith("platform/argocd/") or name == GITOPS_RENDERER:
            # One template and its renderer make every environment's AppProject and ApplicationSet.
            wanted.update(overlays)
    return sorted(wanted)
