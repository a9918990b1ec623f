"""The mlplat-monitor image (images/monitor/Dockerfile) runs what the cluster asks of it: the
marshaller sidecar's and the drift CronJobs' arguments are accepted by its entry point, every
retraining pipeline step's by `python -m mlplat.retrain`, it runs as a
numeric non-root user, and it installs exactly the locked versions of what its code imports. No Docker
here: the Dockerfile is read, and its entry point run with this checkout's interpreter."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from infra import versions
from infra.config import ENVIRONMENTS, load_stack_config, read_stack_file, stack_file
from infra.services import model_monitoring
from mlplat.monitoring import __main__ as entry
from mlplat.retrain import __main__ as retrain_entry

REPO = Path(__file__).resolve().parents[3]
IMAGE_DIR = REPO / "images" / "monitor"
COMPONENT = REPO / "apps" / "components" / "inference-logging" / "kustomization.yaml"
PIPELINES = sorted((REPO / "apps").glob("*/training/workflowtemplate.yaml"))
# What the image runs: its ENTRYPOINT, and the command the retraining pipelines set.
ENTRY_MODULES = ("mlplat.monitoring.__main__", "mlplat.retrain.__main__")
RETRAIN = ["python", "-m", "mlplat.retrain"]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile: continuation lines joined, heredoc bodies skipped."""
    found: list[tuple[str, str]] = []
    lines = iter((IMAGE_DIR / "Dockerfile").read_text().splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        keyword, _, rest = line.strip().partition(" ")
        heredoc = re.search(r"<<-?(\w+)", rest)
        if heredoc:
            for body in lines:
                if body.strip() == heredoc.group(1):
                    break
        found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def entrypoint() -> list[str]:
    (command,) = [json.loads(rest) for keyword, rest in final_stage() if keyword == "ENTRYPOINT"]
    assert command[:2] == ["python", "-m"], command  # run below with this checkout's interpreter
    return [sys.executable, *command[1:]]


def sidecar_args() -> list[str]:
    component = yaml.safe_load(COMPONENT.read_text())
    for patch in component["patches"]:
        for op in yaml.safe_load(patch["patch"]):
            if op["path"] == "/spec/predictor/containers":
                (marshaller,) = [c for c in op["value"] if c["image"] == "mlplat-monitor"]
                return [str(a) for a in marshaller["args"]]
    raise AssertionError(f"{COMPONENT}: no container runs the mlplat-monitor image")


def cronjob_args(env: str) -> list[tuple[str, list[str]]]:
    path = stack_file(env)
    config = load_stack_config(read_stack_file(path), str(path), env)
    jobs = []
    for target in model_monitoring.monitored_apps():
        pod = model_monitoring.job_spec(target, env, config.services.inference_logs)["jobTemplate"]["spec"][
            "template"
        ]["spec"]
        (drift,) = [c for c in pod["containers"] if c["image"] == versions.IMAGES["mlplat-monitor"]]
        jobs.append((target.app, drift["args"]))
    return jobs


def as_started(args: list[str]) -> list[str]:
    """Kubernetes expands `$(VAR)` from the container's env: a plausible value stands in."""
    return [
        re.sub(r"\$\((\w+)\)", lambda m: {"MLPLAT_ENVIRONMENT": "dev"}.get(m[1], "iris-classifier"), a)
        for a in args
    ]


def test_the_marshaller_sidecar_starts_with_arguments_the_image_accepts() -> None:
    args = as_started(sidecar_args())
    parsed = entry.parser().parse_args(args)  # an unknown or malformed argument exits 2 here
    assert (parsed.command, parsed.monitor_command) == ("monitor", "marshaller"), args
    shown = subprocess.run([*entrypoint(), *args, "--help"], capture_output=True, text=True, cwd="/")
    assert shown.returncode == 0 and "usage: mlplat monitor marshaller" in shown.stdout, shown.stderr


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_drift_cronjobs_start_with_arguments_the_image_accepts(env: str) -> None:
    for app, args in cronjob_args(env):
        parsed = entry.parser().parse_args(args)
        assert (parsed.monitor_command, parsed.app, parsed.env) == ("drift", app, env), args
        shown = subprocess.run([*entrypoint(), *args, "--help"], capture_output=True, text=True, cwd="/")
        assert shown.returncode == 0 and "usage: mlplat monitor drift" in shown.stdout, shown.stderr


def retrain_steps(pipeline: Path) -> list[list[str]]:
    """The args of every container of `pipeline` that runs the image's retrain entry point."""
    template = next(
        d for d in yaml.safe_load_all(pipeline.read_text()) if d and d["kind"] == "WorkflowTemplate"
    )
    return [
        [str(a) for a in t["container"].get("args", [])]
        for t in template["spec"]["templates"]
        if "container" in t and t["container"].get("command") == RETRAIN
    ]


def as_submitted(args: list[str]) -> list[str]:
    """Argo substitutes `{{...}}` before the container starts: a plausible value stands in (the
    trigger is a choice, the rest paths and strings)."""
    return [
        re.sub(r"\{\{[^}]*\}\}", lambda m: "manual" if m[0].endswith(".trigger}}") else "/tmp/x", a)
        for a in args
    ]


@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda p: p.parts[-3])
def test_every_pipeline_step_starts_with_arguments_the_image_accepts(pipeline: Path) -> None:
    steps = retrain_steps(pipeline)
    # Every step of the pipeline is there: a step left on another command would escape this test.
    assert sorted(a[0] for a in steps) == sorted(["fetch", "train", "evaluate", "register", "propose"]), steps
    for args in map(as_submitted, steps):
        parsed = retrain_entry.parser().parse_args(args)  # an unknown or malformed argument exits 2 here
        assert (parsed.step, parsed.app) == (args[0], pipeline.parts[-3]), args
        shown = subprocess.run(
            [sys.executable, *RETRAIN[1:], *args, "--help"], capture_output=True, text=True, cwd="/"
        )
        assert shown.returncode == 0, shown.stderr
        assert f"usage: python -m mlplat.retrain {args[0]}" in shown.stdout, shown.stdout


def test_the_image_passes_run_as_non_root_with_a_numeric_user() -> None:
    (user,) = [rest for keyword, rest in final_stage() if keyword == "USER"]
    uid, _, gid = user.partition(":")
    # A user name cannot be checked by the kubelet against runAsNonRoot: the pod would never start.
    assert uid.isdigit() and int(uid) != 0 and (not gid or gid.isdigit()), user
    # The drift job's emptyDirs are owned by its pod's user: the image's, or its files are unreadable.
    assert int(uid) == model_monitoring.RUN_AS, user


def _requirement_names() -> list[str]:
    lines = (IMAGE_DIR / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_canonical(name)] = version.strip()
    return pins


def test_the_image_installs_only_locked_versions() -> None:
    steps = final_stage()
    every = instructions()
    copies = {rest.split()[-1]: rest.split()[0] for keyword, rest in every if keyword == "COPY"}
    (pip,) = [rest for keyword, rest in every if keyword == "RUN" and "pip install" in rest]
    constraints = re.search(r"-c (\S+)", pip)
    requirements = re.search(r"-r (\S+)", pip)
    assert constraints and copies.get(constraints[1]) == "requirements.lock", pip
    assert requirements and copies.get(requirements[1]) == "images/monitor/requirements.txt", pip
    assert not any(keyword == "RUN" and "pip install" in rest for keyword, rest in steps), "unlocked install"
    locked = _locked()
    # Every package pip will resolve (the requirements and all they depend on) has a pin, so `-c`
    # leaves pip no version to choose.
    todo, closure = [*_requirement_names()], set()
    while todo:
        name = _canonical(todo.pop())
        if name in closure:
            continue
        closure.add(name)
        for requirement in map(Requirement, metadata.requires(name) or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    unpinned = sorted(closure - set(locked))
    assert not unpinned, f"not pinned in requirements.lock: {unpinned}"


def _reached(module: str) -> tuple[set[Path], set[str]]:
    """The repository's files `module` imports (transitively, function bodies included) and the
    top-level names of third-party packages among their imports."""
    files: set[Path] = set()
    third_party: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        base = REPO / name.replace(".", "/")
        path = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
        if path is None or path in files:
            continue
        files.add(path)
        if path.name != "__init__.py" and (path.parent / "__init__.py").is_file():
            todo.append(name.rpartition(".")[0])  # importing a module runs its package's __init__
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for imported in names:
                top = imported.partition(".")[0]
                if top in ("mlplat", "infra"):
                    todo.append(imported)
                elif top not in sys.stdlib_module_names:
                    third_party.add(top)
    return files, third_party


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_the_image_carries_every_module_and_package_its_commands_import(module: str) -> None:
    files, third_party = _reached(module)
    distributions = metadata.packages_distributions()
    listed = {_canonical(n) for n in _requirement_names()}
    # A top-level name several distributions provide (mlflow: mlflow, mlflow-skinny, mlflow-tracing)
    # is installed when one of them is listed.
    missing = sorted(
        top for top in third_party if not listed & {_canonical(d) for d in distributions.get(top, [top])}
    )
    assert not missing, f"imported by {module} but not installed in the image: {missing}"
    copied: list[str] = []
    for keyword, rest in final_stage():
        if keyword == "COPY" and not rest.startswith("--from"):
            copied += rest.split()[:-1]
    uncopied = sorted(
        str(f.relative_to(REPO))
        for f in files
        if not any(f.relative_to(REPO).as_posix() == c or f.is_relative_to(REPO / c) for c in copied)
    )
    assert not uncopied, f"imported by {module} but not copied into the image: {uncopied}"
    # The drift job renders the app's overlays and reads its contract and evaluation file from here.
    assert "apps" in copied, copied


def test_no_library_in_the_image_reports_telemetry() -> None:
    env: dict[str, Any] = {}
    for keyword, rest in final_stage():
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    # Evidently sends usage data unless DO_NOT_TRACK is set (evidently 0.7.x telemetry.py).
    assert env.get("DO_NOT_TRACK") == "1", env
