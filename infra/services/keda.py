"""KEDA: scales model servers on their own load (queue and in-flight requests) instead of CPU.

GPU model servers are bound by their GPU, not their CPU: a vLLM server with a full queue can sit at
low CPU while requests wait, and one loading a model burns CPU with no traffic at all (kserve#3561).
Apps scale with a KEDA ScaledObject whose Prometheus trigger reads their server's metrics from the
platform Prometheus (apps/README.md, "Scaling"); KServe's own HPA is switched off for them with
`serving.kserve.io/autoscalerClass: external`.
"""

from __future__ import annotations

import pulumi

from infra.services import monitoring
from infra.services.chart import ChartService, ServiceArgs

NAMESPACE = "keda"
# The address apps' Prometheus triggers use: kube-prometheus-stack names its Prometheus Service
# `<fullname>-prometheus` on port 9090 (88.5.3 values.yaml `prometheus.service.port`), and the
# fullname is the release name (as for ALERTMANAGER_URL). Apps' triggers name it in their YAML;
# tests/mlplat/validate/test_validate_scaling.py holds them to this value.
PROMETHEUS_URL = f"http://{monitoring.RELEASE}-prometheus.{monitoring.NAMESPACE}.svc.cluster.local:9090"
PROMETHEUS_PORT = 9090
# keda 2.20.2 values.yaml: admission webhooks listen on 9443 (`webhooks.port` "" means 9443), the
# metrics API server on 6443 (`service.portHttpsTarget`); both are called by the API server.
WEBHOOK_PORT = 9443
METRICS_API_PORT = 6443
# Each component's Prometheus metrics (`prometheus.{operator,metricServer,webhooks}.port`).
METRICS_PORT = 8080


class Keda(ChartService):
    """The KEDA operator, its metrics API server and admission webhooks, with their ServiceMonitors."""

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:Keda", name, NAMESPACE, args.cluster, [args.monitoring_crds], opts)
        # The chart's CRDs are templates (`crds.install`, default true; kedacore/charts v2.20.2
        # keda/templates/crds/*.yaml, no `helm.sh/resource-policy: keep`): uninstalling or replacing the
        # release deletes them and every app's ScaledObject. Protected wherever state is (gateway.py).
        self.release = self.install("release", "keda", "keda", protect=args.cluster.protect_stateful)
        self.register_outputs({"release": self.release.status})
