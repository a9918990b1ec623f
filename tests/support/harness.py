"""Build PlatformServices for one environment under the mock engine (mlplat/mocks.py, the one `mlplat
plan` runs) and keep each resource's type, name, URN, provider, dependencies and inputs (secrets
revealed, their paths noted), so tests can assert on what the engine would receive.
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

from infra.config import StackConfig, load_environment
from mlplat.mocks import Registration, decode, run, start

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

    def one(self, typ: str) -> Registered:
        """The one resource of a type the program declares once per stack (an error names what it found)."""
        found = self.of_type(typ)
        assert len(found) == 1, f"{self.env}: expected one {typ}, found {[r.urn for r in found]}"
        return found[0]

    def releases(self) -> dict[str, Registered]:
        """Helm releases by their in-cluster release name."""
        return {r.inputs["name"]: r for r in self.of_type("kubernetes:helm.sh/v3:Release")}

    def by_name(self, name: str) -> Registered:
        return next(r for r in self.resources if r.name == name)


def _registered(registration: Registration) -> Registered:
    """A registration with its secrets revealed (their key paths noted) for assertions."""
    secrets: list[str] = []

    def reveal(path: str, value: Any) -> Any:
        secrets.append(path)
        return value

    return Registered(
        urn=registration.urn,
        type=registration.type,
        name=registration.name,
        provider=registration.provider or "",
        parent=registration.parent or "",
        inputs=decode(registration.inputs, reveal),
        secret_paths=secrets,
        dependencies=registration.dependencies,
        protect=registration.protect,
    )


@cache
def build(env: str) -> Plan:
    """PlatformServices of `env`, as the lead's program will call it (cached: built once per env)."""
    return build_config(load_environment(env))


def build_config(config: StackConfig) -> Plan:
    """PlatformServices of a stack config a test changed (not cached)."""
    from infra.aws import storage
    from infra.aws.karpenter import NAMESPACE as KARPENTER
    from infra.program import platform_services_args
    from infra.services import PlatformServices
    from infra.services.load_balancer import LoadBalancing
    from infra.services.network_policies import NamespaceRef
    from infra.services.vault import VaultUnseal

    env = config.environment
    recording = start(env)

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
            platform_services_args(
                config,
                storage.NAMES,  # the program hands on those of the StorageClasses it creates
                vault_unseal=VaultUnseal(role_arn=ROLE_ARN, kms_key_id=KMS_KEY),
                load_balancing=LoadBalancing(
                    role_arn=LBC_ROLE_ARN, cluster_name=f"mlplat-{env}", vpc_id=VPC_ID
                ),
                karpenter_namespace=NamespaceRef(KARPENTER, karpenter),
            ),
            pulumi.ResourceOptions(providers={"kubernetes": provider}),
        )

    run(program)
    return Plan(env, [_registered(r) for r in recording.resources])


def reference_chart(folder: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(values.yaml defaults, values.schema.json or None) of a reference chart."""
    base = REFERENCE / "charts" / folder
    # Envoy Gateway keeps its defaults as the envsubst template of values.yaml (SOURCES.md notes).
    values = base / "values.yaml" if (base / "values.yaml").exists() else base / "values.tmpl.yaml"
    defaults = yaml.safe_load(values.read_text()) or {}
    schema_path = base / "values.schema.json"
    schema = json.loads(schema_path.read_text()) if schema_path.exists() else None
    return defaults, schema


# Release name in the cluster -> key in versions.CHARTS.
RELEASES = {
    "kube-prometheus-stack": "kube-prometheus-stack",
    "cert-manager": "cert-manager",
    "kserve-crd": "kserve-crd",
    "kserve": "kserve",
    "kserve-runtimes": "kserve-runtimes",
    "gpu-operator": "gpu-operator",
    "vault": "vault",
    "vault-secrets-operator": "vault-secrets-operator",
    "minio": "minio",
    "mlflow": "mlflow",
    "falco": "falco",
    "argocd": "argo-cd",
    "keda": "keda",
    "envoy-gateway": "envoy-gateway",
    "aws-load-balancer-controller": "aws-load-balancer-controller",
    "prometheus-pushgateway": "prometheus-pushgateway",
    "argo-workflows": "argo-workflows",
    "argo-events": "argo-events",
}


def switched_off(env: str) -> dict[str, str]:
    """Release name -> namespace of each optional service the stack config of `env` switches off
    (`services.<name>.enabled`; retraining runs in one environment only, infra/config.py
    RETRAINING_ENVIRONMENT): the plan has neither its release nor its namespace."""
    from infra.services import argo_events, argo_workflows

    services = load_environment(env).services
    optional = (
        (argo_workflows, services.argo_workflows.enabled),
        (argo_events, services.argo_events.enabled),
    )
    return {service.RELEASE: service.NAMESPACE for service, enabled in optional if not enabled}


def transitive_dependencies(plan: Plan, r: Registered) -> set[str]:
    by_urn = {x.urn: x for x in plan.resources}
    seen: set[str] = set()
    todo = list(r.dependencies)
    while todo:
        urn = todo.pop()
        if urn not in seen:
            seen.add(urn)
            todo += by_urn[urn].dependencies if urn in by_urn else []
    return seen


def depends_on(plan: Plan, dependent: Registered, dependency: Registered) -> bool:
    """`dependent` waits for `dependency`, directly or through other resources."""
    by_urn = {r.urn: r for r in plan.resources}
    seen, todo = set(), list(dependent.dependencies)
    while todo:
        urn = todo.pop()
        if urn == dependency.urn:
            return True
        if urn not in seen and urn in by_urn:
            seen.add(urn)
            todo += by_urn[urn].dependencies
    return False
