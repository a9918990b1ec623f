"""The one way the platform installs a chart: pinned Helm release, values files + computed values.

Every service goes through `helm_release`, so pins, release safety settings (atomic, cleanup on
fail, wait for hooks) and the values-file layout are decided once. Values come from
`platform/<dir>/values.yaml`, deep-merged with `platform/<dir>/values-<env>.yaml` and then with the
values the program computes (role ARNs, replicas from the service's own settings, Secret names).
Computed values win, because they come from the typed stack config that the whole program agrees on.

`ChartService` is the shape every service component shares: its namespace (with its Pod Security
level), Secrets seeded there, and pinned releases installed into it with merged values; a service
module keeps only what is specific to it (computed values, extra resources, dependencies).

Also here: the Pod Security level of every platform namespace, and loading the declarative
manifests other teams keep under `platform/` as Kubernetes resources.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import versions
from infra.services import secrets
from infra.services.facts import ClusterFacts

REPO = Path(__file__).resolve().parents[2]
PLATFORM = REPO / "platform"

# Seconds Helm waits for a release's workloads (and hooks) to be ready before `atomic` rolls back.
RELEASE_TIMEOUT = 900

# Pod Security Standard enforced on each platform namespace: `restricted` unless the workload
# cannot run under it.
POD_SECURITY: dict[str, str] = {
    "cert-manager": "restricted",
    "kserve": "restricted",
    # The model drift jobs (model_monitoring.py).
    "model-monitoring": "restricted",
    # The GPU Operator's operands (container toolkit, device plugin, DCGM, validators) mount host
    # paths and run privileged to configure the node's container runtime and GPUs.
    "gpu-operator": "privileged",
    # The MinIO chart's pods set no seccomp profile and keep default capabilities.
    "minio": "baseline",
    # The Vault chart's server pod sets no seccomp profile / capability drop we can override for
    # every container it renders (injector disabled, but the server pod is chart-owned).
    "vault": "baseline",
    "vault-secrets-operator": "restricted",
    # The Bitnami PostgreSQL subchart's init containers do not meet `restricted`.
    "mlflow": "baseline",
    # node-exporter (part of kube-prometheus-stack) uses hostNetwork, hostPID and host paths.
    "monitoring": "privileged",
    # Falco reads kernel events through eBPF: needs host PID, host paths and BPF capabilities.
    "falco": "privileged",
    # redis-ha (HA Argo CD) runs a sentinel/haproxy pair whose containers set no seccomp profile.
    "argocd": "baseline",
    # Argo Workflows' controller and UI run with the pod settings platform/argo-workflows/values.yaml
    # adds, the executor's init/wait containers with its `executor.securityContext`, and each
    # pipeline's pods with those of its WorkflowTemplate (mlplat validate holds them to it).
    "argo-workflows": "restricted",
    # Argo Events' controller-created pods (the JetStream bus's nats, metrics and reloader containers)
    # take only a pod-level security context from the EventBus spec: no capability drop per container.
    "argo-events": "baseline",
    # KEDA's chart sets runAsNonRoot, RuntimeDefault seccomp and drops every capability.
    "keda": "restricted",
    # Envoy Gateway's controller (gateway-helm v1.9.0 values) and its proxies (drop ALL, non-root,
    # RuntimeDefault seccomp: envoyproxy/gateway v1.9.0 internal/infrastructure/kubernetes/resource/
    # resource.go DefaultSecurityContext) meet `restricted`.
    "envoy-gateway-system": "restricted",
    # Holds the Gateway and its certificate only; no pods.
    "mlplat-gateway": "restricted",
    # With the capability drop and seccomp profile platform/aws-load-balancer-controller/values.yaml adds.
    "aws-load-balancer-controller": "restricted",
}


@dataclass(frozen=True)
class ServiceArgs:
    """What every `ChartService` but the monitoring stack takes; each service's args add its own
    settings and the resources it waits for, as keywords."""

    cluster: ClusterFacts
    # kube-prometheus-stack's release, which installs the ServiceMonitor, PodMonitor and PrometheusRule
    # CRDs: every service's chart renders one (`serviceMonitor` in platform/<service>/values.yaml), and
    # Helm refuses a release whose manifests name a kind the API server does not know ("unable to build
    # kubernetes objects from release manifest ... no matches for kind ServiceMonitor", helm/helm#8215).
    monitoring_crds: pulumi.Resource


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` merged into a copy of `base`: maps merge key by key, anything else is replaced."""
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise ValueError(f"{path.relative_to(REPO)}: a values file must be a mapping")
    return document


def values_files(values_dir: str, environment: str) -> dict[str, Any]:
    """`platform/<values_dir>/values.yaml` deep-merged with its `values-<environment>.yaml`."""
    folder = PLATFORM / values_dir
    return deep_merge(_read_yaml(folder / "values.yaml"), _read_yaml(folder / f"values-{environment}.yaml"))


def helm_release(
    owner: pulumi.Resource,
    resource_name: str,
    name: str,
    chart_key: str,
    namespace: pulumi.Input[str],
    values: Mapping[str, Any],
    depends_on: Sequence[pulumi.Resource] = (),
    protect: bool = False,
) -> k8s.helm.v3.Release:
    """A Helm release of the pinned chart `chart_key`, child of `owner`, named `name` in the cluster.

    The release name is fixed (no Pulumi suffix) because other services address this one by its
    Service names, which Helm derives from the release name.
    """
    pin = versions.CHARTS[chart_key]
    oci = pin.repo.startswith("oci://")
    return k8s.helm.v3.Release(
        resource_name,
        k8s.helm.v3.ReleaseArgs(
            name=name,
            chart=f"{pin.repo}/{pin.chart}" if oci else pin.chart,
            version=pin.version,
            repository_opts=None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=pin.repo),
            namespace=namespace,
            create_namespace=False,
            values=dict(values),
            # A failed install/upgrade is rolled back and fails `pulumi up`, never left half-done.
            atomic=True,
            cleanup_on_fail=True,
            wait_for_jobs=True,
            timeout=RELEASE_TIMEOUT,
            # Helm installs the chart's crds/ directory on first install, before the templates.
            skip_crds=False,
            max_history=10,
        ),
        pulumi.ResourceOptions(parent=owner, depends_on=list(depends_on), protect=protect),
    )


# The label the API server sets on every namespace to its name (Kubernetes >= 1.22): what selects a
# namespace by name (NetworkPolicy peers, admission policy bindings).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def namespace(owner: pulumi.Resource, resource_name: str, name: str) -> k8s.core.v1.Namespace:
    """A platform namespace with its Pod Security Standard enforced (and warned/audited alike)."""
    level = POD_SECURITY[name]
    return k8s.core.v1.Namespace(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name,
            labels={
                "app.kubernetes.io/part-of": "mlplat",
                "pod-security.kubernetes.io/enforce": level,
                "pod-security.kubernetes.io/warn": level,
                "pod-security.kubernetes.io/audit": level,
            },
        ),
        opts=pulumi.ResourceOptions(parent=owner),
    )


def load_documents(patterns: Iterable[str]) -> list[tuple[Path, dict[str, Any]]]:
    """Every YAML/JSON document under `platform/` matching the globs, sorted, empty docs skipped."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for pattern in patterns:
        for path in sorted(PLATFORM.glob(pattern)):
            text = path.read_text()
            documents = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
            found += [(path, doc) for doc in documents if isinstance(doc, dict) and doc]
    return found


def custom_resources(
    owner: pulumi.Resource,
    prefix: str,  # resource-name prefix: the owner's name and what the manifests are
    documents: Iterable[tuple[Path, dict[str, Any]]],
    default_namespace: str | None,
    depends_on: Sequence[pulumi.Resource],
) -> list[k8s.apiextensions.CustomResource]:
    """One CustomResource per manifest, after the release that installs its CRD."""
    created: list[k8s.apiextensions.CustomResource] = []
    for path, doc in documents:
        metadata = dict(doc.get("metadata") or {})
        if "name" not in metadata:
            raise ValueError(f"{path.relative_to(REPO)}: a {doc.get('kind')} without metadata.name")
        if default_namespace and "namespace" not in metadata:
            metadata["namespace"] = default_namespace
        body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
        created.append(
            k8s.apiextensions.CustomResource(
                f"{prefix}-{str(doc['kind']).lower()}-{metadata['name']}",
                api_version=str(doc["apiVersion"]),
                kind=str(doc["kind"]),
                metadata=metadata,
                opts=pulumi.ResourceOptions(parent=owner, depends_on=list(depends_on)),
                **body,
            )
        )
    return created


class ChartService(pulumi.ComponentResource):
    """Base of a platform service: one namespace, Secrets seeded in it, pinned releases installed in it.

    Subclasses call `super().__init__` with their type token, then `seed`/`install` what they need,
    and `register_outputs` last. Children are named `<name>-<suffix>` with `parent=self`, so URNs are
    those of a hand-written component.
    """

    namespace: k8s.core.v1.Namespace
    seeds: list[secrets.SeededSecret]  # every Secret `seed` created, for VaultAccess to sync

    def __init__(
        self,
        type_token: str,
        name: str,
        namespace_name: str,
        cluster: ClusterFacts,
        crd_releases: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`crd_releases`: the releases whose CRDs this service's releases render objects of (by
        default every release waits for them)."""
        super().__init__(type_token, name, None, opts)
        self.service_name = name
        self.cluster = cluster
        self.crd_releases = tuple(crd_releases)
        self.namespace_name = namespace_name
        self.namespace = namespace(self, f"{name}-ns", namespace_name)
        self.seeds = []

    def password(self, suffix: str) -> pulumi.Output[str]:
        """A generated password named `<name>-<suffix>`."""
        return secrets.password(self, f"{self.service_name}-{suffix}")

    def seed(
        self,
        suffix: str,
        secret_name: str,
        vault_path: str,
        data: Mapping[str, pulumi.Input[str]],
        labels: Mapping[str, str] | None = None,
    ) -> secrets.SeededSecret:
        """A Secret `secret_name` in this namespace, seeded once and then owned by Vault (secrets.py)."""
        seeded = secrets.seed_secret(
            self,
            f"{self.service_name}-{suffix}",
            self.namespace,
            self.namespace_name,
            secret_name,
            vault_path,
            data,
            labels,
        )
        self.seeds.append(seeded)
        return seeded

    def merged_values(self, values_dir: str, computed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What a release of this service gets: `platform/<values_dir>/` files deep-merged with `computed`
        (one owner of the order, for `install` and for a service that checks the values first)."""
        return deep_merge(values_files(values_dir, self.cluster.environment), computed or {})

    def install(
        self,
        suffix: str,
        release_name: str,
        chart_key: str,
        values_dir: str | None = None,
        computed: Mapping[str, Any] | None = None,
        depends_on: Sequence[pulumi.Resource] | None = None,
        protect: bool = False,
        into: k8s.core.v1.Namespace | None = None,
    ) -> k8s.helm.v3.Release:
        """Release `release_name` of the pinned `chart_key`, named `<name>-<suffix>`.

        Values: `platform/<values_dir>/` files (`values_dir` defaults to `chart_key`) deep-merged with
        `computed`. Installed into this service's namespace unless `into` names another one it owns;
        by default the release waits for that namespace, the Secrets seeded so far (the chart reads
        them) and the service's `crd_releases`.
        """
        target = into or self.namespace
        values = self.merged_values(values_dir or chart_key, computed)
        if depends_on is None:
            depends_on = [target, *(seed.resource for seed in self.seeds), *self.crd_releases]
        return helm_release(
            self,
            f"{self.service_name}-{suffix}",
            release_name,
            chart_key,
            target.metadata.name,
            values,
            depends_on,
            protect,
        )
