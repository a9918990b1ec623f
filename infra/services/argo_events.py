"""Argo Events: the drift and quality alerts start the retraining pipeline of the app they name.

Alertmanager (platform/alertmanager/config.yaml, receiver `retraining`) posts the alert group to
the webhook EventSource `alertmanager`; the Sensor `retraining` creates a Workflow from the app's
WorkflowTemplate in namespace `argo-workflows` with trigger=drift and triggered-by=<alert name and
fingerprint> (platform/argo-events/resources/). The controller is namespaced (`--namespaced`): it
watches this namespace only, and the Sensor's ServiceAccount may create Workflows in
`argo-workflows` and do nothing else there; the controller's Workflow restrictions
(platform/argo-workflows/values.yaml) let such a Workflow run a WorkflowTemplate only.

The webhook takes a bearer token (Secret `alertmanager-webhook`, generated, owned by Vault at
`platform/argo-events/alertmanager-webhook`); Alertmanager reads the same token from its receivers
Secret (`retraining-webhook-token`), which an operator copies into Vault (docs/runbooks/vault.md).
Until then the EventSource refuses Alertmanager's posts, which the NetworkPolicies already limit to
Alertmanager's pods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.services import argo_workflows
from infra.services.chart import ChartService, ServiceArgs, custom_resources, load_documents

NAMESPACE = "argo-events"
RELEASE = "argo-events"
WEBHOOK_SECRET = "alertmanager-webhook"  # pragma: allowlist secret (a Secret name)
WEBHOOK_VAULT_PATH = "platform/argo-events/alertmanager-webhook"
SENSOR_ACCOUNT = "retraining-sensor"
# platform/argo-events/resources/eventsource.yaml: the EventSource's name, port and endpoint; the
# controller labels its pods `eventsource-name: <name>` and names the Service `<name>-eventsource-svc`
# (argoproj/argo-events v1.9.11 pkg/apis/events/v1alpha1/const.go LabelEventSourceName,
# pkg/reconciler/eventsource/resource.go).
EVENT_SOURCE = "alertmanager"
WEBHOOK_PORT = 12000
WEBHOOK_URL = f"http://{EVENT_SOURCE}-eventsource-svc.{NAMESPACE}.svc.cluster.local:{WEBHOOK_PORT}/retraining"
EVENT_SOURCE_PODS = {"eventsource-name": EVENT_SOURCE}
# Sensors' pods: `sensor-name: <name>` (const.go LabelSensorName).
SENSOR_PODS = {"sensor-name": "retraining"}
# argo-helm argo-events-2.4.22 templates/argo-events-controller/deployment.yaml: metrics on 7777.
METRICS_PORT = 7777
# JetStream's client and cluster ports between the bus, the EventSource and the Sensor stay inside
# the namespace (allowed as same-namespace traffic).


# A Go regular expression no string matches (RE2: a class of no character): the Sensor of a stack
# with no pipeline admits no alert.
NOTHING = r"[^\s\S]"


@dataclass(frozen=True, kw_only=True)
class ArgoEventsArgs(ServiceArgs):
    # Argo Workflows' release: the Workflow CRD the Sensor creates objects of, in the namespace where
    # the Sensor's Role is.
    workflows: pulumi.Resource
    # The apps with a retraining pipeline (argo_workflows.training_pipelines): the only values of an
    # alert's `model` label that may start a run.
    apps: tuple[str, ...]


def admitting_only(
    documents: list[tuple[Path, dict[str, Any]]], apps: tuple[str, ...]
) -> list[tuple[Path, dict[str, Any]]]:
    """The documents with the retraining Sensor's alert dependency admitting only alerts whose
    `commonLabels.model` is exactly one of `apps`.

    The model label becomes part of the Workflow's name and of the WorkflowTemplate it runs
    (platform/argo-events/resources/sensor.yaml); a forged or malformed alert (no model, another
    app's name with a suffix, a name with characters no Kubernetes name takes) must start nothing
    rather than fail at create or reach a template nobody meant it to. Data filters on strings are
    unanchored regular expressions (argoproj/argo-events v1.9.10 pkg/sensors/dependencies/filter.go),
    so the expression is anchored and every name escaped.
    """
    pattern = "^(" + "|".join(re.escape(app) for app in sorted(apps)) + ")$" if apps else NOTHING
    model = {"path": "body.commonLabels.model", "type": "string", "value": [pattern]}
    found = []
    for path, doc in documents:
        if doc.get("kind") == "Sensor":
            dependencies = [
                {**dep, "filters": {**filters, "data": [*(filters.get("data") or []), model]}}
                if dep.get("eventSourceName") == EVENT_SOURCE
                else dep
                for dep in doc["spec"]["dependencies"]
                for filters in [dep.get("filters") or {}]
            ]
            doc = {**doc, "spec": {**doc["spec"], "dependencies": dependencies}}
        found.append((path, doc))
    return found


class ArgoEvents(ChartService):
    """The Argo Events controller, the JetStream bus, the Alertmanager webhook and the retraining Sensor."""

    def __init__(self, name: str, args: ArgoEventsArgs, opts: pulumi.ResourceOptions | None = None):
        # The Workflows its Sensor creates are Argo Workflows' kind: everything here comes after that CRD.
        crd_releases = [args.monitoring_crds, args.workflows]
        super().__init__("mlplat:services:ArgoEvents", name, NAMESPACE, args.cluster, crd_releases, opts)
        self.webhook_token = self.seed(
            "alertmanager-webhook",
            WEBHOOK_SECRET,
            WEBHOOK_VAULT_PATH,
            {"token": self.password("webhook-token")},
        )
        self.release = self.install("release", RELEASE, "argo-events")
        child = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *crd_releases])
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sensor-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SENSOR_ACCOUNT, namespace=NAMESPACE),
            opts=child,
        )
        # In the pipelines' namespace: create Workflows, nothing else (the k8s trigger's `create`).
        role = k8s.rbac.v1.Role(
            f"{name}-submit-workflows",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SENSOR_ACCOUNT, namespace=argo_workflows.NAMESPACE),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["argoproj.io"], resources=["workflows"], verbs=["create"]
                )
            ],
            opts=child,
        )
        self.sensor_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-submit-workflows-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SENSOR_ACCOUNT, namespace=argo_workflows.NAMESPACE),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=SENSOR_ACCOUNT
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=SENSOR_ACCOUNT, namespace=NAMESPACE)
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, account]),
        )
        self.triggers = custom_resources(
            self,
            f"{name}-retraining",
            admitting_only(load_documents(["argo-events/resources/*.yaml"]), args.apps),
            NAMESPACE,
            # The PodMonitor is kube-prometheus-stack's kind: it waits for that release itself.
            [args.monitoring_crds, self.release, self.webhook_token.resource, self.sensor_binding],
        )
        self.register_outputs({"release": self.release.status, "triggers": [r.urn for r in self.triggers]})
