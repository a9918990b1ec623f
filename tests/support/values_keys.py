"""Check that every values key we set exists in the pinned chart's upstream defaults or schema.

A misspelled key is silently ignored by Helm; here it fails with its key path. Free-form maps the
chart passes through to Kubernetes or to the application are allowed by the explicit list below.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

# Reference subcharts checked like their parent: {chart: {values key: reference folder}}.
SUBCHARTS = {"falco": {"falcosidekick": "falcosidekick"}}

# Free-form paths: the key and everything below it are passed through verbatim by the chart.
FREE_FORM: dict[str, list[str]] = {
    "*": [
        # Kubernetes ResourceRequirements, rendered with toYaml wherever a chart takes `resources`.
        "resources",
        "*.resources",
        # Kubernetes security contexts, rendered with toYaml.
        "*.podSecurityContext.*",
        "*.securityContext.*",
    ],
    "vault": [
        # ServiceAccount annotations map (IRSA role ARN).
        "server.serviceAccount.annotations.*",
        # Environment variable name -> value, rendered into the server container's env.
        "server.extraEnvironmentVars.*",
        # A prometheus-operator TLSConfig, rendered with toYaml into the ServiceMonitor.
        "serverTelemetry.serviceMonitor.tlsConfig.*",
        # A prometheus-operator SafeAuthorization, rendered with toYaml into the ServiceMonitor.
        "serverTelemetry.serviceMonitor.authorization.*",
    ],
    "kube-prometheus-stack": [
        # The Alertmanager configuration file, passed through as a document.
        "alertmanager.config",
        # PersistentVolumeClaim templates (a Kubernetes PVC spec), passed to the Prometheus/Alertmanager CRs.
        "prometheus.prometheusSpec.storageSpec.*",
        "alertmanager.alertmanagerSpec.storage.*",
        # Subchart values (grafana, node-exporter) not in the reference: only these keys are used.
        "grafana.resources",
        # grafana chart `rbac.namespaced` (grafana-community/helm-charts charts/grafana/values.yaml).
        "grafana.rbac.namespaced",
        # grafana chart `rbac.useExistingRole` and `sidecar.<kind>.resource` (grafana-community/helm-charts
        # grafana-12.11.1 charts/grafana/values.yaml): Grafana reads ConfigMaps only.
        "grafana.rbac.useExistingRole",
        "grafana.sidecar.dashboards.resource",
        "grafana.sidecar.datasources.resource",
        "prometheus-node-exporter.tolerations",
        "prometheus-node-exporter.resources",
        "kube-state-metrics.resources",
        # kube-state-metrics chart's --metric-labels-allowlist (subchart values not in the reference).
        "kube-state-metrics.metricLabelsAllowlist",
    ],
    # argo-helm argo-workflows-1.0.18 values.yaml: these default to {} and are rendered with toYaml
    # into the controller ConfigMap (templates/controller/workflow-controller-config-map.yaml).
    "argo-workflows": [
        "controller.workflowDefaults.*",
        "controller.workflowRestrictions.*",
        "artifactRepository.s3.*",
    ],
    # argo-events 2.4.22: security contexts rendered with toYaml (templates/argo-events-controller/deployment.yaml).
    "argo-events": [
        "controller.containerSecurityContext.*",
        "global.securityContext.*",
    ],
    "argo-cd": [
        # argocd-cm and argocd-cmd-params-cm entries: the chart writes them into ConfigMaps verbatim.
        "configs.cm.*",
        "configs.params.*",
    ],
    "gpu-operator": [
        # Configuration name -> device plugin config file: the chart writes `data` into its ConfigMap
        # (gpu-operator v26.7.0 templates/plugin_config.yaml, `data: {{ toYaml ...config.data }}`).
        "devicePlugin.config.data.*",
    ],
    "falco": [
        # File name -> Falco rules text.
        "customRules.*",
    ],
    "aws-load-balancer-controller": [
        # aws-load-balancer-controller 3.5.0 templates: serviceaccount.yaml renders the annotations map
        # with toYaml, deployment.yaml the security contexts with toYaml and `defaultTags` /
        # `controllerConfig.featureGates` as key=value lists (convertMapToCsv).
        "serviceAccount.annotations.*",
        "podSecurityContext.*",
        "securityContext.*",
        "defaultTags.*",
        "controllerConfig.featureGates.*",
    ],
    "prometheus-pushgateway": [
        # prometheus-community/helm-charts tag prometheus-pushgateway-3.8.0 templates/_helpers.tpl renders
        # `containerSecurityContext` (default {}) with toYaml into the container's securityContext.
        "containerSecurityContext.*",
    ],
    "mlflow": [
        # Bitnami PostgreSQL subchart (not in the reference; the schema allows additional keys).
        "postgresql.auth.existingSecret",
        "postgresql.primary.persistence.storageClass",
        "postgresql.primary.persistence.size",
        # bitnami/charts bitnami/postgresql values.yaml primary.networkPolicy.enabled (default true).
        "postgresql.primary.networkPolicy",
        "postgresql.primary.networkPolicy.enabled",
        # `mlflow server` flags: values.schema.json extraArgs has additionalProperties: true, and
        # templates/deployment.yaml renders each key as `--<kebab-case key>=<value>` (mlflow-1.11.5).
        "extraArgs.*",
    ],
}


def _allowed(chart: str, path: str) -> bool:
    return any(fnmatchcase(path, p) for p in [*FREE_FORM["*"], *FREE_FORM.get(chart, [])])


def _schema_child(schema: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    if not isinstance(schema, dict):
        return None
    child = (schema.get("properties") or {}).get(key)
    return child if isinstance(child, dict) else None


def unknown_keys(
    chart: str, values: Any, defaults: Any, schema: dict[str, Any] | None, path: str = ""
) -> list[str]:
    """Key paths in `values` found neither in `defaults` nor in `schema` (nor allowed as free-form)."""
    if not isinstance(values, dict):
        return []
    problems: list[str] = []
    for key, value in values.items():
        key_path = f"{path}.{key}" if path else str(key)
        if _allowed(chart, key_path):
            continue
        in_defaults = isinstance(defaults, dict) and key in defaults
        child_schema = _schema_child(schema, key)
        if not in_defaults and child_schema is None:
            problems.append(key_path)
            continue
        child_defaults = defaults.get(key) if in_defaults else None
        problems += unknown_keys(chart, value, child_defaults, child_schema, key_path)
    return problems
