"""Offline plan: the real Pulumi program under the SDK's mock engine, written to build/plan/<env>.json.

No cloud calls, no credentials, no Pulumi CLI. A recording resource monitor keeps every
registration as the engine would receive it (inputs, parent, protect, retainOnDelete, dependsOn),
with secret values redacted; the Pulumi policy pack then judges the plan in its own virtualenv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from infra.contract import ENVIRONMENTS
from mlplat import checkout, safe_yaml

REPO = Path(__file__).resolve().parent.parent
PLAN_DIR = REPO / "build" / "plan"
POLICY_PYTHON = checkout.tool(".venv-policy", "python")
POLICY_RUNNER = REPO / "policies" / "pulumi" / "offline.py"
PROJECT = "mlplat"

# Pulumi's wire markers for secrets and resource references (sdk/proto, rpc.py).
SIG_KEY = "4dabf18193072939515e22adb298388d"  # pragma: allowlist secret
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # pragma: allowlist secret
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"  # pragma: allowlist secret
REDACTED = "[secret]"


def redact(value: Any) -> Any:
    """Replace every secret with a marker and every resource reference with its URN."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return REDACTED
        if sig == RESOURCE_SIG:
            return {"resourceRef": value.get("urn")}
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


@dataclass
class Recorder:
    """What the recording monitor saw, in registration order."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


def _recording_monitor(recorder: Recorder) -> Any:
    import pulumi
    from pulumi.runtime.mocks import MockMonitor

    from mlplat.mocks import PlatformMocks

    # pulumi's MockMonitor leaves RegisterResource and RegisterResourceOutputs unannotated.
    class RecordingMonitor(MockMonitor):
        def make_urn(self, parent: str, type_: str, name: str) -> str:
            # The engine leaves the root stack out of its children's qualified types; so do we.
            if parent.split("::")[2:3] == ["pulumi:pulumi:Stack"]:
                parent = ""
            return str(super().make_urn(parent, type_, name))

        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
            if request.type != "pulumi:pulumi:Stack":
                recorder.resources.append(
                    {
                        "urn": response.urn,
                        "type": request.type,
                        "name": request.name,
                        "parent": request.parent or None,
                        "custom": bool(request.custom),
                        "provider": request.provider or None,
                        "inputs": redact(json_format.MessageToDict(request.object)),
                        "protect": bool(request.protect),
                        "retainOnDelete": bool(request.retainOnDelete),
                        "dependsOn": sorted(set(request.dependencies)),
                    }
                )
            return response

        def RegisterResourceOutputs(self, request: Any) -> Any:
            if request.urn.endswith(f"::pulumi:pulumi:Stack::{PROJECT}-{pulumi.get_stack()}"):
                recorder.outputs.update(redact(json_format.MessageToDict(request.outputs)))
            return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]

    return RecordingMonitor(PlatformMocks())


def run_program(env: str) -> dict[str, Any]:
    """Run infra.program for one stack under mocks and return the plan document."""
    import pulumi
    from pulumi.runtime.settings import ROOT
    from pulumi.runtime.stack import run_in_stack
    from pulumi.runtime.sync_await import _sync_await

    from infra.config import NAMESPACE, load_stack_config, stack_file

    path = stack_file(env)
    values = safe_yaml.stack_values(path)
    # Validate here too, so a bad config is a ConfigError (exit 2) rather than the RunError the program
    # raises for the Pulumi engine.
    load_stack_config(values, str(path), env)
    recorder = Recorder()
    monitor = _recording_monitor(recorder)
    pulumi.runtime.set_all_config(
        {f"{NAMESPACE}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}, []
    )
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=env, preview=False, monitor=monitor)
    # set_mocks registers a bare root stack; drop it so run_in_stack owns the root and its outputs,
    # exactly as the Pulumi language host runs a program.
    ROOT.set(None)

    from infra import program

    try:
        _sync_await(run_in_stack(program.main))
    except pulumi.RunError as err:
        raise PlanError(str(err)) from None
    return {
        "kind": "offline-plan",
        "note": "Offline plan under the Pulumi SDK mock engine: no cloud was called; computed values are mocks.",
        "stack": env,
        "project": PROJECT,
        "resources": recorder.resources,
        "outputs": recorder.outputs,
        "violations": [],
    }


def evaluate_policies(plan_path: Path) -> list[dict[str, Any]]:
    """Run the Pulumi policy pack over a plan file in the pack's own virtualenv."""
    if not POLICY_PYTHON.exists():
        raise PlanError(f"{POLICY_PYTHON} is missing: run `make plan` to create it")
    result = subprocess.run(
        [str(POLICY_PYTHON), str(POLICY_RUNNER), str(plan_path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PlanError(f"policy pack failed on {plan_path}:\n{result.stderr.strip()}")
    violations: list[dict[str, Any]] = json.loads(result.stdout)
    return violations


class PlanError(Exception):
    """The plan could not be produced; the message says why."""


def summarize(plan: dict[str, Any]) -> str:
    resources = plan["resources"]
    by_type = Counter(r["type"] for r in resources)
    components = [r for r in resources if not r["custom"]]
    children = Counter(r["parent"] for r in resources)
    lines = [
        f"OFFLINE PLAN (mock engine, no cloud) {plan['project']}/{plan['stack']}: {len(resources)} resources",
        "by type:",
        *[f"  {count:4d}  {typ}" for typ, count in sorted(by_type.items())],
        "by component:",
        *[f"  {children.get(c['urn'], 0):4d}  {c['type']} {c['name']}" for c in components],
    ]
    violations = plan["violations"]
    lines.append(f"policy violations: {len(violations)}")
    lines += [f"  [{v['enforcementLevel']}] {v['policy']}: {v['urn']}: {v['message']}" for v in violations]
    return "\n".join(lines)


def plan(env: str, with_policies: bool = True, path: Path | None = None) -> tuple[dict[str, Any], Path]:
    from mlplat.cost import enforce_budget

    document = run_program(env)
    # Before anything is written: a plan over the stack file's budget is refused, not saved.
    enforce_budget(document, env)
    path = path or PLAN_DIR / f"{env}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
        if with_policies:
            document["violations"] = evaluate_policies(path)
            path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    except OSError as err:
        raise PlanError(f"cannot write {path}: {err.strerror}") from None
    return document, path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("plan", help="offline plan of one environment (mock engine, no cloud)")
    parser.add_argument("--env", required=True, choices=ENVIRONMENTS)
    parser.add_argument("--no-policies", action="store_true", help="skip the Pulumi policy pack")
    parser.add_argument("--out", type=Path, help="plan file to write (default build/plan/<env>.json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from infra.config import ConfigError
    from mlplat.cost import CostError

    try:
        document, path = plan(args.env, with_policies=not args.no_policies, path=args.out)
    except (ConfigError, PlanError, CostError) as err:
        print(f"mlplat plan: {err}", file=sys.stderr)
        return 2
    print(summarize(document))
    print(f"wrote {path}")
    mandatory = [v for v in document["violations"] if v["enforcementLevel"] == "mandatory"]
    return 1 if mandatory else 0
