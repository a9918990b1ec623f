"""Offline plan: the real Pulumi program under the SDK's mock engine, written to build/plan/<env>.json.

No cloud calls, no credentials, no Pulumi CLI. A recording resource monitor keeps every
registration as the engine would receive it (inputs, parent, protect, retainOnDelete, dependsOn),
with secret values redacted; the Pulumi policy pack then judges the plan in its own virtualenv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from infra.contract import ENVIRONMENTS
from mlplat import checkout, safe_yaml

REPO = Path(__file__).resolve().parent.parent
PLAN_DIR = Path("build", "plan")  # in the checkout planned
POLICY_PYTHON = checkout.tool(".venv-policy", "python")
POLICY_RUNNER = REPO / "policies" / "pulumi" / "offline.py"
PROJECT = "mlplat"

REDACTED = "[secret]"


def redact(value: Any) -> Any:
    """Replace every secret with a marker and every resource reference with its URN."""
    from mlplat import mocks  # Pulumi loads only when a plan is made, not with every command

    return mocks.decode(value, lambda _path, _secret: REDACTED)


def run_program(env: str) -> dict[str, Any]:
    """Run infra.program for one stack under the mock engine and return the plan document."""
    import pulumi

    from infra.config import load_stack_config, stack_file
    from mlplat import mocks

    path = stack_file(env)
    values = safe_yaml.stack_values(path)
    # Validate here too, so a bad config is a ConfigError (exit 2) rather than the RunError the program
    # raises for the Pulumi engine.
    load_stack_config(values, str(path), env)
    recording = mocks.start(env, values, PROJECT)

    from infra import program

    try:
        mocks.run(program.main)
    except pulumi.RunError as err:
        raise PlanError(str(err)) from None
    return {
        "kind": "offline-plan",
        "note": "Offline plan under the Pulumi SDK mock engine: no cloud was called; computed values are mocks.",
        "stack": env,
        "project": PROJECT,
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "custom": r.custom,
                "provider": r.provider,
                "inputs": redact(r.inputs),
                "protect": r.protect,
                "retainOnDelete": r.retain_on_delete,
                "dependsOn": r.dependencies,
            }
            for r in recording.resources
        ],
        "outputs": redact(recording.outputs),
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
    try:
        violations = json.loads(result.stdout)
    except ValueError:
        raise PlanError(
            f"policy pack printed something other than its JSON list of violations on {plan_path}:\n"
            f"{result.stdout.strip()[:500]}"
        ) from None
    if not isinstance(violations, list):
        raise PlanError(f"policy pack answered {type(violations).__name__}, not a list of violations")
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


def plan(
    env: str, with_policies: bool = True, path: Path | None = None, root: Path = REPO
) -> tuple[dict[str, Any], Path]:
    from mlplat.cost import enforce_budget

    document = run_program(env)
    # Before anything is written: a plan over the stack file's budget is refused, not saved.
    enforce_budget(document, env)
    path = path or root / PLAN_DIR / f"{env}.json"
    # The policy pack judges a copy in a private folder, and the plan reaches `path` only with its
    # verdict: a failed run leaves the earlier plan as it was (never a plan that reads "no violations"
    # because the pack did not run).
    if with_policies:
        with tempfile.TemporaryDirectory(prefix="mlplat-plan-") as scratch:
            judged = Path(scratch) / path.name
            judged.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            document["violations"] = evaluate_policies(judged)
    try:
        _write(path, json.dumps(document, indent=2) + "\n")
    except OSError as err:
        raise PlanError(f"cannot write {path}: {err.strerror}") from None
    return document, path


def _write(path: Path, text: str) -> None:
    """`text` into `path`, whole or not at all: a regular file (or a new one) is replaced by a sibling
    written first, with the mode a plain write would give it; anything else (`--out /dev/stdout`, a
    FIFO, a symbolic link) is written through, as the user named it, never replaced."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        with path.open("w", encoding="utf-8") as out:
            out.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    sibling = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        umask = os.umask(0)
        os.umask(umask)
        sibling.chmod(0o666 & ~umask)
        os.replace(sibling, path)
    finally:
        sibling.unlink(missing_ok=True)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("plan", help="offline plan of one environment (mock engine, no cloud)")
    parser.add_argument("--env", required=True, choices=ENVIRONMENTS)
    parser.add_argument("--no-policies", action="store_true", help="skip the Pulumi policy pack")
    parser.add_argument("--out", type=Path, help="plan file to write (default build/plan/<env>.json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from infra.config import ConfigError
    from infra.prices import CostError

    try:
        # The program reads its stack files and platform values from beside itself.
        root = checkout.own_code(args, "a plan runs the checkout's own Pulumi program over its stack files")
        document, path = plan(args.env, with_policies=not args.no_policies, path=args.out, root=root)
    except (ConfigError, PlanError, CostError, checkout.NotACheckout) as err:
        print(f"mlplat plan: {err}", file=sys.stderr)
        return 2
    print(summarize(document))
    print(f"wrote {path}")
    mandatory = [v for v in document["violations"] if v["enforcementLevel"] == "mandatory"]
    return 1 if mandatory else 0
