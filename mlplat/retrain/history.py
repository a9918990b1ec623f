"""`mlplat history APP`: why each environment serves the version it serves, from git and MLflow.

For each environment: the version its overlay names → the registry's record of it (run, lineage tags:
trigger and who, data hash, code commit, image) → the commit that wrote that version into the overlay.
Which commit Argo CD synced is known only to the cluster (`argocd app get`): the output says so
rather than guessing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from infra.contract import MODEL_VERSION_ANNOTATION
from mlplat import promote, registry_gate
from mlplat.retrain import lineage

ARGO_NOTE = "Argo CD synced commit: not known offline (ask the cluster: argocd app get <app>-<env>)"


def overlay_commit(repo_root: Path, app: str, env: str, version: str) -> str:
    """The newest commit whose diff of the overlay adds or removes the line naming `version`."""
    overlay = promote.overlay_path(repo_root, app, env).relative_to(repo_root)
    pattern = rf"{re.escape(MODEL_VERSION_ANNOTATION)}: ['\"]?{version}['\"]?$"
    done = subprocess.run(
        [
            "git",
            "-C",
            str(repo_root),
            "log",
            "-1",
            "--format=%h %as %an: %s",
            "-G",
            pattern,
            "--",
            str(overlay),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"unknown (git log failed: {done.stderr.strip() or 'not a git checkout'})"
    return done.stdout.strip() or "not committed yet (the overlay's change is not in git history)"


def chain(repo_root: Path, app: str, env: str, registry: registry_gate.Registry) -> list[str]:
    """The lines of one environment's chain."""
    overlay = promote.read_overlay(repo_root, app, env)
    version = overlay.version
    found = registry.version(app, version)
    lines = [f"{env}: {app} v{version}"]
    if found is None:
        return [
            *lines,
            f"  registry: no version {version} in {registry.url}",
            f"  set by: {overlay_commit(repo_root, app, env, version)}",
        ]
    tags = {t["key"]: t.get("value") or "" for t in found.get("tags") or []}
    absent = lineage.missing(tags)

    def tag(key: str) -> str:
        return tags.get(key) or "not recorded"

    return [
        *lines,
        f"  trigger: {tag(lineage.TRIGGER)} by {tag(lineage.TRIGGERED_BY)}",
        # `run_id` is a field of MLflow's ModelVersion message (mlflow/protos/model_registry.proto, MLflow 3.x).
        f"  run: {found.get('run_id') or 'not recorded'} (parent run {tag(lineage.PARENT_RUN)})",
        f"  version: {version}, source {found.get('source')}, evaluation {tag(registry_gate.EVALUATION_TAG)}",
        f"  data: {tag(lineage.DATA_URI)} sha256 {tag(lineage.DATA_SHA256)}",
        f"  code: {tag(lineage.CODE_COMMIT)}; image: {tag(lineage.IMAGE_DIGEST)}",
        f"  model card: {tag(lineage.MODEL_CARD)}",
        *([f"  lineage incomplete: {', '.join(absent)} missing"] if absent else []),
        f"  set in apps/{app}/overlays/{env}/{promote.OVERLAY_FILE} by: {overlay_commit(repo_root, app, env, version)}",
        f"  {ARGO_NOTE}",
    ]


def history(repo_root: Path, app: str, envs: list[str], registry_url: str) -> str:
    promote.check_app(repo_root, app)
    for env in envs:
        promote.check_env(env)
    registry = registry_gate.Registry(registry_url)
    return "\n".join(line for env in envs for line in chain(repo_root, app, env, registry)) + "\n"
