"""MLflow's metrics scrape: a ServiceMonitor that finds the server's port and logs in as its own user.

The chart's ServiceMonitor (mlflow-1.11.5 templates/servicemonitor.yaml) names `targetPort:
<service.name>` (or, with `useServicePort`, the Service port `service.name`), while its Deployment names
the container port `service.containerPortName` (templates/deployment.yaml): with the chart's defaults
("http" against "mlflow") prometheus-operator keeps no pod, there is no target, and the MLflow alerts
fed by the scrape never see a request.
"""

from __future__ import annotations

from typing import Any

from infra.services import mlflow
from infra.services.chart import deep_merge
from tests.support.harness import Plan, Registered, reference_chart

SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
SECRET = "kubernetes:core/v1:Secret"  # pragma: allowlist secret
VAULT_SYNC = "kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret"


def _release_values(plan: Plan) -> dict[str, Any]:
    """What the chart renders with: its defaults under the release's values."""
    defaults, _ = reference_chart("mlflow")
    return deep_merge(defaults, plan.releases()["mlflow"].inputs["values"])


def _monitors(plan: Plan) -> list[Registered]:
    return [r for r in plan.of_type(SERVICE_MONITOR) if r.inputs["metadata"]["namespace"] == mlflow.NAMESPACE]


def test_every_mlflow_service_monitor_names_a_port_the_server_declares(plan: Plan) -> None:
    values = _release_values(plan)
    container_port, service_port = values["service"]["containerPortName"], values["service"]["name"]
    # Each endpoint as prometheus-operator matches it: a Service port name (which the chart's Service
    # maps to the container port), or a container port name.
    endpoints: list[tuple[str, dict[str, Any]]] = [
        (f"{r.urn} endpoint {i}", endpoint)
        for r in _monitors(plan)
        for i, endpoint in enumerate(r.inputs["spec"]["endpoints"])
    ]
    monitor = values["serviceMonitor"]
    if monitor["enabled"]:
        key = "port" if monitor["useServicePort"] else "targetPort"
        endpoints.append(
            ("the chart's ServiceMonitor", {key: service_port, "path": monitor["telemetryPath"]})
        )
    assert endpoints, f"{plan.env}: nothing scrapes MLflow; MlflowHighErrorRate cannot fire"
    for where, endpoint in endpoints:
        if "port" in endpoint:
            assert endpoint["port"] == service_port, f"{where}: no Service port {endpoint['port']!r}"
        else:
            assert endpoint["targetPort"] == container_port, (
                f"{where}: targetPort {endpoint['targetPort']!r}, but the server's container port is "
                f"named {container_port!r}: prometheus-operator keeps no pod"
            )


def test_the_scraped_server_serves_metrics_where_it_may_write(plan: Plan) -> None:
    """`--expose-prometheus` comes from the chart only with its own ServiceMonitor; without the flag
    MLflow serves no /metrics. Its directory must be writable: the chart's root filesystem is read-only
    and /tmp is its emptyDir."""
    values = _release_values(plan)
    flag_dir = values["extraArgs"].get("exposePrometheus") or (
        "/mlflow/metrics" if values["serviceMonitor"]["enabled"] else None
    )
    assert flag_dir, f"{plan.env}: MLflow runs without --expose-prometheus: no /metrics to scrape"
    assert values["securityContext"]["readOnlyRootFilesystem"] is False or flag_dir.startswith("/tmp/"), (
        f"{plan.env}: --expose-prometheus={flag_dir} is on the read-only root filesystem"
    )


def test_prometheus_logs_in_to_mlflow_as_a_user_of_its_own_delivered_from_vault(plan: Plan) -> None:
    """/metrics is behind MLflow's basic auth; the scrape gets credentials through Vault + VSO, and
    never the admin's."""
    monitors = _monitors(plan)
    assert len(monitors) == 1, f"{plan.env}: MLflow ServiceMonitors {[r.urn for r in monitors]}, expected one"
    (monitor,) = monitors
    urn = monitor.urn
    (endpoint,) = monitor.inputs["spec"]["endpoints"]
    auth = endpoint["basicAuth"]
    secret_name = auth["username"]["name"]
    assert auth["password"]["name"] == secret_name, f"{urn}: user and password from two Secrets"
    assert secret_name != mlflow.ADMIN_SECRET, f"{urn}: Prometheus would scrape as MLflow's admin"
    (seeded,) = [
        s
        for s in plan.of_type(SECRET)
        if s.inputs["metadata"]["namespace"] == mlflow.NAMESPACE
        and s.inputs["metadata"]["name"] == secret_name
    ]
    data = seeded.inputs["stringData"]
    assert {auth["username"]["key"], auth["password"]["key"]} <= set(data), (
        f"{seeded.urn}: keys {sorted(data)}"
    )
    assert data[auth["username"]["key"]] != "admin", f"{seeded.urn}: the admin's name"
    assert seeded.urn in monitor.dependencies, f"{urn} does not wait for {seeded.urn}"
    syncs = [
        s
        for s in plan.of_type(VAULT_SYNC)
        if s.inputs["metadata"] == {"name": secret_name, "namespace": mlflow.NAMESPACE}
    ]
    assert len(syncs) == 1, f"{plan.env}: {secret_name} is not kept in sync from Vault"
