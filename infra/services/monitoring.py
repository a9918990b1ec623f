"""kube-prometheus-stack: Prometheus, Alertmanager and Grafana, plus the platform's rules and dashboards.

Also the Pushgateway the model drift jobs publish to (model_monitoring.py), scraped with
`honorLabels`, and the environment's key for hashing personal fields in inference logs.

Installed first: its CRDs (ServiceMonitor, PodMonitor, PrometheusRule) are used by every other
service. Retention, storage and replicas come from `services.monitoring`; the Alertmanager config,
PrometheusRules and Grafana dashboards are loaded from `platform/` at program time.

Alertmanager mounts the Secret `alertmanager-receivers` (webhook URLs and keys, read from files),
and does not start without it. The first `pulumi up` seeds it with placeholders that no
notification can reach (`.invalid` hosts, RFC 6761), labelled `mlplat/alerting-receivers:
placeholder`; Vault owns it once the real receivers are written there (docs/runbooks/vault.md),
and VSO's sync drops the label. Until then the always-firing alert in
platform/prometheus/rules/alerting.yaml says that alerting reaches nobody, instead of it failing silently.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.config import ArgoCdConfig, MonitoringConfig
from infra.gitops import repository_link
from infra.services.chart import PLATFORM, ChartService, custom_resources, load_documents
from infra.services.facts import ClusterFacts
from infra.services.gpu_prices import GENERATOR, GpuPoolPrices, price_rule

NAMESPACE = "monitoring"
RELEASE = "kube-prometheus-stack"
ALERTMANAGER_URL = f"http://{RELEASE}-alertmanager.{NAMESPACE}.svc.cluster.local:9093"
# The Pushgateway the drift jobs push to: the chart names its Service after a release name that
# contains the chart name, and serves on 9091 (prometheus-community/helm-charts tag
# prometheus-pushgateway-3.8.0, templates/_helpers.tpl `fullname`, values.yaml `service.port`).
PUSHGATEWAY_RELEASE = "prometheus-pushgateway"
PUSHGATEWAY_PORT = 9091
PUSHGATEWAY_URL = f"http://{PUSHGATEWAY_RELEASE}.{NAMESPACE}.svc.cluster.local:{PUSHGATEWAY_PORT}"
GRAFANA_ADMIN_SECRET = "grafana-admin"  # pragma: allowlist secret
# The Role Grafana's ServiceAccount is bound to (values `grafana.rbac.useExistingRole`): ConfigMaps
# only, where the grafana chart's own Role would add every Secret of this namespace.
GRAFANA_ROLE = "grafana-configmaps-reader"
RECEIVERS_SECRET = "alertmanager-receivers"  # pragma: allowlist secret (a Secret name)
# Each `alertmanagerSpec.secrets` entry is mounted at /etc/alertmanager/secrets/<name>
# (kube-prometheus-stack 88.5.3 values.yaml, `alertmanager.alertmanagerSpec.secrets`).
RECEIVERS_DIR = f"/etc/alertmanager/secrets/{RECEIVERS_SECRET}/"
# platform/alertmanager/config.yaml's receiver posting to Argo Events' webhook (`alertmanager_config`).
RETRAINING_RECEIVER = "retraining"
RECEIVERS_VAULT_PATH = "platform/monitoring/alertmanager-receivers"
RECEIVERS_STATE_LABEL = "mlplat/alerting-receivers"
# Placeholders: a URL whose host never resolves, and a key no service accepts.
PLACEHOLDER_URL = "https://receivers-not-configured.invalid/"
PLACEHOLDER_KEY = "receivers-not-configured"
# The environment's key the privacy marshaller hashes personal fields with (HMAC-SHA256; at least
# 32 bytes, mlplat/monitoring/privacy.py). Generated once per environment, then owned by Vault; the
# model namespaces of logged apps read it (platform/vault/models-inference-logging.hcl), so equal
# values stay joinable within one environment and never across environments.
INFERENCE_LOG_HASH_KEY_SECRET = "inference-log-hash-key"  # pragma: allowlist secret (a Secret name)
INFERENCE_LOG_HASH_KEY_VAULT_PATH = "platform/monitoring/inference-log-hash-key"
# The labels every rule file under platform/prometheus/rules/ carries, given to the rule the program
# renders too: a selector that finds those finds it.
RULE_LABELS = {"release": RELEASE, "app.kubernetes.io/part-of": "mlplat"}


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    """The monitoring stack waits for no other service: it installs the CRDs the others wait for."""

    cluster: ClusterFacts
    settings: MonitoringConfig  # services.monitoring
    # The repository the alert rules' runbook paths link into (services.argocd: repo_url, target_revision).
    repository: ArgoCdConfig
    # Each GPU pool's GPU-hour price, recorded for the GPU fleet dashboard's idle cost.
    gpu_prices: GpuPoolPrices
    # Argo Events is installed (services.argo_events.enabled): drift and quality alerts also go to its
    # webhook, which starts the app's retraining (argo_events.py).
    retraining: bool


def with_runbook_links(rule_file: dict[str, Any], repository: ArgoCdConfig) -> dict[str, Any]:
    """A PrometheusRule whose alerts' `runbook_url`, a path in this repository (`docs/alerts.md#<alert>`,
    what the promtool tests see), is the link to it where Argo CD reads the repository."""
    linked: dict[str, Any] = copy.deepcopy(rule_file)
    for group in linked.get("spec", {}).get("groups", []):
        for rule in group.get("rules", []):
            annotations = rule.get("annotations") or {}
            if "runbook_url" in annotations:
                if "://" in annotations["runbook_url"]:
                    raise ValueError(
                        f"alert {rule.get('alert')}: runbook_url {annotations['runbook_url']!r} must be a path "
                        "in this repository (docs/alerts.md#<alert>): the program links it where Argo CD reads it"
                    )
                annotations["runbook_url"] = repository_link(
                    repository.repo_url, repository.target_revision, annotations["runbook_url"]
                )
    return linked


def alertmanager_config(retraining: bool) -> dict[str, Any] | None:
    """`platform/alertmanager/config.yaml`: the `alertmanager.config` block (None: chart default).

    Without `retraining` (a stack without Argo Events: infra/config.py RETRAINING_ENVIRONMENT) the
    receiver posting to its webhook, and the route to it, are left out: every post would fail against a
    Service that does not exist, and the drift and quality alerts still reach the teams by the routes
    after it (the retraining route `continue`s)."""
    path = PLATFORM / "alertmanager" / "config.yaml"
    if not path.exists():
        return None
    document = yaml.safe_load(path.read_text()) or None
    if isinstance(document, dict) and set(document) == {"alertmanager"}:
        document = document["alertmanager"].get("config")  # tolerate the wrapped form
    if not isinstance(document, dict):
        return None
    if retraining:
        return document
    route = document.get("route") or {}
    return {
        **document,
        "route": {
            **route,
            "routes": [r for r in route.get("routes") or [] if r.get("receiver") != RETRAINING_RECEIVER],
        },
        "receivers": [r for r in document.get("receivers") or [] if r.get("name") != RETRAINING_RECEIVER],
    }


def receiver_files(config_block: Any) -> list[str]:
    """File names the Alertmanager config reads from the receivers Secret (`*_file` settings)."""
    found: set[str] = set()
    if isinstance(config_block, dict):
        for key, value in config_block.items():
            if key.endswith("_file") and isinstance(value, str) and value.startswith(RECEIVERS_DIR):
                found.add(value.removeprefix(RECEIVERS_DIR))
            else:
                found.update(receiver_files(value))
    elif isinstance(config_block, list):
        for item in config_block:
            found.update(receiver_files(item))
    return sorted(found)


def placeholder_receivers(config_block: Any) -> dict[str, str]:
    """Every file the config reads, with a placeholder that fails delivery (never a real endpoint)."""
    return {
        name: PLACEHOLDER_URL if name.endswith("url") else PLACEHOLDER_KEY
        for name in receiver_files(config_block)
    }


def computed_values(monitoring: MonitoringConfig, storage_class: str, retraining: bool) -> dict[str, Any]:
    """Per-environment values: from the environment's `services.monitoring`; Prometheus's volumes
    claim `storage_class`; Alertmanager posts to the retraining webhook where `retraining`."""
    values: dict[str, Any] = {
        "prometheus": {
            "prometheusSpec": {
                "retention": monitoring.retention,
                "replicas": monitoring.prometheus_replicas,
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "storageClassName": storage_class,
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {
                                "requests": {"storage": f"{monitoring.prometheus_volume_size_gi}Gi"}
                            },
                        }
                    }
                },
            }
        },
        "alertmanager": {
            "alertmanagerSpec": {"replicas": monitoring.prometheus_replicas, "secrets": [RECEIVERS_SECRET]}
        },
        "grafana": {
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET},
            "rbac": {"useExistingRole": GRAFANA_ROLE},
        },
    }
    config_block = alertmanager_config(retraining)
    if config_block is not None:
        values["alertmanager"]["config"] = config_block
    return values


class Monitoring(ChartService):
    """The monitoring stack, KServe model-server PodMonitor, PrometheusRules and dashboards."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:Monitoring", name, NAMESPACE, args.cluster, (), opts)
        self.seed(
            "grafana-admin",
            GRAFANA_ADMIN_SECRET,
            "platform/monitoring/grafana-admin",
            {"admin-user": "admin", "admin-password": self.password("grafana-admin-password")},
        )
        self.seed(
            "alertmanager-receivers",
            RECEIVERS_SECRET,
            RECEIVERS_VAULT_PATH,
            placeholder_receivers(alertmanager_config(args.retraining)),
            labels={RECEIVERS_STATE_LABEL: "placeholder"},
        )
        self.seed(
            "inference-log-hash-key",
            INFERENCE_LOG_HASH_KEY_SECRET,
            INFERENCE_LOG_HASH_KEY_VAULT_PATH,
            {"key": self.password("inference-log-hash-key")},
        )
        self.grafana_role = _grafana_role(self, f"{name}-grafana-role")
        self.release = self.install(
            "release",
            RELEASE,
            "kube-prometheus-stack",
            computed=computed_values(args.settings, args.cluster.storage_classes.default, args.retraining),
            # Grafana's sidecars list ConfigMaps from their start: the Role they are bound to first.
            depends_on=[self.namespace, *(seed.resource for seed in self.seeds), self.grafana_role],
            # Prometheus and Alertmanager volumes hold the platform's metrics history.
            protect=args.cluster.protect_stateful,
        )
        after: list[pulumi.Resource] = [self.release]
        # After the stack: its ServiceMonitor needs the CRD.
        self.pushgateway = self.install(
            "pushgateway",
            PUSHGATEWAY_RELEASE,
            "prometheus-pushgateway",
            depends_on=[self.namespace, *(seed.resource for seed in self.seeds), self.release],
        )
        self.model_servers = k8s.apiextensions.CustomResource(
            f"{name}-kserve-models",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata={"name": "kserve-model-servers", "namespace": NAMESPACE},
            spec=_model_server_podmonitor(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        self.rules = custom_resources(
            self,
            f"{name}-rule",
            [
                (path, with_runbook_links(doc, args.repository))
                for path, doc in load_documents(["prometheus/rules/*.yaml"])
            ]
            + [(GENERATOR, price_rule(args.gpu_prices, NAMESPACE, RULE_LABELS))],
            NAMESPACE,
            after,
        )
        self.dashboards = [
            _dashboard(self, f"{name}-dashboard", path.stem, doc, after)
            for path, doc in load_documents(["grafana/dashboards/*.json"])
        ]
        self.register_outputs({"release": self.release.status, "alertmanagerUrl": ALERTMANAGER_URL})


# The container KServe runs a predictor's model server in (kserve/kserve v0.20.0 pkg/constants/constants.go
# InferenceServiceContainerName = "kserve-container"; every ClusterServingRuntime of the
# kserve-runtime-configs chart names its container so). The other containers of a predictor pod (the
# storage-initializer init container, the logger agent, the marshaller sidecar) serve no model metrics.
MODEL_SERVER_CONTAINER = "kserve-container"

# Where each ClusterServingRuntime the apps use serves Prometheus metrics: the pod annotation
# prometheus.kserve.io/port the PodMonitor scrapes must name this port, and the runtime's own annotation
# does not always (an app's InferenceService annotation wins over its runtime's: kserve/kserve v0.20.0
# pkg/controller/v1beta1/inferenceservice/components/predictor.go buildObjectMeta, "predictor component >
# isvc > ServingRuntimePodSpec"). tests/platform/observability/test_obs_model_server_scrape.py holds
# every app to it.
RUNTIME_METRICS_PORTS: dict[str, int] = {
    # MLServer serves /metrics on its own server at `metrics_port`, default 8082; its REST port 8080
    # has no /metrics route (SeldonIO/MLServer tag 1.5.0, the image infra/versions.py pins:
    # mlserver/settings.py `metrics_port: int = 8082`, mlserver/metrics/server.py MetricsServer,
    # mlserver/rest/app.py adds only the middleware). KServe v0.20.0's kserve-mlserver runtime
    # annotates "8080" all the same (charts/kserve-runtime-configs/files/runtimes/resources.yaml).
    "kserve-mlserver": 8082,
    # KServe's Python model server serves /metrics on its REST port 8080, as the runtime annotates
    # (same resources.yaml, kserve-huggingfaceserver: prometheus.kserve.io/port "8080").
    "kserve-huggingfaceserver": 8080,
}


def _model_server_podmonitor() -> dict[str, Any]:
    """Scrape every KServe predictor pod in a `models-*` namespace once, on the port/path KServe annotates.

    Prometheus's pod discovery makes one target per declared port of every container, init containers
    included, and one port-free target per container without ports (prometheus/prometheus v3.14.0, the
    version kube-prometheus-stack 88.5.3 runs: discovery/kubernetes/pod.go buildPod,
    docs/configuration/configuration.md `pod` role). The address rewrite below sends all of them to the
    same port, so without the container filter each pod is scraped once per container and every sum
    over pods (llm-chat's KEDA query, the serving alerts) counts it that many times.
    """
    return {
        "namespaceSelector": {"any": True},
        "selector": {
            "matchExpressions": [{"key": "serving.kserve.io/inferenceservice", "operator": "Exists"}]
        },
        "podMetricsEndpoints": [
            {
                "relabelings": [
                    {
                        "sourceLabels": ["__meta_kubernetes_namespace"],
                        "regex": "models-.+",
                        "action": "keep",
                    },
                    {
                        "sourceLabels": ["__meta_kubernetes_pod_container_name"],
                        "regex": MODEL_SERVER_CONTAINER,
                        "action": "keep",
                    },
                    {
                        "sourceLabels": [
                            "__address__",
                            "__meta_kubernetes_pod_annotation_prometheus_kserve_io_port",
                        ],
                        "regex": "([^:]+)(?::\\d+)?;(\\d+)",
                        "replacement": "$1:$2",
                        "targetLabel": "__address__",
                        "action": "replace",
                    },
                    {
                        "sourceLabels": ["__meta_kubernetes_pod_annotation_prometheus_kserve_io_path"],
                        "regex": "(.+)",
                        "targetLabel": "__metrics_path__",
                        "action": "replace",
                    },
                ]
            }
        ],
    }


def _grafana_role(owner: ChartService, resource_name: str) -> k8s.rbac.v1.Role:
    """What Grafana's sidecars need and nothing more: read the dashboard and datasource ConfigMaps of
    this namespace (the verbs of the grafana chart's own Role, grafana-community/helm-charts
    grafana-12.11.1 templates/role.yaml, without its `secrets`)."""
    return k8s.rbac.v1.Role(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_ROLE, namespace=NAMESPACE),
        rules=[
            k8s.rbac.v1.PolicyRuleArgs(
                api_groups=[""], resources=["configmaps"], verbs=["get", "watch", "list"]
            )
        ],
        opts=pulumi.ResourceOptions(parent=owner, depends_on=[owner.namespace]),
    )


def _dashboard(
    owner: pulumi.Resource, prefix: str, stem: str, doc: dict[str, Any], after: list[pulumi.Resource]
) -> k8s.core.v1.ConfigMap:
    """A dashboard JSON as a ConfigMap Grafana's sidecar picks up (label grafana_dashboard=1)."""
    if doc.get("kind") == "ConfigMap":  # already wrapped by its author
        metadata = doc.get("metadata", {})
        data = doc.get("data", {})
        name = metadata.get("name", stem)
        labels = {**metadata.get("labels", {}), "grafana_dashboard": "1"}
    else:
        name, data, labels = (
            f"dashboard-{stem}",
            {f"{stem}.json": json.dumps(doc, indent=2)},
            {"grafana_dashboard": "1"},
        )
    return k8s.core.v1.ConfigMap(
        f"{prefix}-{stem}",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=NAMESPACE, labels=labels),
        data=data,
        opts=pulumi.ResourceOptions(parent=owner, depends_on=after),
    )
