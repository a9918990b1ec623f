"""Build PlatformServices for one environment under the shared mocks and record every registration.

The recording monitor keeps each resource's type, name, URN, provider, dependencies and inputs
(secrets unwrapped, their paths noted), so tests can assert on what the engine would receive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from google.protobuf import json_format
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import ROOT
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from infra.config import StackConfig, load_environment
from mlplat.mocks import PlatformMocks
from mlplat.plan import RESOURCE_SIG, SECRET_SIG, SIG_KEY

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "reference"
ROLE_ARN = "arn:aws:iam::123456789012:role/mlplat-vault"
KMS_KEY = "mock-kms-key-0001"
LBC_ROLE_ARN = "arn:aws:iam::123456789012:role/mlplat-aws-load-balancer-controller"
VPC_ID = "vpc-0123456789abcdef0"


@dataclass
class Registered:
    urn: str
    type: str
    name: str
    provider: str
    parent: str
    inputs: dict[str, Any]
    secret_paths: list[str]
    dependencies: list[str]
    protect: bool


@dataclass
class Plan:
    env: str
    resources: list[Registered] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def releases(self) -> dict[str, Registered]:
        """Helm releases by their in-cluster release name."""
        return {r.inputs["name"]: r for r in self.of_type("kubernetes:helm.sh/v3:Release")}

    def by_name(self, name: str) -> Registered:
        return next(r for r in self.resources if r.name == name)


def _unwrap(value: Any, path: str, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            secrets.append(path)
            return _unwrap(value.get("value"), path, secrets)
        if sig == RESOURCE_SIG:
            return {"resourceRef": value.get("urn")}
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


class _Recording(MockMonitor):  # type: ignore[misc]
    def __init__(self, plan: Plan) -> None:
        super().__init__(PlatformMocks())
        self.plan = plan

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        secrets: list[str] = []
        inputs = _unwrap(json_format.MessageToDict(request.object), "", secrets)
        self.plan.resources.append(
            Registered(
                urn=response.urn,
                type=request.type,
                name=request.name,
                provider=request.provider,
                parent=request.parent,
                inputs=inputs,
                secret_paths=secrets,
                dependencies=sorted(set(request.dependencies)),
                protect=bool(request.protect),
            )
        )
        return response


@cache
def build(env: str) -> Plan:
    """PlatformServices of `env`, as the lead's program will call it (cached: built once per env)."""
    return build_config(load_environment(env))


def build_config(config: StackConfig) -> Plan:
    """PlatformServices of a stack config a test changed (not cached)."""
    from infra.aws.karpenter import NAMESPACE as KARPENTER
    from infra.services import LoadBalancing, PlatformServices, PlatformServicesArgs, VaultUnseal
    from infra.services.network_policies import NamespaceRef

    env = config.environment
    plan = Plan(env)
    monitor = _Recording(plan)
    pulumi.runtime.set_mocks(monitor.mocks, project="mlplat", stack=env, preview=False, monitor=monitor)
    ROOT.set(None)

    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        # The program creates Karpenter's namespace with the GPU pools, outside the services.
        karpenter = k8s.core.v1.Namespace(
            "karpenter",
            metadata={"name": KARPENTER, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
            opts=pulumi.ResourceOptions(provider=provider),
        )
        PlatformServices(
            "platform",
            PlatformServicesArgs(
                config=config,
                vault_unseal=VaultUnseal(role_arn=ROLE_ARN, kms_key_id=KMS_KEY, region=config.aws.region),
                load_balancing=LoadBalancing(role_arn=LBC_ROLE_ARN, vpc_id=VPC_ID),
                cluster_name=f"mlplat-{env}",
                karpenter_namespace=NamespaceRef(KARPENTER, karpenter),
            ),
            pulumi.ResourceOptions(providers={"kubernetes": provider}),
        )

    _sync_await(run_in_stack(program))
    return plan


def reference_chart(folder: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(values.yaml defaults, values.schema.json or None) of a reference chart."""
    base = REFERENCE / "charts" / folder
    # Envoy Gateway keeps its defaults as the envsubst template of values.yaml (SOURCES.md notes).
    values = base / "values.yaml" if (base / "values.yaml").exists() else base / "values.tmpl.yaml"
    defaults = yaml.safe_load(values.read_text()) or {}
    schema_path = base / "values.schema.json"
    schema = json.loads(schema_path.read_text()) if schema_path.exists() else None
    return defaults, schema
