"""No release starts in a mode whose prerequisites the plan does not install.

A chart switch that makes a controller need a CRD (KServe's Gateway API mode, a ServiceMonitor)
must be matched by a release in the same plan that installs that CRD; likewise every custom
resource the program declares. Found on a real `pulumi up`: KServe with `enableGatewayApi: true`
and no Gateway API CRDs exits at start, and the atomic release rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tests.support.crds import RENDERED_CHART, chart_switch, installed_kinds, is_custom_group, value_at
from tests.support.harness import RELEASES, Plan, transitive_dependencies

# Chart switches that render a prometheus-operator object, by the key charts use for them.
MONITORING_SWITCHES = {
    "servicemonitor": "ServiceMonitor",
    "podmonitor": "PodMonitor",
    "prometheusrule": "PrometheusRule",
    "prometheusrules": "PrometheusRule",
}


def _monitoring_enabled(kind: str) -> Callable[[dict[str, Any]], list[str]]:
    """Paths of every switch that is on and makes the chart render a `kind` (e.g. a ServiceMonitor)."""

    def walk(values: Any, path: str = "") -> Iterator[str]:
        if isinstance(values, dict):
            for key, value in values.items():
                here = f"{path}.{key}" if path else str(key)
                on = isinstance(value, dict) and value.get("enabled") is True
                if MONITORING_SWITCHES.get(str(key).lower()) == kind and on:
                    yield here
                elif kind == "ServiceMonitor" and key == "prometheusOperator" and value is True:
                    yield here  # vault: global.serverTelemetry.prometheusOperator
                else:
                    yield from walk(value, here)

    return lambda values: list(walk(values))


# (chart key, what the values switch on, CRD (group, kind) it needs, where upstream says so).
Rule = tuple[str, Callable[[dict[str, Any]], list[str]], tuple[str, str], str]
RULES: list[Rule] = [
    (
        "kserve",
        lambda v: (
            ["enableGatewayApi"]
            if value_at(v, "kserve.controller.gateway.ingressGateway.enableGatewayApi")
            else []
        ),
        ("gateway.networking.k8s.io", "HTTPRoute"),
        # SetupWithManager returns an error without the CRD and the manager exits.
        "kserve/kserve v0.20.0 pkg/controller/v1beta1/inferenceservice/controller.go L707-717, "
        "cmd/manager/main.go L186-188",
    ),
    (
        "kserve",
        lambda v: (
            ["createGateway"] if value_at(v, "kserve.controller.gateway.ingressGateway.createGateway") else []
        ),
        ("gateway.networking.k8s.io", "Gateway"),
        "kserve/kserve v0.20.0 charts/kserve-resources/files/kserve/ingress_gateway-patch.yaml",
    ),
    (
        "kserve",
        lambda v: (
            ["Ingress creation"]
            if not value_at(v, "kserve.controller.gateway.ingressGateway.enableGatewayApi")
            and value_at(v, "kserve.controller.gateway.disableIngressCreation") is not True
            else []
        ),
        # An Ingress of class `alb` is served only by the AWS Load Balancer Controller; its CRDs
        # stand for "the controller is installed".
        ("elbv2.k8s.aws", "IngressClassParams"),
        "kserve/kserve v0.20.0 pkg/controller/v1beta1/inferenceservice/reconcilers/ingress/"
        "kube_ingress_reconciler.go L106",
    ),
    (
        "kserve",
        lambda v: (
            [f"deploymentMode {value_at(v, 'kserve.controller.deploymentMode')}"]
            if value_at(v, "kserve.controller.deploymentMode") in ("Knative", "Serverless")
            else []
        ),
        # Every InferenceService fails with a terminal error without Knative Serving.
        ("serving.knative.dev", "Service"),
        "kserve/kserve v0.20.0 pkg/controller/v1beta1/inferenceservice/controller.go L239-255",
    ),
    *(
        (
            chart,
            _monitoring_enabled(kind),
            ("monitoring.coreos.com", kind),
            f"the chart renders a monitoring.coreos.com/v1 {kind}; Helm fails on an unknown kind",
        )
        for chart in sorted(set(RELEASES.values()))
        for kind in sorted(set(MONITORING_SWITCHES.values()))
    ),
]


def test_no_release_starts_in_a_mode_whose_crds_the_plan_does_not_install(plan: Plan) -> None:
    installed = installed_kinds(plan)
    problems = []
    for name, release in plan.releases().items():
        values = release.inputs.get("values") or {}
        for chart, enabled, needed, source in RULES:
            if RELEASES.get(name) != chart:
                continue
            for switch in enabled(values):
                if needed not in installed:
                    problems.append(f"{release.urn}: {switch} needs {needed[1]}.{needed[0]} ({source})")
    assert not problems, "\n".join(problems)


def test_every_custom_resource_has_its_crd_installed_by_the_plan(plan: Plan) -> None:
    installed = installed_kinds(plan)
    customs = [
        r
        for r in plan.resources
        if r.type.startswith("kubernetes:")
        and "helm.sh" not in r.type
        and is_custom_group(r.type.split(":")[1].split("/")[0])
    ]
    assert customs, plan.env
    for r in customs:
        group = str(r.inputs["apiVersion"]).split("/")[0]
        key = (group, r.inputs["kind"])
        assert key in installed, f"{r.urn}: no release in the plan installs the {key} CRD"
        assert installed[key].urn in transitive_dependencies(plan, r), (
            f"{r.urn} does not wait for {installed[key].urn}"
        )


def test_the_guard_catches_gateway_api_mode_without_its_crds(plan: Plan) -> None:
    kserve_rules = [rule for rule in RULES if rule[0] == "kserve"]
    values = {"kserve": {"controller": {"gateway": {"ingressGateway": {"enableGatewayApi": True}}}}}
    hits = [needed for _, enabled, needed, _ in kserve_rules if enabled(values)]
    assert ("gateway.networking.k8s.io", "HTTPRoute") in hits
    without_crd_chart = Plan(plan.env, [r for r in plan.resources if r.type != RENDERED_CHART])
    assert ("gateway.networking.k8s.io", "HTTPRoute") not in installed_kinds(without_crd_chart)


def test_kserve_creates_no_route_and_references_no_gateway_nobody_creates(plan: Plan) -> None:
    """KServe's ingress config named `kserve/kserve-ingress-gateway` of class `alb`, which nothing
    created; each app's HTTPRoute is the route, so KServe must not add its own next to it."""
    kserve = plan.releases()["kserve"]
    gateways = {
        f"{r.inputs['metadata']['namespace']}/{r.inputs['metadata']['name']}"
        for r in plan.of_type("kubernetes:gateway.networking.k8s.io/v1:Gateway")
    }
    named = chart_switch("kserve", kserve, "kserve.controller.gateway.ingressGateway.kserveGateway")
    assert named in gateways, f"{kserve.urn}: kserveGateway {named!r} is not a Gateway of the plan {gateways}"
    assert (
        chart_switch("kserve", kserve, "kserve.controller.gateway.ingressGateway.enableGatewayApi") is False
    )
    assert chart_switch("kserve", kserve, "kserve.controller.gateway.disableIngressCreation") is True, (
        kserve.urn
    )
    assert chart_switch("kserve", kserve, "kserve.controller.gateway.ingressGateway.createGateway") is False


def test_the_guard_sees_every_prometheus_operator_switch() -> None:
    values = {
        "serverTelemetry": {"prometheusRules": {"enabled": True}, "serviceMonitor": {"enabled": False}},
        "metrics": {"serviceMonitor": {"enabled": True}},
        "global": {"serverTelemetry": {"prometheusOperator": True}},
    }
    assert _monitoring_enabled("PrometheusRule")(values) == ["serverTelemetry.prometheusRules"]
    assert _monitoring_enabled("ServiceMonitor")(values) == [
        "metrics.serviceMonitor",
        "global.serverTelemetry.prometheusOperator",
    ]
    assert _monitoring_enabled("PodMonitor")(values) == []
