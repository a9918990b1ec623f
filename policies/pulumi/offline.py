"""Run the mlplat policy pack over an offline plan (build/plan/<env>.json), without the Pulumi CLI.

    .venv-policy/bin/python policies/pulumi/offline.py PLAN.json [--policy-config FILE]
    .venv-policy/bin/python policies/pulumi/offline.py --list

It builds the same pulumi_policy objects the CLI's analyzer builds (ResourceValidationArgs,
StackValidationArgs, PolicyResource, PolicyResourceOptions, unknown-checking proxies) and calls the
very policy objects __main__.py registers. Prints a JSON list of violations; exit 0 even when there
are violations, 2 when the plan (or policy config) cannot be read, 1 when a policy itself fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from inspect import isawaitable
from pathlib import Path
from typing import Any

from mlplat_policies import DEFAULT_ENFORCEMENT, PACK_LABEL, POLICIES, STACK_TYPE
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

RESOURCE_KEYS = ("urn", "type", "name", "inputs")


class InputError(Exception):
    """The plan or the policy config cannot be used; the message says why."""


class PolicyFailure(Exception):
    """A policy raised: a bug in the pack, reported without a stack trace."""


# ---- input ---------------------------------------------------------------------------------------


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise InputError(f"cannot read {what} {path}: {err.strerror or err}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{what} {path} is not JSON: {err}") from None


def read_plan(path: Path) -> dict[str, Any]:
    """The plan document, checked for the fields the runner relies on."""
    plan = read_json(path, "plan")
    if not isinstance(plan, dict) or not isinstance(plan.get("resources"), list):
        raise InputError(f"{path} is not an offline plan: expected an object with a 'resources' list")
    for field_name in ("stack", "project"):
        if not isinstance(plan.get(field_name), str) or not plan[field_name]:
            raise InputError(f"{path} is not an offline plan: '{field_name}' must be a non-empty string")
    for index, resource in enumerate(plan["resources"]):
        if not isinstance(resource, dict) or any(key not in resource for key in RESOURCE_KEYS):
            raise InputError(f"{path}: resources[{index}] needs {', '.join(RESOURCE_KEYS)}")
        if not isinstance(resource["inputs"], dict):
            raise InputError(f"{path}: resources[{index}].inputs must be an object")
    if not isinstance(plan.get("outputs", {}), dict):
        raise InputError(f"{path}: 'outputs' must be an object")
    return plan


@dataclass
class PackConfig:
    """What `pulumi preview --policy-pack-config FILE` would give the pack: levels and properties."""

    levels: dict[str, EnforcementLevel] = field(default_factory=dict)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> PackConfig:
        config = cls()
        raw = read_json(path, "policy config") if path else {}
        if not isinstance(raw, dict):
            raise InputError(f"policy config {path} must be an object keyed by policy name")
        for name, value in raw.items():
            settings = value if isinstance(value, dict) else {"enforcementLevel": value}
            level = settings.get("enforcementLevel")
            if level is not None:
                try:
                    config.levels[name] = EnforcementLevel(level)
                except ValueError:
                    raise InputError(
                        f"policy config {path}: {name}: unknown enforcementLevel {level!r}"
                    ) from None
            config.properties[name] = {k: v for k, v in settings.items() if k != "enforcementLevel"}
        return config

    def level(self, policy: Policy) -> EnforcementLevel:
        level = self.levels.get(policy.name) or self.levels.get("all")
        level = level or policy.enforcement_level or DEFAULT_ENFORCEMENT
        # As the analyzer does: a violation left after remediation is reported as mandatory.
        return EnforcementLevel.MANDATORY if level == EnforcementLevel.REMEDIATE else level


# ---- the objects pulumi_policy's analyzer would build ----------------------------------------


def props(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Inputs as the analyzer hands them to a policy: deserialized, unknown values guarded."""
    return unknown_checking_proxy(deserialize_properties(dict(inputs)))


def options(resource: Mapping[str, Any]) -> PolicyResourceOptions:
    opts = PolicyResourceOptions(
        protect=bool(resource.get("protect")),
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.get("parent") or None,
    )
    # Not part of the analyzer protocol: only this runner can tell protect-stateful-prod about it.
    opts.retain_on_delete = bool(resource.get("retainOnDelete"))  # type: ignore[attr-defined]
    return opts


class Plan:
    """The plan's resources, plus the stack resource the CLI would also show to stack policies."""

    def __init__(self, document: dict[str, Any]) -> None:
        stack, project = document["stack"], document["project"]
        self.stack_urn = f"urn:pulumi:{stack}::{project}::{STACK_TYPE}::{project}-{stack}"
        self.stack_resource = {
            "urn": self.stack_urn,
            "type": STACK_TYPE,
            "name": f"{project}-{stack}",
            "inputs": document.get("outputs") or {},
        }
        self.resources: list[dict[str, Any]] = document["resources"]
        self.by_urn = {r["urn"]: r for r in self.resources}

    def provider(self, resource: Mapping[str, Any]) -> PolicyProviderResource | None:
        """The explicit provider a resource names as `<provider urn>::<id>`."""
        reference = resource.get("provider")
        found = self.by_urn.get(reference.rsplit("::", 1)[0]) if isinstance(reference, str) else None
        if found is None:
            return None
        return PolicyProviderResource(found["type"], props(found["inputs"]), found["urn"], found["name"])

    def resource_args(self, resource: Mapping[str, Any], config: Mapping[str, Any]) -> ResourceValidationArgs:
        return ResourceValidationArgs(
            resource["type"],
            props(resource["inputs"]),
            resource["urn"],
            resource["name"],
            options(resource),
            self.provider(resource),
            config,
        )

    def stack_args(self, config: Mapping[str, Any]) -> StackValidationArgs:
        """Every resource (stack first) with parents and dependencies linked, as AnalyzeStack does."""
        everything = [self.stack_resource, *self.resources]
        built = {
            r["urn"]: PolicyResource(
                r["type"], props(r["inputs"]), r["urn"], r["name"], options(r), self.provider(r), None, [], {}
            )
            for r in everything
        }
        for r in everything:
            resource = built[r["urn"]]
            resource.parent = built.get(r.get("parent") or "")
            resource.dependencies.extend(built[d] for d in r.get("dependsOn") or [] if d in built)
        return StackValidationArgs(list(built.values()), config)


# ---- running the policies ----------------------------------------------------------------------


@dataclass
class Reporter:
    """Collects violations in the runner's output format."""

    stack_urn: str
    violations: list[dict[str, str]] = field(default_factory=list)

    def add(self, policy: Policy, level: EnforcementLevel, message: str, urn: str | None) -> None:
        self.violations.append(
            {
                "policy": policy.name,
                "urn": urn or self.stack_urn,
                "message": message,
                "enforcementLevel": level.value,
            }
        )

    def for_policy(
        self, policy: Policy, level: EnforcementLevel, resource_urn: str | None = None
    ) -> ReportViolation:
        """A report_violation callback; resource policies always report on their resource, as in the CLI."""

        def report_violation(message: str, urn: str | None = None) -> None:
            self.add(policy, level, message, resource_urn or urn)

        return report_violation


def run_validation(policy: Policy, urn: str, validate: Callable[[], Any], reporter: Reporter) -> None:
    """Call one validation the way the analyzer does: await results, map unknowns and not-applicable."""
    try:
        result = validate()
        if isawaitable(result):
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(result)
            finally:
                loop.close()
    except UnknownValueError as err:
        message = (
            f"can't run policy '{policy.name}' from policy pack '{PACK_LABEL}' during preview: {err.message}"
        )
        reporter.add(policy, EnforcementLevel.ADVISORY, message, urn)
    except _NotApplicableError:
        pass
    except Exception as err:
        raise PolicyFailure(f"policy {policy.name} failed on {urn}: {type(err).__name__}: {err}") from None


def evaluate(document: dict[str, Any], config: PackConfig) -> list[dict[str, str]]:
    """Every enabled policy over the plan: resource policies per resource, stack policies once."""
    plan = Plan(document)
    reporter = Reporter(plan.stack_urn)
    for policy in POLICIES:
        level = config.level(policy)
        if level == EnforcementLevel.DISABLED:
            continue
        policy_config = dict(config.properties.get(policy.name, {}))
        if isinstance(policy, ResourceValidationPolicy):
            for resource in plan.resources:
                urn = resource["urn"]
                args = plan.resource_args(resource, policy_config)
                report = reporter.for_policy(policy, level, urn)
                run_validation(policy, urn, partial(policy.validate, args, report), reporter)
        elif isinstance(policy, StackValidationPolicy):
            stack_args = plan.stack_args(policy_config)
            report = reporter.for_policy(policy, level)
            run_validation(policy, plan.stack_urn, partial(policy.validate, stack_args, report), reporter)
    return reporter.violations


def describe() -> list[dict[str, str]]:
    """The registered policies: what --list prints and the README documents."""
    return [
        {
            "policy": p.name,
            "kind": "stack" if isinstance(p, StackValidationPolicy) else "resource",
            "enforcementLevel": (p.enforcement_level or DEFAULT_ENFORCEMENT).value,
            "description": p.description,
        }
        for p in POLICIES
    ]


Evaluate = Callable[[dict[str, Any], PackConfig], list[dict[str, str]]]


def report(evaluate: Evaluate, plan: Path, policy_config: Path | None, program: str) -> int:
    """Print the violations `evaluate` finds in a plan file as JSON; the exit code of the command
    (2: bad input, 1: a policy that could not run, 0: evaluated). Shared with via_analyzer.py, whose
    output the parity test compares with this one's."""
    try:
        violations = evaluate(read_plan(plan), PackConfig.load(policy_config))
    except InputError as err:
        print(f"{program}: {err}", file=sys.stderr)
        return 2
    except PolicyFailure as err:
        print(f"{program}: {err}", file=sys.stderr)
        return 1
    print(json.dumps(violations, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", nargs="?", type=Path, help="build/plan/<env>.json")
    parser.add_argument("--policy-config", type=Path, help="JSON in the format of --policy-pack-config")
    parser.add_argument("--list", action="store_true", help="print the registered policies and exit")
    args = parser.parse_args(argv)
    if args.list:
        print(json.dumps(describe(), indent=2))
        return 0
    if args.plan is None:
        parser.error("the plan file is required")
    return report(evaluate, args.plan, args.policy_config, "offline.py")


if __name__ == "__main__":
    sys.exit(main())
