"""The inference gateway: Gateway API CRDs, Envoy Gateway, the GatewayClass and the one Gateway.

docs/adr/0005-inference-gateway.md says why Envoy Gateway, why an NLB and why each app owns its
HTTPRoute. Order, each step waiting for the one before:
CRDs (gateway-crds-helm, rendered) -> Envoy Gateway controller (gateway-helm release, CRDs off)
-> EnvoyProxy + GatewayClass `mlplat-envoy` -> Gateway `mlplat-gateway/inference`, which also waits
for its certificate. All of it waits for the AWS Load Balancer Controller, and destroy removes all of
it before the controller: the proxy Service Envoy Gateway creates for the Gateway asks for an NLB,
the controller's webhook admits LoadBalancer Services, and its finalizer keeps that Service until the
controller has deleted the NLB (`InferenceGateway`).

Facts from envoyproxy/gateway v1.9.0 this module relies on:
- proxies run in the controller's namespace unless the deploy type is GatewayNamespace
  (internal/infrastructure/kubernetes/proxy_infra.go GetResourceNamespace), their Service and
  Deployment owned by the GatewayClass (proxy/resource_provider.go ownerReferences, translator.go
  OwnerReference), labelled
  app.kubernetes.io/name=envoy, app.kubernetes.io/component=proxy,
  app.kubernetes.io/managed-by=envoy-gateway (proxy/resource.go EnvoyAppLabel) and
  gateway.envoyproxy.io/owning-gateway-name/-namespace (gatewayapi/translator.go buildIR);
- a listener port below 1024 is served on container port port+10000 (gatewayapi/listener.go,
  translator.go wellKnownPortShift), so HTTPS 443 reaches the pods on 10443;
- proxies serve Prometheus stats on container port `metrics` 19001 at /stats/prometheus
  (xds/bootstrap/bootstrap.go EnvoyStatsPort, bootstrap.yaml.tpl prometheus_stats);
- the controller serves xDS on 18000, metrics on 19001 and its topology-injector webhook on 9443
  (charts/gateway-helm values.tmpl.yaml deployment.ports, templates/envoy-gateway-service.yaml);
- with standard-channel CRDs only, the controller looks each optional kind up and skips the watch of
  a missing one instead of failing (internal/provider/kubernetes/controller.go `crdExists`, L2264-2276).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.config import GatewayConfig
from infra.services.cert_manager import InternalCa
from infra.services.chart import ChartService, ServiceArgs, namespace

NAMESPACE = "envoy-gateway-system"  # the controller and, by default, its proxies
GATEWAY_NAMESPACE = "mlplat-gateway"
GATEWAY_CLASS = "mlplat-envoy"
GATEWAY_NAME = "inference"
LISTENER = "https"
HTTPS_PORT = 443
# Namespaces whose HTTPRoutes the Gateway admits carry this label (each app's namespace).
ACCESS_LABEL = {"mlplat/gateway-access": "true"}
ENVOY_PROXY = "mlplat-nlb"
TLS_SECRET = "inference-tls"  # pragma: allowlist secret
CONTROLLER_NAME = (
    "gateway.envoyproxy.io/gatewayclass-controller"  # values.tmpl.yaml config.envoyGateway.gateway
)

# Pods and ports (module docstring gives the sources).
PROXY_LABELS = {
    "app.kubernetes.io/name": "envoy",
    "app.kubernetes.io/component": "proxy",
    "app.kubernetes.io/managed-by": "envoy-gateway",
}
CONTROLLER_LABELS = {"control-plane": "envoy-gateway"}
PROXY_HTTPS_PORT = HTTPS_PORT + 10000
METRICS_PORT = 19001  # proxies' stats and the controller's metrics alike
WEBHOOK_PORT = 9443

# The Service annotations the AWS Load Balancer Controller reads (kubernetes-sigs/aws-load-balancer-controller
# v3.5.0 docs/guide/service/annotations.md, pkg/annotations/constants.go). With `loadBalancerClass`
# set it defaults to `instance` targets, so the target type is named; `ip` targets are the pods.
NLB_CLASS = "service.k8s.aws/nlb"  # pkg/config/service_config.go defaultLoadBalancerClass
SCHEME_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-scheme"
TARGET_TYPE_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
# Cluster stats per backend: the metrics engineer's rules read them (cluster per backend: each app's
# backendRefs carry their own filters, see the ADR).
PROXY_STATS_PATH = "/stats/prometheus"


@dataclass(frozen=True, kw_only=True)
class InferenceGatewayArgs(ServiceArgs):
    settings: GatewayConfig  # gateway: the domain and who reaches the NLB
    # apps.min_replicas: as many proxies as a model has replicas at least, so the gateway is no weaker
    # than what it fronts.
    proxy_replicas: int
    # The internal CA (cert_manager.py): the Gateway's certificate comes from it.
    ca: InternalCa
    # The AWS Load Balancer Controller's release: the proxy Service's NLB, its admission webhook and
    # its finalizer; the whole gateway waits for it (`InferenceGateway`).
    load_balancer_controller: pulumi.Resource


def envoy_proxy_spec(gateway: GatewayConfig, replicas: int) -> dict[str, Any]:
    """EnvoyProxy: the proxies' Service is an NLB of the configured scheme, targeting the pods."""
    service: dict[str, Any] = {
        "type": "LoadBalancer",
        "loadBalancerClass": NLB_CLASS,
        "annotations": {SCHEME_ANNOTATION: gateway.scheme, TARGET_TYPE_ANNOTATION: "ip"},
    }
    if gateway.source_ranges:
        service["loadBalancerSourceRanges"] = [str(cidr) for cidr in gateway.source_ranges]
    return {
        "provider": {
            "type": "Kubernetes",
            "kubernetes": {"envoyService": service, "envoyDeployment": {"replicas": replicas}},
        }
    }


def gateway_spec() -> dict[str, Any]:
    """One HTTPS listener; HTTPRoutes only from namespaces labelled ACCESS_LABEL."""
    return {
        "gatewayClassName": GATEWAY_CLASS,
        "listeners": [
            {
                "name": LISTENER,
                "protocol": "HTTPS",
                "port": HTTPS_PORT,
                "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": TLS_SECRET}]},
                "allowedRoutes": {
                    "namespaces": {"from": "Selector", "selector": {"matchLabels": ACCESS_LABEL}},
                    "kinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
                },
            }
        ],
    }


def crd_values() -> dict[str, Any]:
    """gateway-crds-helm v1.9.0 values: Gateway API standard channel and Envoy Gateway's CRDs."""
    return {
        "crds": {"gatewayAPI": {"enabled": True, "channel": "standard"}, "envoyGateway": {"enabled": True}}
    }


def pod_monitor(
    owner: pulumi.Resource,
    resource_name: str,
    name: str,
    pods: dict[str, str],
    path: str,
    after: list[pulumi.Resource],
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version="monitoring.coreos.com/v1",
        kind="PodMonitor",
        metadata={"name": name, "namespace": NAMESPACE},
        spec={"selector": {"matchLabels": pods}, "podMetricsEndpoints": [{"port": "metrics", "path": path}]},
        opts=pulumi.ResourceOptions(parent=owner, depends_on=after),
    )


class InferenceGateway(ChartService):
    """Envoy Gateway and the platform's Gateway (module docstring: order and facts).

    The component, and so every child of it, depends on the AWS Load Balancer Controller's release, so
    that destroy uninstalls the controller only once the `envoy-gateway-system` namespace is gone. The
    proxy Service there carries the controller's finalizer `service.k8s.aws/resources`, which only the
    controller removes, after deleting the NLB (kubernetes-sigs/aws-load-balancer-controller
    controllers/service/service_controller.go `cleanupLoadBalancerResources`). Pulumi waits until a
    deleted object is gone (pulumi/pulumi-kubernetes provider/pkg/await/await.go `Deletion`), and the
    namespace is gone only once all it holds is (kubernetes/kubernetes pkg/controller/namespace/
    deletion/namespaced_resources_deleter.go `Delete`: content remaining, not finalized). The
    engine deletes the controller only after everything depending on it, a component's children with
    it (pulumi/pulumi pkg/resource/deploy/step_generator.go ScheduleDeletes, pkg/resource/graph/
    dependency_graph.go DependenciesOf). Without this the controller goes in the same wave as the
    GatewayClass: the Service stays Terminating, the NLB is orphaned and its interfaces keep the
    VPC from being deleted.
    """

    def __init__(self, name: str, args: InferenceGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "mlplat:services:InferenceGateway",
            name,
            NAMESPACE,
            args.cluster,
            [args.monitoring_crds],
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[args.load_balancer_controller])
            ),
        )
        pin = versions.CHARTS["gateway-crds"]
        # Rendered and applied resource by resource (Helm's `template`, not `install`): the CRDs are
        # templates too large for a Helm release Secret (upstream install-helm.md). Server-side apply
        # (the provider's setting) handles CRDs of this size. Deleting a CRD deletes every object of its
        # kind (every app's HTTPRoute, the Gateway), so it is protected wherever state is.
        self.crds = k8s.helm.v4.Chart(
            f"{name}-crds",
            chart=f"{pin.repo}/{pin.chart}",
            version=pin.version,
            values=crd_values(),
            opts=pulumi.ResourceOptions(parent=self, protect=args.cluster.protect_stateful),
        )
        self.release = self.install(
            "release",
            "envoy-gateway",
            "envoy-gateway",
            depends_on=[self.namespace, self.crds, args.monitoring_crds],
        )
        controller = [self.release]
        self.envoy_proxy = k8s.apiextensions.CustomResource(
            f"{name}-envoy-proxy",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="EnvoyProxy",
            metadata={"name": ENVOY_PROXY, "namespace": NAMESPACE},
            spec=envoy_proxy_spec(args.settings, args.proxy_replicas),
            opts=pulumi.ResourceOptions(parent=self, depends_on=controller),
        )
        self.gateway_class = k8s.apiextensions.CustomResource(
            f"{name}-class",
            api_version="gateway.networking.k8s.io/v1",
            kind="GatewayClass",
            metadata={"name": GATEWAY_CLASS},
            spec={
                "controllerName": CONTROLLER_NAME,
                "parametersRef": {
                    "group": "gateway.envoyproxy.io",
                    "kind": "EnvoyProxy",
                    "name": ENVOY_PROXY,
                    "namespace": NAMESPACE,
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*controller, self.envoy_proxy]),
        )
        self.gateway_namespace = namespace(self, f"{name}-gateway-ns", GATEWAY_NAMESPACE)
        self.certificate = args.ca.certificate(
            self,
            f"{name}-tls",
            TLS_SECRET,
            self.gateway_namespace,
            {"dnsNames": [f"*.{args.settings.domain}"]},
            usages=["digital signature", "server auth"],
        )
        self.gateway = k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version="gateway.networking.k8s.io/v1",
            kind="Gateway",
            # `pulumi up` waits until Envoy Gateway reports the Gateway programmed: proxies running
            # behind a Service with an address, i.e. the NLB exists.
            metadata={
                "name": GATEWAY_NAME,
                "namespace": GATEWAY_NAMESPACE,
                "annotations": {"pulumi.com/waitFor": "condition=Programmed"},
            },
            spec=gateway_spec(),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.gateway_class, self.certificate, args.load_balancer_controller],
            ),
        )
        after = [*controller, args.monitoring_crds]
        self.monitors = [
            pod_monitor(
                self, f"{name}-proxy-metrics", "envoy-proxies", PROXY_LABELS, PROXY_STATS_PATH, after
            ),
            pod_monitor(
                self, f"{name}-controller-metrics", "envoy-gateway", CONTROLLER_LABELS, "/metrics", after
            ),
        ]
        self.register_outputs(
            {"release": self.release.status, "gateway": f"{GATEWAY_NAMESPACE}/{GATEWAY_NAME}"}
        )
