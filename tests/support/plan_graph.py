"""The offline plan as a dependency graph: what the Pulumi engine finishes before it creates a resource."""

from __future__ import annotations

from typing import Any

Plan = dict[str, Any]


def waits_for(plan: Plan, urn: str) -> set[str]:
    """Every URN the engine finishes before it creates `urn`.

    A resource waits for its dependencies, for its provider (a provider is configured once its own
    dependencies exist), and for its parent's registration, which waits for the parent's dependencies:
    so a component's `depends_on` holds back all of its children.
    """
    by_urn = {r["urn"]: r for r in plan["resources"]}
    seen: set[str] = set()
    pending = [urn]
    while pending:
        resource = by_urn.get(pending.pop())
        if resource is None:
            continue
        edges = list(resource["dependsOn"])
        if resource["parent"]:
            edges.append(resource["parent"])
        if resource["provider"]:
            edges.append(resource["provider"].rsplit("::", 1)[0])  # "<urn>::<id>"
        for edge in edges:
            if edge not in seen:
                seen.add(edge)
                pending.append(edge)
    return seen
