"""Run a plan through pulumi_policy's own analyzer servicer: the code `pulumi preview --policy-pack` calls.

    .venv-policy/bin/python policies/pulumi/via_analyzer.py PLAN.json [--policy-config FILE]

For the parity test with offline.py: each plan resource becomes the AnalyzeRequest / AnalyzeStackRequest
protobuf the engine sends, and the servicer is called in-process (no gRPC server, no CLI). The output has
offline.py's format. retainOnDelete cannot be expressed: the analyzer protocol has no such field.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format, struct_pb2
from mlplat_policies import DEFAULT_ENFORCEMENT, PACK_NAME, PACK_VERSION, POLICIES
from offline import PackConfig, Plan, report
from pulumi.runtime import proto
from pulumi_policy.policy import _PolicyAnalyzerServicer


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(value, struct_pb2.Struct())


def options(resource: dict[str, Any]) -> Any:
    return proto.AnalyzerResourceOptions(
        protect=bool(resource.get("protect")), parent=resource.get("parent") or ""
    )


def described(plan: Plan, resource: dict[str, Any]) -> dict[str, Any]:
    """What the engine sends of a resource in both AnalyzeRequest and AnalyzerResource."""
    return {
        "type": resource["type"],
        "properties": struct(resource["inputs"]),
        "urn": resource["urn"],
        "name": resource["name"],
        "options": options(resource),
        "provider": provider(plan, resource),
    }


def provider(plan: Plan, resource: dict[str, Any]) -> Any:
    found = plan.provider(resource)
    if found is None:
        return None
    inputs = plan.by_urn[found.urn]["inputs"]
    return proto.AnalyzerProviderResource(
        type=found.resource_type, properties=struct(inputs), urn=found.urn, name=found.name
    )


def configure(servicer: Any, config: PackConfig) -> None:
    """The Configure call the CLI makes for --policy-pack-config."""
    policy_config = {}
    for policy in POLICIES:
        level = config.level(policy)
        properties = config.properties.get(policy.name, {})
        policy_config[policy.name] = proto.PolicyConfig(
            enforcementLevel=proto.EnforcementLevel.Value(level.value.upper()), properties=struct(properties)
        )
    servicer.Configure(proto.ConfigureAnalyzerRequest(policyConfig=policy_config), None)


def diagnostics(response: Any, default_urn: str) -> list[dict[str, str]]:
    found = []
    for d in response.diagnostics:
        # report_violation prefixes the description; the engine attaches the resource URN itself.
        message = d.message.removeprefix(f"{d.description}\n")
        level = proto.EnforcementLevel.Name(d.enforcementLevel).lower()
        found.append(
            {
                "policy": d.policyName,
                "urn": d.urn or default_urn,
                "message": message,
                "enforcementLevel": level,
            }
        )
    return found


def evaluate(document: dict[str, Any], config: PackConfig) -> list[dict[str, str]]:
    plan = Plan(document)
    servicer = _PolicyAnalyzerServicer(PACK_NAME, PACK_VERSION, POLICIES, DEFAULT_ENFORCEMENT)
    configure(servicer, config)
    violations: list[dict[str, str]] = []
    for resource in plan.resources:
        request = proto.AnalyzeRequest(**described(plan, resource))
        # pulumi_policy's servicer methods are unannotated (pulumi-policy 1.21.0).
        violations += diagnostics(servicer.Analyze(request, None), resource["urn"])  # type: ignore[no-untyped-call]
    stack_resources = [
        proto.AnalyzerResource(
            **described(plan, r), parent=r.get("parent") or "", dependencies=r.get("dependsOn") or []
        )
        for r in [plan.stack_resource, *plan.resources]
    ]
    response = servicer.AnalyzeStack(proto.AnalyzeStackRequest(resources=stack_resources), None)  # type: ignore[no-untyped-call]
    return violations + diagnostics(response, plan.stack_urn)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("--policy-config", type=Path)
    args = parser.parse_args()
    return report(evaluate, args.plan, args.policy_config, "via_analyzer.py")


if __name__ == "__main__":
    sys.exit(main())
