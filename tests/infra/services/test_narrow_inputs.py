"""Components take only what they use: a service's chart values come from its own settings, and a
component's required inputs are required by its args type, not checked half-way through building it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.config import StackConfig, load_environment
from infra.services import argocd, gateway, kserve, load_balancer, minio, mlflow, monitoring, vault
from tests.support.harness import Plan

# Release name -> (the service's computed values, the service's own settings in the stack config).
NARROW: dict[str, tuple[Callable[[Any], dict[str, Any]], Callable[[StackConfig], Any]]] = {
    "kube-prometheus-stack": (monitoring.computed_values, lambda c: c.services.monitoring),
    "mlflow": (mlflow.computed_values, lambda c: c.services.mlflow),
    "argocd": (argocd.computed_values, lambda c: c.services.argocd),
}


def _within(small: Any, big: Any, path: str = "") -> list[str]:
    """Where `small` is not contained in `big` (maps key by key, anything else equal)."""
    if isinstance(small, dict) and isinstance(big, dict):
        return [p for k, v in small.items() for p in _within(v, big.get(k), f"{path}.{k}")]
    return [] if small == big else [path]


@pytest.mark.parametrize("release", sorted(NARROW))
def test_chart_values_are_computed_from_the_services_own_settings(plan: Plan, release: str) -> None:
    computed_values, settings_of = NARROW[release]
    values = computed_values(settings_of(load_environment(plan.env)))
    deployed = plan.releases()[release]
    assert _within(values, deployed.inputs["values"]) == [], deployed.urn


@pytest.mark.parametrize(
    ("args_type", "missing"),
    [
        (load_balancer.LoadBalancerControllerArgs, "role_arn"),
        (vault.VaultArgs, "kms_key_id"),
        (minio.MinioArgs, "ca_issuer"),
        (mlflow.MlflowArgs, "ca_cert_pem"),
        (kserve.KserveArgs, "ca_cert_pem"),
        (gateway.InferenceGatewayArgs, "load_balancer_controller"),
    ],
)
def test_component_args_without_a_required_input_are_refused_when_written(
    args_type: type, missing: str
) -> None:
    """A fake default ("" or None) checked at run time let a caller forget an input until `pulumi up`."""
    with pytest.raises(TypeError, match=missing):
        args_type(load_environment("dev"))
