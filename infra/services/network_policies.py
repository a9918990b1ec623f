"""The cluster's own walls: default-deny NetworkPolicies for every platform namespace, and the flows.

Kubernetes semantics (https://kubernetes.io/docs/concepts/services-networking/network-policies/):
a pod that any policy selects for a direction is isolated in that direction; a connection goes
through only if the source's egress AND the destination's ingress allow it; allows add up and
nothing subtracts. So every platform namespace gets `default-deny` (all its pods, both directions)
plus one policy per allowed flow. docs/security.md lists each flow, why it exists and the test
that holds it (tests/infra/services/test_network_policies.py, which evaluates these objects).

Choices a reviewer should know:
- Kubernetes API: on EKS the API server is not a pod; its endpoints are the control plane's ENIs
  in the cluster's subnets, so no pod or namespace selector can name it. Egress to it is TCP 443
  to the VPC CIDR, which is what the VPC CNI maintainers advise (aws/aws-network-policy-agent#281).
- Admission webhooks are called by that same control plane: admitted from the VPC CIDR on the
  webhook's container port only.
- Pods have VPC addresses (VPC CNI), so an `ipBlock` of the VPC CIDR also matches pods: those
  rules are port-scoped, and the destination's own ingress policy still decides.
- AWS APIs (KMS, STS, EC2, SQS), git and OIDC: TCP 443 to public addresses only (every private
  and link-local range excepted, so not the instance metadata service and not the cluster).
- Prometheus scrapes each namespace on the metrics ports its charts serve, from the Prometheus
  pods only (not from Grafana or anything else in `monitoring`).
- Model namespaces (`models-<team>`) are selected by their `mlplat/team` label: every app's
  namespace.yaml sets it, and the AppProjects let Argo CD create Namespaces named `models-*` only.
- Enforcement needs a NetworkPolicy engine: the VPC CNI add-on with `enableNetworkPolicy`
  (https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html).
- Charts that ship their own allowing policies (Argo CD, Bitnami PostgreSQL) have them turned off
  in their values: allows add up, so theirs would reopen what these close.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.contract import TEAM_LABEL
from infra.services import (
    argo_events,
    argo_workflows,
    argocd,
    cert_manager,
    falco,
    gateway,
    gpu_operator,
    keda,
    kserve,
    load_balancer,
    minio,
    mlflow,
    model_monitoring,
    monitoring,
    vault,
)
from infra.services.chart import NAMESPACE_NAME_LABEL

Selector = dict[str, Any]
Peer = dict[str, Any]
Rule = dict[str, Any]

# Every model app's namespace carries it (apps/*/base/namespace.yaml; CKV_MLP_9 checks its value).
MODEL_NAMESPACES: Selector = {"matchExpressions": [{"key": TEAM_LABEL, "operator": "Exists"}]}
# CoreDNS of the EKS add-on: Service kube-dns, pods labelled k8s-app=kube-dns in kube-system.
DNS_NAMESPACE = "kube-system"
COREDNS: Selector = {"matchLabels": {"k8s-app": "kube-dns"}}
# Pod labels the charts set (checked at the pinned versions):
# prometheus-operator v0.93.0 pkg/prometheus/server/operator.go makeSelectorLabels and
# pkg/alertmanager/operator.go: app.kubernetes.io/name prometheus / alertmanager.
PROMETHEUS: Selector = {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
ALERTMANAGER: Selector = {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}}
# falcosecurity/charts falco-9.1.0 templates/_helpers.tpl selectorLabels.
FALCO: Selector = {"matchLabels": {"app.kubernetes.io/name": "falco"}}
# community-charts/helm-charts mlflow-1.11.5 templates/_helpers.tpl mlflow.selectorLabels (its
# database check and migration run as init containers of this pod, templates/deployment.yaml).
MLFLOW_SERVER: Selector = {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}
# argo-helm argo-cd-10.1.1 templates/_common.tpl argo-cd.selectorLabels: argocd-<component>.
ARGOCD_OUTBOUND: Selector = {
    "matchExpressions": [
        {
            "key": "app.kubernetes.io/name",
            "operator": "In",
            "values": ["argocd-repo-server", "argocd-server", "argocd-notifications-controller"],
        }
    ]
}
# Bitnami postgresql (subchart 18.8.12 of mlflow 1.11.5): common.labels.matchLabels name=postgresql.
POSTGRESQL: Selector = {"matchLabels": {"app.kubernetes.io/name": "postgresql"}}
# Envoy Gateway's proxies (sources in infra/services/gateway.py).
ENVOY_PROXIES: Selector = {"matchLabels": gateway.PROXY_LABELS}
# Namespaces whose HTTPRoutes the Gateway admits: the model apps' (gateway.ACCESS_LABEL).
GATEWAY_ACCESS: Selector = {"matchLabels": gateway.ACCESS_LABEL}
# Where a proxy connects in a model pod: the model server (kserve v0.20.0
# pkg/constants/constants.go InferenceServiceDefaultHttpPort "8080") or, with the request logger
# on, the agent in front of it (InferenceServiceDefaultAgentPortStr "9081"). Envoy connects to the
# pods' endpoints, so these are container ports, not the Service's.
MODEL_SERVER_PORTS = (8080, 9081)
# prometheus-community/helm-charts tag prometheus-pushgateway-3.8.0 templates/_helpers.tpl selectorLabels.
PUSHGATEWAY: Selector = {"matchLabels": {"app.kubernetes.io/name": monitoring.PUSHGATEWAY_RELEASE}}

ALL_PODS: Selector = {}
PRIVATE_AND_LINK_LOCAL = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]
PUBLIC_HTTPS: Rule = {
    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_AND_LINK_LOCAL}}],
    "ports": [{"protocol": "TCP", "port": 443}],
}
# Ports Prometheus reaches on nodes (host network, so addressed by node IP inside the VPC):
# kubelet/cAdvisor 10250, node-exporter 9100, kube-proxy 10249; and the API server on 443.
NODE_SCRAPE_PORTS = (443, 10250, 9100, 10249)
# Webhook container ports the API server calls.
CERT_MANAGER_WEBHOOK = 10250  # cert-manager v1.21.1 values.yaml webhook.securePort
KSERVE_WEBHOOK = 9443  # kserve v0.20.0 charts/kserve-resources/files/kserve/resources.yaml webhook-server
PROMETHEUS_OPERATOR_WEBHOOK = 10250  # kube-prometheus-stack 88.5.3 prometheusOperator.tls.internalPort


def tcp(*numbers: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": n} for n in numbers]


def in_namespace(namespace: str, pods: Selector | None = None) -> Peer:
    """Pods of `namespace` (all of them unless `pods` narrows it): both selectors in one peer, ANDed."""
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
        "podSelector": pods or {},
    }


# Retraining pipeline pods: the controller labels every workflow pod with its workflow's name
# (argoproj/argo-workflows v4.1.2 workflow/common/common.go LabelKeyWorkflow).
PIPELINE_PODS: Selector = {
    "matchExpressions": [{"key": "workflows.argoproj.io/workflow", "operator": "Exists"}]
}
PIPELINES: Peer = {
    "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: argo_workflows.NAMESPACE}},
    "podSelector": PIPELINE_PODS,
}
# argo-helm argo-workflows-1.0.18 templates/_helpers.tpl selectorLabels: <chart name>-<component>.
ARGO_WORKFLOWS_SERVER: Selector = {"matchLabels": {"app.kubernetes.io/name": "argo-workflows-server"}}
# The drift jobs' pods (model_monitoring.py labels the CronJobs' pod template with it).
DRIFT_JOBS: Peer = in_namespace(model_monitoring.NAMESPACE, {"matchLabels": model_monitoring.JOB_LABEL})


def in_vpc(vpc_cidr: str) -> list[Peer]:
    """Addresses in the VPC: the API server's ENIs, nodes (host-network pods) and, with VPC CNI, pods."""
    return [{"ipBlock": {"cidr": vpc_cidr}}]


@dataclass(frozen=True)
class Flow:
    """One allowed flow: a policy named `name` for the pods `pods` selects, ingress or egress."""

    name: str
    pods: Selector
    ingress: Sequence[Rule] = ()
    egress: Sequence[Rule] = ()


@dataclass(frozen=True)
class Link:
    """One connection from pods of a client namespace to pods of a server namespace on one port,
    declared once. It goes through only if the client's egress and the server's ingress both allow
    it, so the client's Walls takes `egress()` and the server's `ingress()`."""

    client: str
    server: str
    port: int
    client_pods: Selector = field(default_factory=dict)  # every pod of the namespace unless narrowed
    server_pods: Selector = field(default_factory=dict)

    def egress(self, name: str) -> Flow:
        return Flow(
            name,
            self.client_pods,
            egress=[{"to": [in_namespace(self.server, self.server_pods)], "ports": tcp(self.port)}],
        )

    def ingress(self, name: str) -> Flow:
        return Flow(
            name,
            self.server_pods,
            ingress=[{"from": [in_namespace(self.client, self.client_pods)], "ports": tcp(self.port)}],
        )


# The Vault Secrets Operator reads the secrets it syncs from Vault's API.
OPERATOR_TO_VAULT = Link(vault.OPERATOR_NAMESPACE, vault.NAMESPACE, vault.API_PORT)
# KEDA's Prometheus triggers query the model servers' metrics.
KEDA_TO_PROMETHEUS = Link(keda.NAMESPACE, monitoring.NAMESPACE, keda.PROMETHEUS_PORT, server_pods=PROMETHEUS)

# The Argo Workflows UI shows a step's artifacts and archived logs by reading them from MinIO itself,
# with the workflow's artifact repository credentials (argoproj/argo-workflows v4.0.6
# server/artifacts/artifact_server.go `getArtifactAndDriver`, `returnArtifact`: `driver.OpenStream`).
ARGO_SERVER_TO_MINIO = Link(
    argo_workflows.NAMESPACE, minio.NAMESPACE, 9000, client_pods=ARGO_WORKFLOWS_SERVER
)


@dataclass(frozen=True)
class Walls:
    """What one platform namespace lets in and out, on top of deny-all and DNS."""

    namespace: str
    scrape_ports: tuple[int, ...]  # metrics ports Prometheus scrapes here
    same_namespace: bool = True  # the namespace's pods talk to each other freely
    kube_api: bool = True  # its controllers watch the Kubernetes API
    webhook_ports: tuple[int, ...] = ()  # admission webhooks the API server calls
    public_https: Selector | None = None  # pods that call AWS APIs, git or OIDC issuers
    flows: tuple[Flow, ...] = field(default_factory=tuple)


def platform_walls(vpc_cidr: str, karpenter: str) -> list[Walls]:
    """Every platform namespace and its allowed flows (docs/security.md is the table of these)."""
    return [
        Walls(
            minio.NAMESPACE,
            scrape_ports=(9000,),  # MinIO serves /minio/v2/metrics on its S3 port
            kube_api=False,
            # Same namespace: distributed MinIO peers on 9000, and the chart's post-install job
            # (buckets, users, policies through `mc`) calling the MinIO Service.
            flows=(
                Flow(
                    "allow-s3-clients",
                    ALL_PODS,
                    ingress=[
                        {
                            "from": [
                                in_namespace(mlflow.NAMESPACE, MLFLOW_SERVER),
                                # KServe's storage initializer in each model pod.
                                {"namespaceSelector": MODEL_NAMESPACES, "podSelector": {}},
                                # Inference logs and reference samples read by the drift jobs.
                                DRIFT_JOBS,
                                # Retraining artifacts and checkpoints (bucket argo-artifacts).
                                PIPELINES,
                            ],
                            "ports": tcp(9000),
                        }
                    ],
                ),
                ARGO_SERVER_TO_MINIO.ingress("allow-artifact-reads-from-argo-server"),
            ),
        ),
        Walls(
            mlflow.NAMESPACE,
            scrape_ports=(5000,),  # mlflow chart service.containerPort
            same_namespace=False,  # the database admits the MLflow server only
            kube_api=False,
            flows=(
                Flow(
                    "allow-postgresql-from-mlflow",
                    POSTGRESQL,
                    ingress=[{"from": [{"podSelector": MLFLOW_SERVER}], "ports": tcp(mlflow.POSTGRES_PORT)}],
                ),
                Flow(
                    "allow-registry-reads-from-drift-jobs",
                    MLFLOW_SERVER,
                    ingress=[{"from": [DRIFT_JOBS], "ports": tcp(5000)}],
                ),
                Flow(
                    "allow-registrations-from-pipelines",
                    MLFLOW_SERVER,
                    ingress=[{"from": [PIPELINES], "ports": tcp(5000)}],
                ),
                Flow(
                    "allow-mlflow-to-stores",
                    MLFLOW_SERVER,
                    egress=[
                        {"to": [{"podSelector": POSTGRESQL}], "ports": tcp(mlflow.POSTGRES_PORT)},
                        {"to": [in_namespace(minio.NAMESPACE)], "ports": tcp(9000)},
                    ],
                ),
            ),
        ),
        Walls(
            vault.NAMESPACE,
            scrape_ports=(vault.API_PORT,),
            # Same namespace: Raft between the servers (8200 API forwarding, 8201 cluster port).
            # Kubernetes API: TokenReview for the kubernetes auth method, service registration.
            # Public HTTPS: KMS auto-unseal and STS for its IRSA credentials.
            public_https=ALL_PODS,
            flows=(OPERATOR_TO_VAULT.ingress("allow-vault-secrets-operator"),),
        ),
        Walls(
            vault.OPERATOR_NAMESPACE,
            # kube-rbac-proxy `https` (vault-secrets-operator 1.4.1 values.yaml metricsService).
            scrape_ports=(8443,),
            # No admission webhook: the chart at v1.4.1 renders no WebhookConfiguration.
            flows=(OPERATOR_TO_VAULT.egress("allow-to-vault"),),
        ),
        Walls(
            monitoring.NAMESPACE,
            scrape_ports=(),  # Prometheus scrapes its own namespace as a neighbour
            webhook_ports=(PROMETHEUS_OPERATOR_WEBHOOK,),
            flows=(
                Flow(
                    "allow-prometheus-to-scrape-targets",
                    PROMETHEUS,
                    egress=[
                        # Every pod's metrics port; each target namespace admits its own ports.
                        {"to": [{"namespaceSelector": {}, "podSelector": {}}]},
                        {"to": in_vpc(vpc_cidr), "ports": tcp(*NODE_SCRAPE_PORTS)},
                    ],
                ),
                Flow(
                    "allow-pushes-from-drift-jobs",
                    PUSHGATEWAY,
                    ingress=[{"from": [DRIFT_JOBS], "ports": tcp(monitoring.PUSHGATEWAY_PORT)}],
                ),
                # Receivers (chat, pager) are public HTTPS endpoints.
                Flow("allow-alertmanager-to-receivers", ALERTMANAGER, egress=[PUBLIC_HTTPS]),
                # The retraining receiver: Argo Events' webhook.
                Flow(
                    "allow-alertmanager-to-retraining-webhook",
                    ALERTMANAGER,
                    egress=[
                        {
                            "to": [
                                in_namespace(
                                    argo_events.NAMESPACE, {"matchLabels": argo_events.EVENT_SOURCE_PODS}
                                )
                            ],
                            "ports": tcp(argo_events.WEBHOOK_PORT),
                        }
                    ],
                ),
                KEDA_TO_PROMETHEUS.ingress("allow-queries-from-keda"),
            ),
        ),
        Walls(
            model_monitoring.NAMESPACE,
            scrape_ports=(),  # the jobs push their scores; nothing here is scraped
            same_namespace=False,
            kube_api=False,
            flows=(
                Flow(
                    "allow-drift-jobs-out",
                    {"matchLabels": model_monitoring.JOB_LABEL},
                    egress=[
                        {"to": [in_namespace(minio.NAMESPACE)], "ports": tcp(9000)},
                        {"to": [in_namespace(mlflow.NAMESPACE, MLFLOW_SERVER)], "ports": tcp(5000)},
                        {
                            "to": [in_namespace(monitoring.NAMESPACE, PUSHGATEWAY)],
                            "ports": tcp(monitoring.PUSHGATEWAY_PORT),
                        },
                    ],
                ),
            ),
        ),
        Walls(
            argo_workflows.NAMESPACE,
            scrape_ports=(argo_workflows.METRICS_PORT,),
            # The controller, the UI and the pipelines' executors talk to the API server, not to
            # each other (the UI is reached through `kubectl port-forward`).
            same_namespace=False,
            # Pipelines push the promotion branch and open its pull request on GitHub.
            public_https=PIPELINE_PODS,
            flows=(
                Flow(
                    "allow-pipelines-to-stores",
                    PIPELINE_PODS,
                    egress=[
                        {"to": [in_namespace(minio.NAMESPACE)], "ports": tcp(9000)},
                        {"to": [in_namespace(mlflow.NAMESPACE, MLFLOW_SERVER)], "ports": tcp(5000)},
                    ],
                ),
                # SSO: the UI fetches the OIDC issuer's discovery document and keys.
                Flow("allow-ui-to-oidc-issuer", ARGO_WORKFLOWS_SERVER, egress=[PUBLIC_HTTPS]),
                ARGO_SERVER_TO_MINIO.egress("allow-ui-to-artifacts"),
            ),
        ),
        Walls(
            argo_events.NAMESPACE,
            # The controller's metrics; the bus, EventSource and Sensor talk among themselves
            # (JetStream) as same-namespace traffic. The Sensor creates Workflows through the API.
            scrape_ports=(argo_events.METRICS_PORT,),
            flows=(
                Flow(
                    "allow-alertmanager-webhook",
                    {"matchLabels": argo_events.EVENT_SOURCE_PODS},
                    ingress=[
                        {
                            "from": [in_namespace(monitoring.NAMESPACE, ALERTMANAGER)],
                            "ports": tcp(argo_events.WEBHOOK_PORT),
                        }
                    ],
                ),
            ),
        ),
        Walls(
            argocd.NAMESPACE,
            # argo-cd 10.1.1 values.yaml containerPorts: controller 8082, server 8083,
            # repo-server 8084, applicationset 8080, notifications 9001.
            scrape_ports=(8082, 8083, 8084, 8080, 9001),
            # Git (repo-server), the OIDC issuer (server), notification services: public HTTPS.
            # Not the application controller (it talks to the cluster's API only) or Redis.
            public_https=ARGOCD_OUTBOUND,
        ),
        Walls(
            gateway.NAMESPACE,
            # Proxies' stats and the controller's metrics share the port number.
            scrape_ports=(gateway.METRICS_PORT,),
            # Same namespace: proxies fetch their configuration from the controller (xDS).
            # Kubernetes API: the controller watches Gateway API objects and writes the proxies'
            # Deployments and Services. Webhook: the controller's topology injector.
            webhook_ports=(gateway.WEBHOOK_PORT,),
            flows=(
                # The ingress of the platform: clients come through the NLB (targets are the pods,
                # sources keep their addresses), so HTTPS is open to every source.
                Flow(
                    "allow-https-to-proxies",
                    ENVOY_PROXIES,
                    ingress=[{"ports": tcp(gateway.PROXY_HTTPS_PORT)}],
                ),
                Flow(
                    "allow-proxies-to-models",
                    ENVOY_PROXIES,
                    egress=[
                        {
                            "to": [{"namespaceSelector": GATEWAY_ACCESS, "podSelector": {}}],
                            "ports": tcp(*MODEL_SERVER_PORTS),
                        }
                    ],
                ),
            ),
        ),
        # The Gateway and its certificate Secret; no pods, so nothing in or out.
        Walls(gateway.GATEWAY_NAMESPACE, scrape_ports=(), same_namespace=False, kube_api=False),
        Walls(
            load_balancer.NAMESPACE,
            scrape_ports=(load_balancer.METRICS_PORT,),
            same_namespace=False,
            # Its webhooks admit LoadBalancer Services, pods and TargetGroupBindings.
            webhook_ports=(load_balancer.WEBHOOK_PORT,),
            # ELB, EC2 and STS (IRSA) APIs.
            public_https=ALL_PODS,
        ),
        Walls(
            kserve.NAMESPACE,
            scrape_ports=(8443,),  # kube-rbac-proxy `https` in front of the controller's metrics
            webhook_ports=(KSERVE_WEBHOOK,),
        ),
        Walls(
            cert_manager.NAMESPACE,
            scrape_ports=(9402,),  # cert-manager `http-metrics`
            webhook_ports=(CERT_MANAGER_WEBHOOK,),
        ),
        Walls(
            karpenter,
            scrape_ports=(8080,),  # karpenter 1.14.1 values.yaml controller.metrics.port
            # EC2, SSM, pricing, SQS, STS: public HTTPS. No webhook at 1.14.1 (no webhook values).
            public_https=ALL_PODS,
        ),
        Walls(
            gpu_operator.NAMESPACE,
            # NVIDIA/gpu-operator v26.7.0: dcgm-exporter 9400 (assets/state-dcgm-exporter),
            # node-status-exporter 8000, operator metrics 8080 (templates/operator.yaml).
            scrape_ports=(9400, 8000, 8080),
        ),
        Walls(
            keda.NAMESPACE,
            scrape_ports=(keda.METRICS_PORT,),
            # The API server calls the admission webhooks and the external metrics API (the HPA
            # controller reads scaling metrics through it). Same namespace: the metrics API server asks
            # the operator for metric values over gRPC.
            webhook_ports=(keda.WEBHOOK_PORT, keda.METRICS_API_PORT),
            flows=(KEDA_TO_PROMETHEUS.egress("allow-to-prometheus"),),
        ),
        Walls(
            falco.NAMESPACE,
            # falco 9.1.0 metrics 8765; falcosidekick 0.12.1 listen port 2801.
            scrape_ports=(8765, 2801),
            # Falco posts events to falcosidekick in the same namespace; Falco needs no API
            # (the chart's Kubernetes metadata collector is off by default). falcoctl (init
            # container and follower, falco 9.1.0 values.yaml falcoctl.artifact) fetches the
            # rules artifact from falcosecurity.github.io / ghcr.io over public HTTPS.
            kube_api=False,
            public_https=FALCO,
        ),
    ]


def _policy(
    namespace: str, name: str, pods: Selector, ingress: Sequence[Rule], egress: Sequence[Rule]
) -> dict[str, Any]:
    types = [t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules]
    spec: dict[str, Any] = {"podSelector": pods, "policyTypes": types}
    if ingress:
        spec["ingress"] = list(ingress)
    if egress:
        spec["egress"] = list(egress)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def manifests(walls: Walls, vpc_cidr: str) -> list[dict[str, Any]]:
    """The NetworkPolicy objects of one namespace."""
    ns = walls.namespace
    deny = _policy(ns, "default-deny", ALL_PODS, (), ())
    deny["spec"]["policyTypes"] = ["Ingress", "Egress"]
    found = [
        deny,
        _policy(
            ns,
            "allow-dns",
            ALL_PODS,
            (),
            [
                {
                    "to": [in_namespace(DNS_NAMESPACE, COREDNS)],
                    "ports": [{"protocol": "UDP", "port": 53}, *tcp(53)],
                }
            ],
        ),
    ]
    if walls.same_namespace:
        same: list[Peer] = [{"podSelector": {}}]
        found.append(_policy(ns, "allow-same-namespace", ALL_PODS, [{"from": same}], [{"to": same}]))
    if walls.scrape_ports:
        scrape = [
            {"from": [in_namespace(monitoring.NAMESPACE, PROMETHEUS)], "ports": tcp(*walls.scrape_ports)}
        ]
        found.append(_policy(ns, "allow-prometheus-scrape", ALL_PODS, scrape, ()))
    if walls.kube_api:
        api = [{"to": in_vpc(vpc_cidr), "ports": tcp(443)}]
        found.append(_policy(ns, "allow-kube-api", ALL_PODS, (), api))
    if walls.webhook_ports:
        hooks = [{"from": in_vpc(vpc_cidr), "ports": tcp(*walls.webhook_ports)}]
        found.append(_policy(ns, "allow-webhooks-from-control-plane", ALL_PODS, hooks, ()))
    if walls.public_https is not None:
        found.append(_policy(ns, "allow-public-https", walls.public_https, (), [PUBLIC_HTTPS]))
    found += [_policy(ns, f.name, f.pods, f.ingress, f.egress) for f in walls.flows]
    return found


def platform_policies(
    vpc_cidr: str, karpenter: str, absent: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Every NetworkPolicy of the platform namespaces, for the VPC `vpc_cidr`, except those of the
    `absent` namespaces (services the stack switches off)."""
    return [
        doc
        for walls in platform_walls(vpc_cidr, karpenter)
        if walls.namespace not in absent
        for doc in manifests(walls, vpc_cidr)
    ]


@dataclass(frozen=True)
class NamespaceRef:
    """A namespace created outside the platform services (Karpenter's, with the node pools): its name,
    and the resource whose creation its walls must wait for."""

    name: str
    created_by: pulumi.Resource


@dataclass(frozen=True, kw_only=True)
class NetworkPoliciesArgs:
    vpc_cidr: str  # network.vpc_cidr: the control plane's ENIs and the nodes live in it
    karpenter: NamespaceRef
    # Resources that create the platform namespaces (a policy in a missing namespace is refused).
    namespaces_created_by: Sequence[pulumi.Resource]
    # Namespaces of services this stack switches off: no walls for them.
    absent: frozenset[str]


class NetworkPolicies(pulumi.ComponentResource):
    """The NetworkPolicies of every platform namespace (module docstring: what and why)."""

    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:NetworkPolicies", name, None, opts)
        after = pulumi.ResourceOptions(
            parent=self, depends_on=[*args.namespaces_created_by, args.karpenter.created_by]
        )
        self.policies: Mapping[str, k8s.networking.v1.NetworkPolicy] = {
            f"{doc['metadata']['namespace']}/{doc['metadata']['name']}": k8s.networking.v1.NetworkPolicy(
                f"{name}-{doc['metadata']['namespace']}-{doc['metadata']['name']}",
                metadata=doc["metadata"],
                spec=doc["spec"],
                opts=after,
            )
            for doc in platform_policies(args.vpc_cidr, args.karpenter.name, args.absent)
        }
        self.register_outputs({"policies": sorted(self.policies)})
