"""The inference gateway as the plan declares it: what starts before what, who owns the Gateway API
CRDs, how the NLB is asked for, and what the Gateway admits. Facts about Envoy Gateway v1.9.0 and
the AWS Load Balancer Controller v3.5.0 are cited in infra/services/gateway.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from infra.config import load_environment
from tests.support.crds import RENDERED_CHART, chart_switch, installed_kinds
from tests.support.harness import REFERENCE, Plan, Registered, build, transitive_dependencies

GATEWAY_API = "gateway.networking.k8s.io"
GATEWAY = f"kubernetes:{GATEWAY_API}/v1:Gateway"
GATEWAY_CLASS = f"kubernetes:{GATEWAY_API}/v1:GatewayClass"
ENVOY_PROXY = "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
CLUSTER_ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
# The Service annotations of kubernetes-sigs/aws-load-balancer-controller v3.5.0
# docs/guide/service/annotations.md, and its default load balancer class (pkg/config/service_config.go).
SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
TARGET_TYPE = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
NLB_CLASS = "service.k8s.aws/nlb"


def _waits(plan: Plan, dependent: Registered, dependency: Registered) -> None:
    assert dependency.urn in transitive_dependencies(plan, dependent), (
        f"{dependent.urn} does not wait for {dependency.urn}"
    )


def test_the_gateway_starts_after_crds_controller_class_certificate_and_load_balancer_controller(
    plan: Plan,
) -> None:
    releases = plan.releases()
    crds = plan.one(RENDERED_CHART)
    controller, lbc = releases["envoy-gateway"], releases["aws-load-balancer-controller"]
    gateway_class, gateway = plan.one(GATEWAY_CLASS), plan.one(GATEWAY)
    _waits(plan, controller, crds)  # the controller watches kinds the CRDs define
    _waits(plan, plan.one(ENVOY_PROXY), controller)
    _waits(plan, gateway_class, controller)
    _waits(plan, gateway_class, plan.one(ENVOY_PROXY))  # its parametersRef
    _waits(plan, gateway, gateway_class)
    # The proxy Service asks for an NLB, and the controller's webhook admits LoadBalancer Services.
    _waits(plan, gateway, lbc)
    certificate = next(
        r for r in plan.of_type(CERTIFICATE) if r.inputs["metadata"]["namespace"] == "mlplat-gateway"
    )
    _waits(plan, gateway, certificate)
    _waits(plan, certificate, plan.one(CLUSTER_ISSUER))
    # `pulumi up` fails when the Gateway never becomes Programmed instead of reporting success.
    assert gateway.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Programmed", (
        gateway.urn
    )


def test_gateway_api_crds_have_one_owner_on_the_standard_channel(plan: Plan) -> None:
    """gateway-helm v1.9.0 installs the EXPERIMENTAL channel with `crds.enabled` (its default); the
    plan installs the standard channel once, from the rendered CRD chart of the same release."""
    controller = plan.releases()["envoy-gateway"]
    defaults = yaml.safe_load((REFERENCE / "charts" / "gateway-helm" / "values.tmpl.yaml").read_text())
    assert defaults["crds"]["enabled"] is True  # what leaving it alone would do
    assert chart_switch("envoy-gateway", controller, "crds.enabled") is False, (
        f"{controller.urn}: second CRD owner"
    )
    crds = plan.one(RENDERED_CHART)
    assert crds.inputs["values"]["crds"]["gatewayAPI"] == {"enabled": True, "channel": "standard"}, crds.urn
    assert crds.inputs["version"] == controller.inputs["version"], f"{crds.urn}: CRDs of another release"
    # Deleting the CRDs deletes every HTTPRoute and the Gateway with them.
    assert crds.protect is load_environment(plan.env).protect_stateful, crds.urn
    owners = {r.urn for key, r in installed_kinds(plan).items() if key[0] == GATEWAY_API}
    assert owners == {crds.urn}, owners
    bundle = {
        yaml.safe_load(p.read_text())["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"]
        for p in (REFERENCE / "crds" / "gateway-api").glob("*.yaml")
    }
    assert bundle == {"v1.6.1"}, bundle


def _envoy_service(plan: Plan) -> dict[str, Any]:
    proxy = plan.one(ENVOY_PROXY)
    service: dict[str, Any] = proxy.inputs["spec"]["provider"]["kubernetes"]["envoyService"]
    return service


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_nlb_is_internal(env: str) -> None:
    service = _envoy_service(build(env))
    assert service["annotations"][SCHEME] == "internal", env
    assert "loadBalancerSourceRanges" not in service, env


def test_the_proxy_service_is_an_nlb_of_the_load_balancer_controller_targeting_pods(plan: Plan) -> None:
    service = _envoy_service(plan)
    assert service["type"] == "LoadBalancer" and service["loadBalancerClass"] == NLB_CLASS, plan.env
    # With loadBalancerClass set the controller defaults to instance targets (annotations.md).
    assert service["annotations"][TARGET_TYPE] == "ip", plan.env
    assert service["annotations"][SCHEME] == load_environment(plan.env).gateway.scheme
    gateway_class = plan.one(GATEWAY_CLASS)
    ref = gateway_class.inputs["spec"]["parametersRef"]
    proxy = plan.one(ENVOY_PROXY)
    assert (ref["kind"], ref["name"], ref["namespace"]) == (
        "EnvoyProxy",
        proxy.inputs["metadata"]["name"],
        proxy.inputs["metadata"]["namespace"],
    ), gateway_class.urn
    # Envoy Gateway's controller name (gateway-helm values.tmpl.yaml config.envoyGateway.gateway).
    assert gateway_class.inputs["spec"]["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"


def test_the_gateway_serves_https_with_a_ca_certificate_to_labelled_namespaces_only(plan: Plan) -> None:
    gateway = plan.one(GATEWAY)
    assert (gateway.inputs["metadata"]["namespace"], gateway.inputs["metadata"]["name"]) == (
        "mlplat-gateway",
        "inference",
    )
    assert gateway.inputs["spec"]["gatewayClassName"] == plan.one(GATEWAY_CLASS).inputs["metadata"]["name"]
    (listener,) = gateway.inputs["spec"]["listeners"]
    assert (listener["name"], listener["protocol"], listener["port"]) == ("https", "HTTPS", 443), gateway.urn
    assert listener["allowedRoutes"]["namespaces"] == {
        "from": "Selector",
        "selector": {"matchLabels": {"mlplat/gateway-access": "true"}},
    }, gateway.urn
    (ref,) = listener["tls"]["certificateRefs"]
    certificate = next(
        r
        for r in plan.of_type(CERTIFICATE)
        if r.inputs["metadata"]["namespace"] == gateway.inputs["metadata"]["namespace"]
        and r.inputs["spec"]["secretName"] == ref["name"]
    )
    issuer = plan.one(CLUSTER_ISSUER)
    assert certificate.inputs["spec"]["issuerRef"]["name"] == issuer.inputs["metadata"]["name"], (
        certificate.urn
    )
    domain = load_environment(plan.env).gateway.domain
    assert certificate.inputs["spec"]["dnsNames"] == [f"*.{domain}"], certificate.urn


def test_prometheus_scrapes_the_envoy_proxies_stats(plan: Plan) -> None:
    """Per-version request metrics are Envoy's cluster stats, served by the proxies on port `metrics`
    (19001) at /stats/prometheus (envoyproxy/gateway v1.9.0 internal/xds/bootstrap)."""
    proxy_labels = {
        "app.kubernetes.io/name": "envoy",
        "app.kubernetes.io/component": "proxy",
    }
    monitors = [
        r
        for r in plan.of_type(POD_MONITOR)
        if r.inputs["metadata"]["namespace"] == "envoy-gateway-system"
        and proxy_labels.items() <= r.inputs["spec"]["selector"]["matchLabels"].items()
    ]
    assert len(monitors) == 1, plan.env
    (endpoint,) = monitors[0].inputs["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/stats/prometheus"), monitors[0].urn
    _waits(plan, monitors[0], plan.releases()["kube-prometheus-stack"])


def test_the_load_balancer_controller_knows_its_cluster_vpc_role_and_environment(plan: Plan) -> None:
    from tests.support.harness import LBC_ROLE_ARN, VPC_ID

    lbc = plan.releases()["aws-load-balancer-controller"]
    values = lbc.inputs["values"]
    assert values["clusterName"] == f"mlplat-{plan.env}" and values["vpcId"] == VPC_ID, lbc.urn
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == LBC_ROLE_ARN, lbc.urn
    assert lbc.inputs["namespace"] == "aws-load-balancer-controller", lbc.urn
    # IRSA trusts exactly this service account (infra/aws/load_balancer_controller.py).
    assert values["serviceAccount"]["name"] == "aws-load-balancer-controller", lbc.urn
    assert values["defaultTags"] == {"mlplat/environment": plan.env}, lbc.urn
    # ALB paths closed: what lets the IAM role leave out the ALB grants.
    assert values["createIngressClassResource"] is False and values["disableIngressClassAnnotation"] is True
    assert values["controllerConfig"]["featureGates"] == {"ALBGatewayAPI": False, "NLBGatewayAPI": False}
    assert not any(values[k] for k in ("enableShield", "enableWaf", "enableWafv2")), lbc.urn


def test_services_of_other_releases_are_not_held_hostage_by_the_load_balancer_controller_webhook(
    plan: Plan,
) -> None:
    # aws-load-balancer-controller v3.5.0 values.yaml: `enableServiceMutatorWebhook: true` with
    # `failurePolicy: Fail` on every Service CREATE. Installed beside KServe, Vault, MinIO and the rest,
    # any Service created before the controller is Ready (and every KServe predictor Service while it
    # is down) would be refused. The gateway's Service names its class itself (loadBalancerClass), so
    # the mutator has nothing to do here.
    defaults = yaml.safe_load(
        (REFERENCE / "charts" / "aws-load-balancer-controller" / "values.yaml").read_text()
    )
    assert defaults["enableServiceMutatorWebhook"] is True  # upstream's default, which we must override
    lbc = plan.releases()["aws-load-balancer-controller"]
    assert lbc.inputs["values"]["enableServiceMutatorWebhook"] is False, lbc.urn
