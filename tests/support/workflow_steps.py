"""Run a workflow step's script the way a runner does, to see the outputs it writes, and resolve the values
a workflow takes from them (a matrix fed by `fromJSON(needs.<job>.outputs.<name>)`, an `env` fed by
`steps.<id>.outputs.<name>`): the tests then judge what GitHub would run, not the expression."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.support.delivery_helpers import REPO

_STEP_OUTPUT = re.compile(r"^\$\{\{ steps\.(?P<step>[\w-]+)\.outputs\.(?P<name>[\w-]+) \}\}$")
_JOB_OUTPUT_JSON = re.compile(r"^\$\{\{ fromJSON\(needs\.(?P<job>[\w-]+)\.outputs\.(?P<name>[\w-]+)\) \}\}$")


def jobs(name: str, repo: Path = REPO) -> dict[str, Any]:
    """The jobs of `.github/workflows/<name>` in `repo`."""
    data = yaml.safe_load((repo / ".github" / "workflows" / name).read_text(encoding="utf-8"))
    found: dict[str, Any] = data["jobs"]
    return found


def shell(step: dict[str, Any]) -> list[str]:
    """The command a Linux runner runs a step's script with: `bash -e` when the step names no shell,
    `bash --noprofile --norc -eo pipefail` for `shell: bash` (a composite action's steps must name one)
    (https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#jobsjob_idstepsshell)."""
    named = step.get("shell")
    assert named in (None, "bash"), f"{step.get('name')}: shell {named!r} is not run here"
    return ["bash", "--noprofile", "--norc", "-eo", "pipefail"] if named else ["bash", "-e"]


def run_step(
    step: dict[str, Any], cwd: Path, env: dict[str, str], fakes: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a step's script in `cwd` with `env` added, the test's Python first on PATH (what setup-python
    provides) and before it `fakes`: commands (name -> bash script body) standing in for what the
    runner would have (docker, kubectl, curl...), so a test sees what the script does with their answers."""
    with tempfile.TemporaryDirectory() as scratch:
        for name, body in (fakes or {}).items():
            fake = Path(scratch) / name
            fake.write_text(f"#!/bin/bash\n{body}\n", encoding="utf-8")
            fake.chmod(0o755)
        path = os.pathsep.join([scratch, str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return subprocess.run(
            [*shell(step), "-c", step["run"]],
            cwd=cwd, env={**os.environ, **env, "PATH": path}, capture_output=True, text=True, check=False,
        )  # fmt: skip


def step_outputs(job: dict[str, Any], step_id: str, repo: Path) -> dict[str, str]:
    """Run step `step_id` of `job` in `repo` as a runner does and return what it wrote to $GITHUB_OUTPUT."""
    (step,) = [s for s in job["steps"] if s.get("id") == step_id]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "github_output"
        out.write_text("")
        result = run_step(step, repo, {"GITHUB_OUTPUT": str(out)})
        assert result.returncode == 0, f"step {step_id}: {result.stderr}"
        written = out.read_text()
    return dict(line.split("=", 1) for line in written.splitlines() if "=" in line)


def step_env(job: dict[str, Any], step: dict[str, Any], key: str, repo: Path) -> str:
    """A step's `env.<key>`, with `${{ steps.<id>.outputs.<name> }}` resolved by running that step."""
    value = str(step["env"][key])
    match = _STEP_OUTPUT.match(value)
    return step_outputs(job, match["step"], repo)[match["name"]] if match else value


def matrix_values(name: str, job_id: str, key: str, repo: Path = REPO) -> list[Any]:
    """The values of `strategy.matrix.<key>` of a job, a literal list or the JSON list an earlier job of
    the same workflow writes as an output (run here to see it)."""
    workflow_jobs = jobs(name, repo)
    value = workflow_jobs[job_id]["strategy"]["matrix"][key]
    if isinstance(value, list):
        return value
    match = _JOB_OUTPUT_JSON.match(str(value))
    assert match, f"{name}/{job_id}: matrix.{key} is neither a list nor fromJSON of a job output: {value!r}"
    assert match["job"] in _needs(workflow_jobs[job_id]), (
        f"{name}/{job_id}: reads {match['job']} without needing it"
    )
    source = workflow_jobs[match["job"]]
    step = _STEP_OUTPUT.match(str(source["outputs"][match["name"]]))
    assert step, f"{name}/{match['job']}: output {match['name']} is not a step's output"
    values = json.loads(step_outputs(source, step["step"], repo)[step["name"]])
    assert isinstance(values, list), values
    return values


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)
