"""Reading the offline plan as AWS and the Pulumi engine would: resources, waits, IAM decisions."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from tests.support.plan_graph import waits_for

Plan = dict[str, Any]
__all__ = ["waits_for"]  # re-exported: the graph reading lives in tests/support
Context = Mapping[str, str | list[str]]


def of_type(plan: Plan, typ: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == typ]


def one(plan: Plan, typ: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in of_type(plan, typ) if name is None or r["name"] == name]
    assert len(found) == 1, f"expected one {typ} {name or ''}, found {[r['urn'] for r in found]}"
    return found[0]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(document: str) -> Iterator[dict[str, Any]]:
    yield from as_list(json.loads(document)["Statement"])


def _condition_holds(operator: str, key: str, expected: Any, context: Context) -> bool:
    """The IAM condition operators our policies use; an unknown operator never matches."""
    wanted = [str(v).lower() if operator == "Bool" else str(v) for v in as_list(expected)]
    present = key in context
    actual = [str(v) for v in as_list(context.get(key, []))]
    if operator == "ForAllValues:StringEquals":
        return all(value in wanted for value in actual)
    if operator.endswith("IfExists") and not present:
        return True
    if not present:
        return False
    base = operator.removesuffix("IfExists")
    if base == "StringEquals":
        return any(value in wanted for value in actual)
    if base == "StringLike":
        return any(fnmatchcase(value, pattern) for value in actual for pattern in wanted)
    if base == "Bool":
        return any(value.lower() in wanted for value in actual)
    return False


def allows(
    policy: list[dict[str, Any]],
    action: str,
    resource: str,
    context: Context | None = None,
    principal: str | None = None,
) -> bool:
    """Whether an Allow statement of `policy` (no Deny in ours) matches the request.

    Good enough for our documents: wildcards in actions/resources, the condition operators above,
    and for key policies an AWS principal (`*` or an exact ARN).
    """
    context = dict(context or {})
    if principal is not None:
        context.setdefault("aws:PrincipalArn", principal)
    for statement in policy:
        if statement.get("Effect") != "Allow":
            continue
        if principal is not None:
            principals = as_list((statement.get("Principal") or {}).get("AWS", []))
            if "*" not in principals and principal not in principals:
                continue
        if not any(fnmatchcase(action, pattern) for pattern in as_list(statement["Action"])):
            continue
        if not any(fnmatchcase(resource, pattern) for pattern in as_list(statement["Resource"])):
            continue
        conditions = statement.get("Condition") or {}
        if all(
            _condition_holds(operator, key, expected, context)
            for operator, pairs in conditions.items()
            for key, expected in pairs.items()
        ):
            return True
    return False
