"""The pods of one environment as the pinned charts label them, with VPC addresses, and the platform's
and a model app's NetworkPolicies around them: the world netpol.py evaluates."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Callable
from itertools import count
from typing import Any

import yaml

from infra.config import load_environment
from tests.support.harness import REPO
from tests.support.netpol import Cluster, Outside, Pod

PlanFor = Callable[[str], dict[str, Any]]


NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


APP = "iris-classifier"


MODEL_NAMESPACE = "models-core-ml"


PLATFORM_NAMESPACES = (
    "minio",
    "mlflow",
    "vault",
    "vault-secrets-operator",
    "monitoring",
    "argocd",
    "kserve",
    "cert-manager",
    "karpenter",
    "gpu-operator",
    "falco",
    "keda",
    "envoy-gateway-system",
    "mlplat-gateway",
    "aws-load-balancer-controller",
    "argo-workflows",
    "argo-events",
)


# Pod labels as the pinned charts render them (sources in infra/services/network_policies.py).
PODS: dict[str, tuple[str, dict[str, str]]] = {
    "model": (MODEL_NAMESPACE, {"serving.kserve.io/inferenceservice": APP, "component": "predictor"}),
    "minio": ("minio", {"app": "minio", "release": "minio"}),
    "mlflow": (
        "mlflow",
        {"app": "mlflow", "app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": "mlflow"},
    ),
    "postgresql": (
        "mlflow",
        {
            "app.kubernetes.io/name": "postgresql",
            "app.kubernetes.io/instance": "mlflow",
            "app.kubernetes.io/component": "primary",
        },
    ),
    "vault": ("vault", {"app.kubernetes.io/name": "vault", "component": "server"}),
    "vso": ("vault-secrets-operator", {"app.kubernetes.io/name": "vault-secrets-operator"}),
    "prometheus": (
        "monitoring",
        {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"},
    ),
    "alertmanager": ("monitoring", {"app.kubernetes.io/name": "alertmanager"}),
    "grafana": ("monitoring", {"app.kubernetes.io/name": "grafana"}),
    "prometheus-operator": ("monitoring", {"app": "kube-prometheus-stack-operator"}),
    "repo-server": ("argocd", {"app.kubernetes.io/name": "argocd-repo-server"}),
    "argocd-controller": ("argocd", {"app.kubernetes.io/name": "argocd-application-controller"}),
    "kserve": ("kserve", {"control-plane": "kserve-controller-manager"}),
    "cert-manager-webhook": ("cert-manager", {"app.kubernetes.io/name": "webhook"}),
    "cert-manager": ("cert-manager", {"app.kubernetes.io/name": "cert-manager"}),
    "karpenter": ("karpenter", {"app.kubernetes.io/name": "karpenter"}),
    "dcgm-exporter": ("gpu-operator", {"app": "nvidia-dcgm-exporter"}),
    "gpu-operator": ("gpu-operator", {"app": "gpu-operator"}),
    "falco": ("falco", {"app.kubernetes.io/name": "falco"}),
    "falcosidekick": ("falco", {"app.kubernetes.io/name": "falcosidekick"}),
    # The keda walls select every pod of the namespace; these labels only name the three components.
    "keda-operator": ("keda", {"app": "keda-operator"}),
    "keda-metrics-apiserver": ("keda", {"app": "keda-operator-metrics-apiserver"}),
    "keda-webhooks": ("keda", {"app": "keda-admission-webhooks"}),
    "coredns": ("kube-system", {"k8s-app": "kube-dns"}),
    # envoyproxy/gateway v1.9.0: proxy/resource.go EnvoyAppLabel + gatewayapi/translator.go buildIR;
    # charts/gateway-helm templates/envoy-gateway-deployment.yaml (control-plane: envoy-gateway).
    "envoy-proxy": (
        "envoy-gateway-system",
        {
            "app.kubernetes.io/name": "envoy",
            "app.kubernetes.io/component": "proxy",
            "app.kubernetes.io/managed-by": "envoy-gateway",
            "gateway.envoyproxy.io/owning-gateway-name": "inference",
            "gateway.envoyproxy.io/owning-gateway-namespace": "mlplat-gateway",
        },
    ),
    "envoy-gateway": ("envoy-gateway-system", {"control-plane": "envoy-gateway"}),
    # aws-load-balancer-controller 3.5.0 templates/_helpers.tpl selectorLabels.
    "lbc": ("aws-load-balancer-controller", {"app.kubernetes.io/name": "aws-load-balancer-controller"}),
    # A retraining pipeline's step: argoproj/argo-workflows v4.1.2 workflow/common/common.go
    # LabelKeyWorkflow on every workflow pod.
    "pipeline": ("argo-workflows", {"workflows.argoproj.io/workflow": "retrain-iris-classifier-x7k2p"}),
    # argo-helm argo-workflows-1.0.18 templates/_helpers.tpl selectorLabels.
    "argo-server": ("argo-workflows", {"app.kubernetes.io/name": "argo-workflows-server"}),
    "argo-controller": ("argo-workflows", {"app.kubernetes.io/name": "argo-workflows-workflow-controller"}),
    # argoproj/argo-events v1.9.11 pkg/apis/events/v1alpha1/const.go LabelEventSourceName, LabelSensorName.
    "eventsource": ("argo-events", {"eventsource-name": "alertmanager"}),
    "sensor": ("argo-events", {"sensor-name": "retraining"}),
    # A pod of a namespace nobody walled (a team's scratch namespace, `default`).
    "stranger": ("default", {"app": "anything"}),
}


GITHUB = Outside("140.82.112.3", "github.com")


AWS_API = Outside("52.94.133.131", "an AWS regional endpoint")


IMDS = Outside("169.254.169.254", "instance metadata")


class World:
    """One environment: its cluster's policies, its pods (VPC addresses) and the API server."""

    def __init__(self, env: str, plan: dict[str, Any]) -> None:
        stack = load_environment(env)
        vpc = stack.network.vpc_cidr
        switched_off = {
            "argo-workflows": not stack.services.argo_workflows.enabled,
            "argo-events": not stack.services.argo_events.enabled,
        }
        # The platform namespaces of this stack: a service it switches off has no namespace to wall.
        self.platform_namespaces = tuple(ns for ns in PLATFORM_NAMESPACES if not switched_off.get(ns))
        platform = [
            {"metadata": r["inputs"]["metadata"], "spec": r["inputs"]["spec"]}
            for r in plan["resources"]
            if r["type"] == NETWORK_POLICY
        ]
        # A model app's namespace: its team, and the label the Gateway admits HTTPRoutes from.
        labels = {"mlplat/team": "core-ml", "mlplat/gateway-access": "true"}
        self.cluster = Cluster(platform + model_policies(env), {MODEL_NAMESPACE: labels})
        hosts = (str(ipaddress.ip_address(int(vpc.network_address) + i)) for i in count(1000))
        self.pods = {name: Pod(ns, labels, next(hosts), name) for name, (ns, labels) in PODS.items()}
        # The EKS control plane's ENIs sit in the cluster's subnets, inside the VPC.
        self.api_server = Outside(str(ipaddress.ip_address(int(vpc.network_address) + 10)), "API server")
        self.hosts = hosts

    def reach(
        self, source: str | Pod | Outside, target: str | Pod | Outside, port: int, protocol: str = "TCP"
    ) -> bool:
        src = self.pods[source] if isinstance(source, str) else source
        dst = self.pods[target] if isinstance(target, str) else target
        return self.cluster.may_reach(src, dst, port, protocol)

    def newcomer(self, namespace: str) -> Pod:
        """A pod no policy names by its labels, in `namespace`."""
        return Pod(namespace, {"app": "newcomer"}, next(self.hosts), f"newcomer in {namespace}")


def model_policies(env: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (for kubectl kustomize) is not on the PATH"
    rendered = subprocess.run(
        [kubectl, "kustomize", str(REPO / "apps" / APP / "overlays" / env)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    policies = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "NetworkPolicy"]
    assert {p["metadata"]["namespace"] for p in policies} == {MODEL_NAMESPACE}
    return policies
