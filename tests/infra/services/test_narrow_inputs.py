"""Components take only what they use: a service's chart values come from its own settings, no
component in infra/services/ gets the whole stack config, and a component's required inputs are
required by its args type, not checked half-way through building it."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.aws import storage
from infra.config import StackConfig, load_environment
from infra.services import argocd, mlflow, monitoring
from infra.services.argo_events import ArgoEventsArgs
from infra.services.argo_workflows import ArgoWorkflowsArgs
from infra.services.gateway import InferenceGatewayArgs
from infra.services.kserve import KserveArgs
from infra.services.load_balancer import LoadBalancerControllerArgs
from infra.services.minio import MinioArgs
from infra.services.model_monitoring import DriftJobsArgs
from infra.services.vault import VaultArgs
from tests.support.harness import Plan

SERVICES = Path(__file__).resolve().parents[3] / "infra" / "services"

# Release name -> the service's computed values, from its own settings in the stack config.
NARROW: dict[str, Callable[[StackConfig], dict[str, Any]]] = {
    "kube-prometheus-stack": lambda c: monitoring.computed_values(
        c.services.monitoring, storage.NAMES.default, c.services.argo_events.enabled
    ),
    "mlflow": lambda c: mlflow.computed_values(c.services.mlflow, storage.NAMES.retain),
    "argocd": lambda c: argocd.computed_values(c.services.argocd),
}


def _within(small: Any, big: Any, path: str = "") -> list[str]:
    """Where `small` is not contained in `big` (maps key by key, anything else equal)."""
    if isinstance(small, dict) and isinstance(big, dict):
        return [p for k, v in small.items() for p in _within(v, big.get(k), f"{path}.{k}")]
    return [] if small == big else [path]


@pytest.mark.parametrize("release", sorted(NARROW))
def test_chart_values_are_computed_from_the_services_own_settings(plan: Plan, release: str) -> None:
    values = NARROW[release](load_environment(plan.env))
    deployed = plan.releases()[release]
    assert _within(values, deployed.inputs["values"]) == [], deployed.urn


def _annotations(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of `tree`, and of the string annotations in it (`x: "StackConfig"`)."""
    for node in ast.walk(tree):
        yield node
        for annotation in (getattr(node, "annotation", None), getattr(node, "returns", None)):
            if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
                yield from ast.walk(ast.parse(annotation.value, mode="eval"))


def _stack_config_uses(path: Path) -> list[str]:
    found = []
    for node in _annotations(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            named = [alias.name for alias in node.names if alias.name == "StackConfig"]
        elif isinstance(node, ast.Name):
            named = [node.id] if node.id == "StackConfig" else []
        elif isinstance(node, ast.Attribute):
            named = [node.attr] if node.attr == "StackConfig" else []
        else:
            continue
        found += [f"{path.relative_to(SERVICES.parents[1])}:{getattr(node, 'lineno', '?')}" for _ in named]
    return found


def test_no_service_component_receives_the_whole_stack_config() -> None:
    """A component handed the whole StackConfig can read any setting of any service: what it depends on
    is then visible only by reading all of it, and a change to one service's settings may change
    another's resources. infra/program.py narrows the config; the components see their own part."""
    modules = sorted(SERVICES.glob("*.py"))
    assert modules, SERVICES
    offending = [where for path in modules for where in _stack_config_uses(path)]
    assert not offending, (
        "StackConfig in infra/services/ (take ClusterFacts and the service's own settings instead):\n"
        + "\n".join(offending)
    )


@pytest.mark.parametrize(
    ("args_type", "missing"),
    [
        (LoadBalancerControllerArgs, "aws"),
        (VaultArgs, "unseal"),
        (MinioArgs, "ca"),
        (mlflow.MlflowArgs, "ca"),
        (mlflow.MlflowArgs, "artifact_store"),
        (KserveArgs, "ca"),
        (InferenceGatewayArgs, "load_balancer_controller"),
        (ArgoWorkflowsArgs, "artifact_store"),
        (ArgoWorkflowsArgs, "ca"),
        (ArgoEventsArgs, "workflows"),
        (ArgoEventsArgs, "apps"),
        (DriftJobsArgs, "pushgateway"),
    ],
)
def test_component_args_without_a_required_input_are_refused_when_written(
    args_type: type, missing: str
) -> None:
    """A fake default ("" or None) checked at run time let a caller forget an input until `pulumi up`."""
    everything_else = {f.name: object() for f in dataclasses.fields(args_type) if f.name != missing}
    with pytest.raises(TypeError, match=f"'{missing}'"):
        args_type(**everything_else)
