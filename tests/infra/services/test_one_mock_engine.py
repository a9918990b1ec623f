"""The services harness and `mlplat plan` run one mock engine: the same resources under the same URNs,
with the same inputs marked secret, so a test of the harness speaks for the plan the policy pack judges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlplat.plan import REDACTED
from tests.support.harness import build


def _redacted_paths(value: Any, path: str = "") -> set[str]:
    if value == REDACTED:
        return {path}
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in _redacted_paths(v, f"{path}.{k}" if path else k)}
    if isinstance(value, list):
        return {p for i, v in enumerate(value) for p in _redacted_paths(v, f"{path}[{i}]")}
    return set()


def test_harness_records_what_the_offline_plan_records(offline_plan: Callable[[str], dict[str, Any]]) -> None:
    planned = {r["urn"]: r for r in offline_plan("dev")["resources"]}
    # The harness builds PlatformServices alone (with its own stand-in provider and Karpenter namespace).
    built = [r for r in build("dev").resources if r.name not in ("k8s", "karpenter")]
    assert len(built) > 100
    assert [r.urn for r in built if r.urn not in planned] == []
    for registered in built:
        assert set(registered.secret_paths) == _redacted_paths(planned[registered.urn]["inputs"]), (
            registered.urn
        )
