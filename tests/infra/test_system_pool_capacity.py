"""The system pool holds every pod the platform schedules on it, at min_size, with headroom.

A Helm release is `atomic`: if one of its pods stays Pending past the timeout, the release rolls
back. So each environment's system pool must fit, at `min_size` nodes of its smallest instance type,
the CPU and memory *requests* of every pod that lands there:

- every chart's pods, from the release values in the offline plan (our `platform/<service>/values*.yaml`
  plus the values the program computes, e.g. replicas per environment) deep-merged over the upstream
  chart defaults in ../shared/reference/charts/<chart>/values.yaml, times their replicas;
- DaemonSets once per node;
- the EKS add-ons' own pods (CoreDNS, kube-proxy, the VPC CNI, the EBS CSI driver).

GPU nodes are tainted `nvidia.com/gpu`; only pods that tolerate it (the GPU operator's operands) run
there, so they are not counted. A container without requests reserves nothing at scheduling time and
counts as zero; a container with limits only gets requests equal to its limits (Kubernetes defaulting).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ENVIRONMENTS, load_environment
from infra.instance_types import DAEMONSET_ALLOWANCE_CPU_M, DAEMONSET_ALLOWANCE_MEMORY_MIB, NODE_SHAPES
from infra.services.chart import deep_merge
from tests.support.crds import value_at

PlanFor = Callable[[str], dict[str, Any]]

# Requests may use at most this share of the pool's allocatable CPU and memory at min_size: room for a
# rolling update's surge pod, for a node drained during an AMI update, and for the kernel memory that
# makes a node's capacity a little less than its nominal size.
HEADROOM = 0.75


@dataclass(frozen=True)
class Pods:
    """`count` pods (or one per node when `per_node`) each requesting cpu_m millicores and memory_mib."""

    name: str
    cpu_m: int
    memory_mib: int
    count: int = 1
    per_node: bool = False


def _cpu_m(quantity: Any) -> int:
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


_MEMORY_UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}


def _memory_mib(quantity: Any) -> int:
    match = re.fullmatch(r"([0-9.]+)([KMGT]i?)?", str(quantity))
    assert match, f"unreadable memory quantity {quantity!r}"
    number, unit = float(match[1]), match[2]
    return math.ceil(number * _MEMORY_UNITS[unit]) if unit else math.ceil(number / 2**20)


def requests(resources: dict[str, Any] | None) -> tuple[int, int]:
    """(cpu m, memory MiB) a container requests; limits stand in for missing requests, as in Kubernetes."""
    resources = resources or {}
    wanted = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    cpu = _cpu_m(wanted["cpu"]) if "cpu" in wanted else 0
    memory = _memory_mib(wanted["memory"]) if "memory" in wanted else 0
    return cpu, memory


def pods(
    name: str, values: dict[str, Any], *resource_paths: str, replicas: str | int = 1, per_node: bool = False
) -> Pods:
    """One workload: the sum of its containers' requests, `replicas` read from the values when a path."""
    cpu = memory = 0
    for path in resource_paths:
        c, m = requests(value_at(values, path))
        cpu, memory = cpu + c, memory + m
    count = replicas if isinstance(replicas, int) else int(value_at(values, replicas))
    return Pods(name, cpu, memory, count, per_node)


# What each chart runs on the system pool, read from its merged values. Jobs run by Helm hooks during
# the install are counted: an atomic release waits for them.
def karpenter(v: dict[str, Any]) -> Iterator[Pods]:
    yield pods("karpenter", v, "controller.resources", replicas="replicas")


def kube_prometheus_stack(v: dict[str, Any]) -> Iterator[Pods]:
    yield pods("prometheus-operator", v, "prometheusOperator.resources")
    yield pods(
        "prometheus", v, "prometheus.prometheusSpec.resources", replicas="prometheus.prometheusSpec.replicas"
    )
    yield pods(
        "alertmanager",
        v,
        "alertmanager.alertmanagerSpec.resources",
        replicas="alertmanager.alertmanagerSpec.replicas",
    )
    # Subcharts (not in ../shared/reference): one replica each unless our values say otherwise.
    yield pods("grafana", v, "grafana.resources", replicas=int(value_at(v, "grafana.replicas", 1)))
    yield pods(
        "kube-state-metrics",
        v,
        "kube-state-metrics.resources",
        replicas=int(value_at(v, "kube-state-metrics.replicas", 1)),
    )
    yield pods("node-exporter", v, "prometheus-node-exporter.resources", per_node=True)


def cert_manager(v: dict[str, Any]) -> Iterator[Pods]:
    yield pods("cert-manager", v, "resources", replicas="replicaCount")
    yield pods("cert-manager-webhook", v, "webhook.resources", replicas="webhook.replicaCount")
    yield pods("cert-manager-cainjector", v, "cainjector.resources", replicas="cainjector.replicaCount")
    yield pods("cert-manager-startupapicheck", v, "startupapicheck.resources")


# Node Feature Discovery, the GPU operator's subchart (0.19.0 per its Chart.yaml): its defaults are not in
# ../shared/reference; these are kubernetes-sigs/node-feature-discovery
# deployment/helm/node-feature-discovery/values.yaml @000d580 (master, gc, and a worker per node).
NFD_DEFAULTS: dict[str, Any] = {
    "master": {"replicaCount": 1, "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
    "gc": {"replicaCount": 1, "resources": {"requests": {"cpu": "10m", "memory": "128Mi"}}},
    "worker": {"resources": {"requests": {"cpu": "5m", "memory": "64Mi"}}},
}


def gpu_operator(v: dict[str, Any]) -> Iterator[Pods]:
    # The operands (device plugin, DCGM, GFD, validator) run on GPU nodes only.
    yield pods("gpu-operator", v, "operator.resources")
    if value_at(v, "nfd.enabled"):
        nfd = deep_merge(NFD_DEFAULTS, value_at(v, "node-feature-discovery", {}))
        yield pods("nfd-master", nfd, "master.resources", replicas="master.replicaCount")
        yield pods("nfd-gc", nfd, "gc.resources", replicas="gc.replicaCount")
        yield pods("nfd-worker", nfd, "worker.resources", per_node=True)


def falco(v: dict[str, Any]) -> Iterator[Pods]:
    yield pods("falco", v, "resources", "falcoctl.artifact.follow.resources", per_node=True)
    if value_at(v, "falcosidekick.enabled"):
        yield pods(
            "falcosidekick",
            v,
            "falcosidekick.resources",
            replicas=int(value_at(v, "falcosidekick.replicaCount", 2)),
        )


def argo_cd(v: dict[str, Any]) -> Iterator[Pods]:
    for part in ("controller", "server", "repoServer", "applicationSet"):
        yield pods(f"argocd-{part}", v, f"{part}.resources", replicas=f"{part}.replicas")
    if value_at(v, "notifications.enabled"):
        yield pods("argocd-notifications", v, "notifications.resources")
    if value_at(v, "redis-ha.enabled"):
        # redis-ha subchart: 3 redis (+ sentinel) pods and 3 HAProxy pods by default.
        yield pods(
            "argocd-redis-ha",
            v,
            "redis-ha.redis.resources",
            "redis-ha.sentinel.resources",
            replicas=int(value_at(v, "redis-ha.replicas", 3)),
        )
        yield pods(
            "argocd-redis-ha-haproxy",
            v,
            "redis-ha.haproxy.resources",
            replicas=int(value_at(v, "redis-ha.haproxy.replicas", 3)),
        )
    elif value_at(v, "redis.enabled"):
        yield pods("argocd-redis", v, "redis.resources")


def minio(v: dict[str, Any]) -> Iterator[Pods]:
    yield pods("minio", v, "resources", replicas="replicas")
    for job in ("makeBucketJob", "makeUserJob", "makePolicyJob"):
        yield pods(f"minio-{job}", v, f"{job}.resources")


def mlflow(v: dict[str, Any]) -> Iterator[Pods]:
    yield pods("mlflow", v, "resources", replicas="replicaCount")
    if value_at(v, "postgresql.enabled"):
        yield pods("mlflow-postgresql", v, "postgresql.primary.resources")


def vault(v: dict[str, Any]) -> Iterator[Pods]:
    replicas = "server.ha.replicas" if value_at(v, "server.ha.enabled") else 1
    yield pods("vault", v, "server.resources", replicas=replicas)


def vault_secrets_operator(v: dict[str, Any]) -> Iterator[Pods]:
    yield pods(
        "vault-secrets-operator",
        v,
        "controller.manager.resources",
        "controller.kubeRbacProxy.resources",
        replicas="controller.replicas",
    )


def kserve(v: dict[str, Any]) -> Iterator[Pods]:
    yield pods("kserve-controller", v, "kserve.controller.resources", "kserve.controller.rbacProxy.resources")


def keda(v: dict[str, Any]) -> Iterator[Pods]:
    # keda 2.20.2 values.yaml: one Deployment each, requests under resources.<component>.
    yield pods("keda-operator", v, "resources.operator", replicas="operator.replicaCount")
    yield pods("keda-metrics-apiserver", v, "resources.metricServer", replicas="metricsServer.replicaCount")
    yield pods("keda-admission-webhooks", v, "resources.webhooks", replicas="webhooks.replicaCount")


def envoy_gateway(v: dict[str, Any]) -> Iterator[Pods]:
    # gateway-helm v1.9.0 (values.tmpl.yaml): the controller Deployment; its certgen hook Job sets no requests.
    yield pods(
        "envoy-gateway",
        v,
        "deployment.envoyGateway.resources",
        replicas=int(value_at(v, "deployment.replicas", 1)),
    )


def aws_load_balancer_controller(v: dict[str, Any]) -> Iterator[Pods]:
    yield pods("aws-load-balancer-controller", v, "resources", replicas="replicaCount")


def prometheus_pushgateway(v: dict[str, Any]) -> Iterator[Pods]:
    yield pods("prometheus-pushgateway", v, "resources", replicas="replicaCount")


def argo_workflows(v: dict[str, Any]) -> Iterator[Pods]:
    # argo-helm argo-workflows-1.0.18 values.yaml: controller.replicas, server.replicas (server.enabled).
    # Pipeline pods run on the CPU model pool (apps/<app>/training), not here.
    yield pods("argo-workflows-controller", v, "controller.resources", replicas="controller.replicas")
    if value_at(v, "server.enabled"):
        yield pods("argo-workflows-server", v, "server.resources", replicas="server.replicas")


def argo_events(v: dict[str, Any]) -> Iterator[Pods]:
    # argo-events 2.4.22 values.yaml: controller.replicas; the webhook is off (namespaced install).
    # The pods its controller creates from our EventBus (3 x 50m/128Mi), EventSource and Sensor
    # (10m/32Mi each, platform/argo-events/resources/) are not Helm's: counted here by hand.
    yield pods("argo-events-controller", v, "controller.resources", replicas="controller.replicas")
    yield Pods("argo-events-jetstream", 50, 128, count=3)
    yield Pods("argo-events-eventsource-and-sensor", 20, 64)


def no_pods(v: dict[str, Any]) -> Iterator[Pods]:
    yield from ()


# Chart name (the last path segment of an OCI chart) -> what it runs.
CHARTS: dict[str, Callable[[dict[str, Any]], Iterator[Pods]]] = {
    "karpenter": karpenter,
    "kube-prometheus-stack": kube_prometheus_stack,
    "cert-manager": cert_manager,
    "gpu-operator": gpu_operator,
    "falco": falco,
    "argo-cd": argo_cd,
    "minio": minio,
    "mlflow": mlflow,
    "vault": vault,
    "vault-secrets-operator": vault_secrets_operator,
    "kserve-resources": kserve,
    "kserve-crd": no_pods,
    "kserve-runtime-configs": no_pods,
    "keda": keda,
    "gateway-helm": envoy_gateway,
    "aws-load-balancer-controller": aws_load_balancer_controller,
    "prometheus-pushgateway": prometheus_pushgateway,
    "argo-workflows": argo_workflows,
    "argo-events": argo_events,
}

# Envoy proxies, which Envoy Gateway creates per EnvoyProxy (its `envoyDeployment.replicas`): an envoy
# container of 100m / 512Mi and a shutdown manager of 10m / 32Mi by default (envoyproxy/gateway v1.9.0
# api/v1alpha1/shared_types.go Default{Deployment,ShutdownManager}{CPU,Memory}ResourceRequests).
ENVOY_PROXY = "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
ENVOY_PROXY_CPU_M, ENVOY_PROXY_MEMORY_MIB = 100 + 10, 512 + 32

# The EKS add-ons the cluster installs (infra/aws/cluster.py), with their pods' requests.
EKS_ADDONS = [
    # CoreDNS: 2 replicas of 100m / 70Mi (kubernetes/kubernetes cluster/addons/dns/coredns/coredns.yaml.base,
    # the manifest the EKS add-on follows).
    Pods("coredns", 100, 70, count=2),
    # kube-proxy: 100m, no memory request. The EKS add-on's manifest is not public; this is the request its
    # DaemonSet carries on EKS clusters, not confirmed offline: check it on the first real cluster.
    Pods("kube-proxy", 100, 0, per_node=True),
    # aws-node: 25m (aws/amazon-vpc-cni-k8s charts/aws-vpc-cni/values.yaml @0055425, `resources.requests`).
    Pods("aws-node", 25, 0, per_node=True),
    # EBS CSI: controller 2 x 10m / 40Mi, node 10m / 40Mi; sidecars request nothing
    # (kubernetes-sigs/aws-ebs-csi-driver charts/aws-ebs-csi-driver/values.yaml @006340e).
    Pods("ebs-csi-controller", 10, 40, count=2),
    Pods("ebs-csi-node", 10, 40, per_node=True),
]


def platform_pods(plan: dict[str, Any], reference: Path) -> list[Pods]:
    found: list[Pods] = list(EKS_ADDONS)
    for release in (r for r in plan["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"):
        chart = str(release["inputs"]["chart"]).rsplit("/", 1)[-1]
        assert chart in CHARTS, f"{release['urn']}: chart {chart} runs pods this test does not count yet"
        defaults_file = reference / "charts" / chart / "values.yaml"
        if not defaults_file.is_file():  # Envoy Gateway ships its defaults as values.tmpl.yaml (SOURCES.md)
            defaults_file = defaults_file.with_name("values.tmpl.yaml")
        defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.is_file() else {}
        found += CHARTS[chart](deep_merge(defaults or {}, release["inputs"].get("values") or {}))
    for proxy in (r for r in plan["resources"] if r["type"] == ENVOY_PROXY):
        replicas = int(value_at(proxy["inputs"]["spec"], "provider.kubernetes.envoyDeployment.replicas", 1))
        found.append(Pods("envoy-proxy", ENVOY_PROXY_CPU_M, ENVOY_PROXY_MEMORY_MIB, count=replicas))
    return found


def demand(found: list[Pods], nodes: int) -> tuple[int, int, int]:
    """Total (cpu m, memory MiB, pod count) on `nodes` system nodes."""
    cpu = memory = count = 0
    for p in found:
        n = nodes if p.per_node else p.count
        cpu, memory, count = cpu + n * p.cpu_m, memory + n * p.memory_mib, count + n
    return cpu, memory, count


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_platform_pods_fit_the_system_pool_at_min_size(
    offline_plan: PlanFor, reference: Path, env: str
) -> None:
    """Whatever schedules last must not stay Pending: an atomic release would roll back."""
    pool = load_environment(env).system_pool
    unknown = [t for t in pool.instance_types if t not in NODE_SHAPES]
    assert not unknown, (
        f"{env}: add {unknown} to infra/instance_types.py NODE_SHAPES (vCPUs, memory, ENIs) so the pool can be sized"
    )
    smallest = min((NODE_SHAPES[t] for t in pool.instance_types), key=lambda n: (n.vcpus, n.memory_mib))
    found = platform_pods(offline_plan(env), reference)
    cpu, memory, count = demand(found, pool.min_size)
    cpu_room = HEADROOM * pool.min_size * smallest.allocatable_cpu_m
    memory_room = HEADROOM * pool.min_size * smallest.allocatable_memory_mib
    summary = f"{env}: {pool.min_size} x {smallest} requested {cpu}m CPU, {memory}Mi memory, {count} pods"
    assert cpu <= cpu_room, f"{summary}; CPU room at {HEADROOM:.0%} is {cpu_room:.0f}m"
    assert memory <= memory_room, f"{summary}; memory room at {HEADROOM:.0%} is {memory_room:.0f}Mi"
    assert count <= pool.min_size * smallest.max_pods, f"{summary}; max pods {smallest.max_pods} per node"
    biggest = max(found, key=lambda p: (p.cpu_m, p.memory_mib))
    assert (
        biggest.cpu_m <= smallest.allocatable_cpu_m and biggest.memory_mib <= smallest.allocatable_memory_mib
    )


def test_kube_reserved_matches_the_eks_ami_for_m6i_large() -> None:
    """Worked example of nodeadm's formulas: 2 vCPU -> 70m reserved; 29 pods -> 574Mi + 100Mi eviction."""
    node = NODE_SHAPES["m6i.large"]
    assert node.max_pods == 29
    assert node.allocatable_cpu_m == 2000 - 70
    assert node.allocatable_memory_mib == 8192 - 574 - 100


def test_limits_stand_in_for_missing_requests() -> None:
    assert requests({"limits": {"cpu": "1", "memory": "1Gi"}}) == (1000, 1024)
    assert requests({"requests": {"cpu": "250m"}, "limits": {"cpu": "2", "memory": "512Mi"}}) == (250, 512)
    assert requests({}) == (0, 0)


def gpu_operands(v: dict[str, Any]) -> Iterator[Pods]:
    """The GPU operator's DaemonSets, which run on GPU nodes only (they tolerate the GPU taint)."""
    for part in ("devicePlugin", "dcgmExporter", "gfd", "validator", "migManager"):
        if value_at(v, f"{part}.enabled", True):
            yield pods(part, v, f"{part}.resources", per_node=True)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_daemonsets_on_a_model_node_fit_the_allowance_validate_keeps_back(
    offline_plan: PlanFor, reference: Path, env: str
) -> None:
    """MLP-RESOURCE-FIT gives a model pod a node's allocatable minus this allowance: if the DaemonSets
    a model node runs outgrow it, a pod validate passed would stay Pending on its node pool."""
    plan = offline_plan(env)
    everywhere = [p for p in platform_pods(plan, reference) if p.per_node]
    (operator,) = [
        r for r in plan["resources"]
        if r["type"] == "kubernetes:helm.sh/v3:Release" and str(r["inputs"]["chart"]).endswith("gpu-operator")
    ]  # fmt: skip
    defaults = yaml.safe_load((reference / "charts" / "gpu-operator" / "values.yaml").read_text())
    on_gpu_nodes = everywhere + list(
        gpu_operands(deep_merge(defaults, operator["inputs"].get("values") or {}))
    )
    for node, per_node in (("CPU model node", everywhere), ("GPU node", on_gpu_nodes)):
        cpu, memory = sum(p.cpu_m for p in per_node), sum(p.memory_mib for p in per_node)
        names = ", ".join(p.name for p in per_node)
        assert cpu <= DAEMONSET_ALLOWANCE_CPU_M, f"{env} {node}: DaemonSets ({names}) request {cpu}m"
        assert memory <= DAEMONSET_ALLOWANCE_MEMORY_MIB, (
            f"{env} {node}: DaemonSets ({names}) request {memory}Mi"
        )
