"""Who may reach what: the NetworkPolicies of the offline plan, evaluated as Kubernetes would.

The platform's policies come from `mlplat plan` (every environment), the model namespace's from
the rendered overlay of a real app (`kubectl kustomize apps/iris-classifier/overlays/<env>`);
netpol.py evaluates them. Pods carry the labels their charts give them (infra/services/
network_policies.py cites where each comes from) and a VPC address, as VPC CNI assigns.
docs/security.md lists each flow with the test below that holds it.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from infra.aws.karpenter import NAMESPACE as KARPENTER
from infra.config import ENVIRONMENTS, RETRAINING_ENVIRONMENT
from tests.support.netpol import Cluster, Outside, Pod
from tests.support.netpol_world import (
    AWS_API,
    GITHUB,
    IMDS,
    PODS,
    PlanFor,
    World,
)
from tests.support.plan_graph import waits_for


@pytest.fixture(params=ENVIRONMENTS)
def world(request: pytest.FixtureRequest, offline_plan: PlanFor) -> World:
    return World(request.param, offline_plan(request.param))


@pytest.fixture
def retraining_world(offline_plan: PlanFor) -> World:
    """The one environment with retraining (infra/config.py RETRAINING_ENVIRONMENT)."""
    return World(RETRAINING_ENVIRONMENT, offline_plan(RETRAINING_ENVIRONMENT))


def _denied(world: World, pairs: list[tuple[str, str, int]]) -> list[str]:
    return [f"{s} -> {t}:{p}" for s, t, p in pairs if world.reach(s, t, p)]


def _refused(world: World, pairs: list[tuple[str, str, int]]) -> list[str]:
    return [f"{s} -> {t}:{p}" for s, t, p in pairs if not world.reach(s, t, p)]


def test_any_pod_of_a_platform_namespace_is_walled_in_and_out(world: World) -> None:
    leaks = []
    for namespace in world.platform_namespaces:
        pod = world.newcomer(namespace)
        for port in (22, 80, 443, 8080, 9000, 5432, 8200):
            if world.reach("stranger", pod, port):
                leaks.append(f"stranger -> {namespace}:{port}")
            # Egress to TCP 443 in the VPC is the Kubernetes API's (its ENIs have no selector), and
            # with VPC CNI pods have VPC addresses too: what answers there is the target's to wall.
            if port != 443 and world.reach(pod, "stranger", port):
                leaks.append(f"{namespace} -> stranger:{port}")
    assert not leaks, f"platform namespaces without default deny: {leaks}"


def test_a_model_pod_reaches_the_model_store_and_no_other_platform_service(world: World) -> None:
    assert world.reach("model", "minio", 9000), "the storage initializer cannot download the model"
    # Platform services a model has no call to make to; the last is the MinIO console.
    forbidden = [("postgresql", 5432), ("vault", 8200), ("alertmanager", 9093), ("prometheus", 9090),
                 ("grafana", 3000), ("repo-server", 8081), ("mlflow", 5000), ("minio", 9001)]  # fmt: skip
    assert not _denied(world, [("model", target, port) for target, port in forbidden])


def test_pods_outside_the_platform_reach_no_platform_service(world: World) -> None:
    forbidden = [("minio", 9000), ("postgresql", 5432), ("vault", 8200), ("alertmanager", 9093), ("prometheus", 9090),
                 ("repo-server", 8081), ("repo-server", 8084), ("argocd-controller", 8082), ("mlflow", 5000),
                 ("kserve", 8443)]  # fmt: skip
    assert not _denied(world, [("stranger", target, port) for target, port in forbidden])


def test_only_the_mlflow_server_reaches_postgresql(world: World) -> None:
    assert world.reach("mlflow", "postgresql", 5432), "MLflow cannot reach its database"
    others = [(p, "postgresql", 5432) for p in ("minio", "grafana", "prometheus", "argocd-controller", "vso")]
    assert not _denied(world, others)
    assert not world.reach(world.newcomer("mlflow"), world.pods["postgresql"], 5432)


def test_mlflow_keeps_its_artifacts_in_minio_and_nothing_else(world: World) -> None:
    assert world.reach("mlflow", "minio", 9000)
    assert not _denied(world, [("mlflow", "vault", 8200), ("mlflow", "repo-server", 8081)])
    assert not world.reach("mlflow", GITHUB, 443)


def test_only_the_vault_secrets_operator_reaches_vault(world: World) -> None:
    assert world.reach("vso", "vault", 8200)
    others = [
        (p, "vault", 8200) for p in ("grafana", "argocd-controller", "kserve", "mlflow", "minio", "falco")
    ]
    assert not _denied(world, others)


def test_prometheus_scrapes_every_metrics_port(world: World) -> None:
    targets = [
        ("minio", 9000),
        ("mlflow", 5000),
        ("vault", 8200),
        ("vso", 8443),
        ("repo-server", 8084),
        ("argocd-controller", 8082),
        ("kserve", 8443),
        ("cert-manager", 9402),
        ("karpenter", 8080),
        ("dcgm-exporter", 9400),
        ("gpu-operator", 8080),
        ("falco", 8765),
        ("falcosidekick", 2801),
        ("alertmanager", 9093),
        ("grafana", 3000),
        ("coredns", 9153),
        ("model", 8080),
        ("envoy-proxy", 19001),  # Envoy's stats: per-version request metrics
        ("envoy-gateway", 19001),
        ("lbc", 8080),
    ]
    assert not _refused(world, [("prometheus", t, p) for t, p in targets])
    # The nodes' kubelet/cAdvisor and node-exporter (host network, node addresses in the VPC).
    node = world.newcomer("kube-system")
    assert world.reach(world.pods["prometheus"], Outside(node.ip), 10250)
    assert world.reach(world.pods["prometheus"], Outside(node.ip), 9100)
    # Scraping is Prometheus's, not the monitoring namespace's.
    assert not _denied(world, [("grafana", t, p) for t, p in targets if PODS[t][0] != "monitoring"])


def test_the_control_plane_calls_the_webhooks_and_nothing_else(world: World) -> None:
    api = world.api_server
    hooks = [
        ("cert-manager-webhook", 10250),
        ("kserve", 9443),
        ("prometheus-operator", 10250),
        ("lbc", 9443),
        ("envoy-gateway", 9443),
    ]
    assert all(world.reach(api, world.pods[p], port) for p, port in hooks)
    assert not any(
        world.reach(api, world.pods[p], port)
        for p, port in [("vault", 8200), ("minio", 9000), ("postgresql", 5432)]
    )


def test_platform_pods_resolve_names_and_controllers_reach_the_kube_api(world: World) -> None:
    everyone = [p for p in PODS if p not in ("coredns", "stranger")]
    no_dns = [p for p in everyone for proto in ("UDP", "TCP") if not world.reach(p, "coredns", 53, proto)]
    assert not no_dns, f"cannot resolve names: {no_dns}"
    controllers = [
        "vault",  # TokenReview for the kubernetes auth method
        "vso",
        "prometheus",
        "prometheus-operator",
        "grafana",  # dashboard sidecar
        "repo-server",
        "argocd-controller",
        "kserve",
        "cert-manager",
        "karpenter",
        "gpu-operator",
        "envoy-gateway",  # Gateway API objects; writes the proxies' Deployments and Services
        "lbc",
    ]
    assert not [p for p in controllers if not world.reach(p, world.api_server, 443)]
    # Workloads that never call the API do not get it.
    assert not [
        p
        for p in ("minio", "mlflow", "postgresql", "falco", "model")
        if world.reach(p, world.api_server, 443)
    ]


def test_public_https_only_for_what_calls_aws_git_or_receivers(world: World) -> None:
    calls = [
        ("repo-server", GITHUB),  # git
        ("karpenter", AWS_API),  # EC2, SQS, SSM, pricing
        ("vault", AWS_API),  # KMS auto-unseal, STS
        ("alertmanager", AWS_API),  # chat and pager receivers
        ("falco", GITHUB),  # falcoctl rules artifact
        ("lbc", AWS_API),  # ELB, EC2, STS
    ]
    assert not [f"{p} -> {o.name}" for p, o in calls if not world.reach(p, o, 443)]
    closed = [
        ("minio", AWS_API),
        ("mlflow", AWS_API),
        ("kserve", GITHUB),
        ("grafana", GITHUB),
        ("model", GITHUB),
        ("argocd-controller", GITHUB),  # the cluster's API only
        ("cert-manager", GITHUB),
        ("envoy-proxy", GITHUB),
        ("envoy-gateway", GITHUB),
    ]
    assert not [f"{p} -> {o.name}" for p, o in closed if world.reach(p, o, 443)]
    # Never plain HTTP, never the instance metadata service (IRSA needs neither).
    assert not world.reach("repo-server", GITHUB, 80)
    assert not any(
        world.reach(p, IMDS, port) for p in ("karpenter", "vault", "repo-server") for port in (80, 443)
    )


def test_the_gateway_takes_https_from_anywhere_and_reaches_models_and_nothing_else(world: World) -> None:
    """The proxies are the platform's ingress: clients arrive through the NLB (IP targets keep the
    client's address) on the listener's container port 10443 (443 + Envoy Gateway's port shift)."""
    client = Outside("54.239.28.85", "a client behind the NLB")
    assert world.reach(client, "envoy-proxy", 10443) and world.reach("stranger", "envoy-proxy", 10443)
    assert world.reach("envoy-proxy", "envoy-gateway", 18000), "proxies cannot fetch their config (xDS)"
    assert world.reach("envoy-proxy", "model", 8080), "the gateway cannot reach the model server"
    closed = [
        (client, "envoy-proxy", 19000),  # Envoy's admin port
        (client, "envoy-proxy", 19001),
        (client, "envoy-gateway", 18000),
        ("stranger", "envoy-gateway", 18000),
        (client, "lbc", 9443),
    ]
    assert not [f"{s} -> {t}:{p}" for s, t, p in closed if world.reach(s, t, p)]
    assert not _denied(
        world,
        [
            ("envoy-proxy", "vault", 8200),
            ("envoy-proxy", "minio", 9000),
            ("envoy-proxy", "postgresql", 5432),
            ("envoy-proxy", "stranger", 8080),  # only namespaces the Gateway admits routes from
            ("envoy-proxy", "kserve", 9443),
        ],
    )


def test_only_prometheus_posts_alerts_to_alertmanager(world: World) -> None:
    # Falco's events reach Alertmanager as Prometheus alerts (platform/falco/values.yaml).
    assert world.reach("prometheus", "alertmanager", 9093)
    assert not _denied(
        world,
        [(p, "alertmanager", 9093) for p in ("falcosidekick", "falco", "model", "stranger", "repo-server")],
    )


def test_keda_reads_model_load_from_prometheus_and_serves_the_api_server(world: World) -> None:
    """Without the query path, every ScaledObject's trigger errors and GPU apps never scale."""
    assert world.reach("keda-operator", "prometheus", 9090)
    # The HPA controller reads scaling metrics through the external metrics API (6443), and the
    # API server calls KEDA's admission webhooks (9443).
    assert world.reach(world.api_server, "keda-metrics-apiserver", 6443)
    assert world.reach(world.api_server, "keda-webhooks", 9443)
    # Prometheus answers KEDA, not every pod; KEDA reaches no other platform service.
    assert not _denied(
        world, [(p, "prometheus", 9090) for p in ("model", "stranger", "falco", "repo-server")]
    )
    assert not _denied(world, [("keda-operator", "vault", 8200), ("keda-operator", "minio", 9000)])


def test_only_alertmanager_reaches_the_retraining_webhook(retraining_world: World) -> None:
    """An alert starts a retraining run: anything else reaching the webhook could start runs too."""
    assert retraining_world.reach("alertmanager", "eventsource", 12000), (
        "drift alerts never reach Argo Events"
    )
    assert retraining_world.reach("eventsource", "sensor", 4222), "the EventSource cannot publish to the bus"
    assert not _denied(
        retraining_world,
        [
            (p, "eventsource", 12000)
            for p in ("stranger", "model", "prometheus", "grafana", "pipeline", "falco")
        ],
    )


def test_retraining_steps_reach_their_stores_and_github_and_nothing_else(retraining_world: World) -> None:
    """Fetch and checkpoints need MinIO, register needs MLflow, open-pr needs GitHub."""
    assert not _refused(retraining_world, [("pipeline", "minio", 9000), ("pipeline", "mlflow", 5000)])
    assert retraining_world.reach("pipeline", GITHUB, 443), "the pipeline cannot push its promotion branch"
    assert not _denied(
        retraining_world,
        [
            ("pipeline", "postgresql", 5432),
            ("pipeline", "vault", 8200),
            ("pipeline", "model", 8080),
            ("pipeline", "prometheus", 9090),
            ("pipeline", "argo-server", 2746),
            ("model", "mlflow", 5000),
            ("stranger", "argo-server", 2746),
        ],
    )
    assert not retraining_world.reach("argo-controller", GITHUB, 443), (
        "the controller talks to the API server only"
    )


def test_charts_add_no_allowing_policies_of_their_own(offline_plan: PlanFor) -> None:
    """NetworkPolicies add up: a chart's allow-all policy would reopen what the walls close."""
    for env in ENVIRONMENTS:
        releases = {
            r["inputs"]["name"]: r
            for r in offline_plan(env)["resources"]
            if r["type"] == "kubernetes:helm.sh/v3:Release"
        }
        argo = releases["argocd"]
        assert argo["inputs"]["values"]["global"]["networkPolicy"]["create"] is False, argo["urn"]
        postgres = releases["mlflow"]["inputs"]["values"]["postgresql"]["primary"]
        assert postgres["networkPolicy"]["enabled"] is False, releases["mlflow"]["urn"]


def test_the_cni_enforces_network_policies(offline_plan: PlanFor) -> None:
    """Without a policy engine every NetworkPolicy above is accepted and silently ignored."""
    for env in ENVIRONMENTS:
        cni = next(
            r
            for r in offline_plan(env)["resources"]
            if r["type"] == "aws:eks/addon:Addon" and r["inputs"]["addonName"] == "vpc-cni"
        )
        configuration = yaml.safe_load(cni["inputs"].get("configurationValues") or "{}")
        assert str(configuration.get("enableNetworkPolicy")).lower() == "true", cni["urn"]


def _policy(spec: dict[str, Any], namespace: str = "db") -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_the_evaluator_reads_selectors_as_the_kubernetes_docs_do() -> None:
    """The examples of the NetworkPolicy docs ("Behavior of to and from selectors")."""
    client = Pod("web", {"role": "client"}, "10.0.0.1")
    other = Pod("web", {"role": "other"}, "10.0.0.2")
    db = Pod("db", {"role": "db"}, "10.0.0.3")
    namespaces = {"web": {"user": "alice"}}
    both_in_one_peer = {
        "namespaceSelector": {"matchLabels": {"user": "alice"}},
        "podSelector": {"matchLabels": {"role": "client"}},
    }
    anded = Cluster([_policy({"podSelector": {}, "ingress": [{"from": [both_in_one_peer]}]})], namespaces)
    assert anded.may_reach(client, db, 5432) and not anded.may_reach(other, db, 5432)
    two_peers = [
        {"namespaceSelector": both_in_one_peer["namespaceSelector"]},
        {"podSelector": {"matchLabels": {"role": "x"}}},
    ]
    ored = Cluster([_policy({"podSelector": {}, "ingress": [{"from": two_peers}]})], namespaces)
    assert ored.may_reach(other, db, 5432)
    # policyTypes left out: Ingress only, so egress stays open; an empty rule list denies everything.
    deny_in = Cluster([_policy({"podSelector": {}})])
    assert not deny_in.may_reach(client, db, 1) and deny_in.may_reach(db, client, 1)
    # ipBlock with except; a port range; the protocol defaults to TCP.
    block = {"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.0.2/32"]}}
    ranged = Cluster(
        [
            _policy(
                {
                    "podSelector": {},
                    "ingress": [{"from": [block], "ports": [{"port": 5000, "endPort": 5010}]}],
                }
            )
        ]
    )
    assert ranged.may_reach(client, db, 5005) and not ranged.may_reach(other, db, 5005)
    assert not ranged.may_reach(client, db, 5011) and not ranged.may_reach(client, db, 5005, "UDP")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_karpenter_walls_wait_for_the_karpenter_namespace(offline_plan: PlanFor, env: str) -> None:
    # Platform services no longer wait for the GPU pools, which create Karpenter's namespace: a policy
    # created before its namespace exists is refused by the API server.
    plan = offline_plan(env)
    namespace = next(
        r
        for r in plan["resources"]
        if r["type"] == "kubernetes:core/v1:Namespace"
        and r["inputs"].get("metadata", {}).get("name") == KARPENTER
    )
    walls = [
        r
        for r in plan["resources"]
        if r["type"] == "kubernetes:networking.k8s.io/v1:NetworkPolicy"
        and r["inputs"].get("metadata", {}).get("namespace") == KARPENTER
    ]
    assert walls, f"{env}: no NetworkPolicy in {KARPENTER}"
    for policy in walls:
        assert namespace["urn"] in waits_for(plan, policy["urn"]), f"{policy['urn']} races its namespace"


def test_argo_workflows_ui_reads_artifacts_and_archived_logs_from_minio(world: World) -> None:
    """The UI's artifact and log views stream from MinIO through the server itself: walled off,
    every download and archived log in the UI fails."""
    assert world.reach("argo-server", "minio", 9000), "the UI cannot show a step's artifacts or logs"
    assert not _denied(world, [("argo-server", "vault", 8200), ("argo-server", "mlflow", 5000)])
