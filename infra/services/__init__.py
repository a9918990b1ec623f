"""Platform services on the cluster: one component per service, each a pinned Helm release.

Each component takes a frozen args object holding only what it uses: the cluster's facts
(`ClusterFacts`, built once by infra/program.py), its own settings (`services.<name>` of the stack
file) and, by name, the resources it really waits for. No component sees the whole stack config.
The order below is declared where each dependency is: kube-prometheus-stack first (every other
service's chart renders a ServiceMonitor or PodMonitor: `monitoring_crds`), cert-manager before
KServe (`cert_manager`), cert-manager's internal CA issuer before Vault, MinIO and the inference
gateway (`ca`: each serves TLS with a certificate of it, and `InternalCa.certificate` waits for the
issuer), Vault and the Vault Secrets Operator before the VaultStaticSecrets that deliver generated
credentials, Argo CD before its AppProject/ApplicationSet, KServe, KEDA, the Vault Secrets Operator
and the Gateway API CRDs before the ApplicationSet (`kserve`, `keda`, `vault_secrets_operator`,
`gateway_api`: the kinds model apps create), the AWS Load Balancer Controller before the inference
gateway (`load_balancer_controller`), MinIO before MLflow (`artifact_store`), MinIO
and MLflow before Argo Workflows (`artifact_store`, `registry`: its artifacts and the pipelines'
registrations), Argo Workflows before Argo Events (`workflows`: its Sensor creates Workflows), the
Pushgateway before the drift jobs (`pushgateway`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.config import GatewayConfig, GpuConfig, ServicesConfig
from infra.services import argo_events, argo_workflows
from infra.services.argo_events import ArgoEvents, ArgoEventsArgs
from infra.services.argo_workflows import ArgoWorkflows, ArgoWorkflowsArgs, training_pipelines
from infra.services.argocd import ArgoCd, ArgoCdArgs
from infra.services.cert_manager import CertManager
from infra.services.chart import ChartService, ServiceArgs
from infra.services.facts import ClusterFacts
from infra.services.falco import Falco
from infra.services.gateway import InferenceGateway, InferenceGatewayArgs
from infra.services.gpu_operator import GpuOperator, GpuOperatorArgs
from infra.services.gpu_prices import GpuPoolPrices
from infra.services.keda import Keda
from infra.services.kserve import Kserve, KserveArgs
from infra.services.load_balancer import LoadBalancerController, LoadBalancerControllerArgs, LoadBalancing
from infra.services.minio import Minio, MinioArgs
from infra.services.mlflow import Mlflow, MlflowArgs
from infra.services.model_monitoring import DriftJobs, DriftJobsArgs
from infra.services.monitoring import Monitoring, MonitoringArgs
from infra.services.network_policies import NamespaceRef, NetworkPolicies, NetworkPoliciesArgs
from infra.services.secrets import VaultAccess
from infra.services.vault import ADDRESS as VAULT_ADDRESS
from infra.services.vault import Vault, VaultArgs, VaultUnseal


@dataclass(frozen=True, kw_only=True)
class PlatformServicesArgs:
    cluster: ClusterFacts
    services: ServicesConfig  # every service's own settings (`services.<name>`)
    gpu: GpuConfig  # the GPU pools: the device plugin's time-slicing levels
    gpu_prices: GpuPoolPrices  # what one GPU of each pool costs an hour (the dashboard's idle cost)
    gateway: GatewayConfig
    model_min_replicas: int  # apps.min_replicas: the inference gateway runs at least as many proxies
    vpc_cidr: str  # network.vpc_cidr: the control plane and the nodes, for the NetworkPolicies
    vault_unseal: VaultUnseal
    load_balancing: LoadBalancing
    # Karpenter's namespace lives with the node pools; its walls must wait for it.
    karpenter_namespace: NamespaceRef


class PlatformServices(pulumi.ComponentResource):
    """Every platform service of one environment; Kubernetes resources use the provider in `opts`."""

    def __init__(self, name: str, args: PlatformServicesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:PlatformServices", name, None, opts)
        cluster, services = args.cluster, args.services
        child = pulumi.ResourceOptions(parent=self)

        self.monitoring = Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(
                cluster=cluster,
                settings=services.monitoring,
                repository=services.argocd,
                gpu_prices=args.gpu_prices,
                retraining=services.argo_events.enabled,
            ),
            child,
        )
        monitoring_crds = self.monitoring.release
        shared = ServiceArgs(cluster, monitoring_crds)
        self.cert_manager = CertManager(f"{name}-cert-manager", shared, child)
        ca = self.cert_manager.ca
        self.kserve = Kserve(
            f"{name}-kserve",
            KserveArgs(cluster, monitoring_crds, cert_manager=self.cert_manager.release, ca=ca),
            child,
        )
        self.gpu_operator = GpuOperator(
            f"{name}-gpu-operator", GpuOperatorArgs(cluster, monitoring_crds, gpu=args.gpu), child
        )
        self.vault = Vault(
            f"{name}-vault",
            VaultArgs(cluster, monitoring_crds, settings=services.vault, unseal=args.vault_unseal, ca=ca),
            child,
        )
        retention = services.inference_logs.retention_days
        self.minio = Minio(
            f"{name}-minio",
            MinioArgs(
                cluster, monitoring_crds, settings=services.minio, logs_retention_days=retention, ca=ca
            ),
            child,
        )
        self.mlflow = Mlflow(
            f"{name}-mlflow",
            MlflowArgs(cluster, monitoring_crds, settings=services.mlflow, artifact_store=self.minio, ca=ca),
            child,
        )
        self.drift_jobs = DriftJobs(
            f"{name}-drift-jobs",
            DriftJobsArgs(
                environment=cluster.environment,
                settings=services.inference_logs,
                logs_reader=self.minio.logs_reader,
                model_reader=self.minio.model_reader,
                ca=ca,
                pushgateway=self.monitoring.pushgateway,
            ),
            child,
        )
        self.falco = Falco(f"{name}-falco", shared, child)
        # Its ServiceMonitors need the monitoring CRDs; its triggers query that Prometheus.
        self.keda = Keda(f"{name}-keda", shared, child)
        self.load_balancer_controller = LoadBalancerController(
            f"{name}-load-balancer-controller",
            LoadBalancerControllerArgs(cluster, monitoring_crds, aws=args.load_balancing),
            child,
        )
        self.gateway = InferenceGateway(
            f"{name}-gateway",
            InferenceGatewayArgs(
                cluster,
                monitoring_crds,
                settings=args.gateway,
                proxy_replicas=args.model_min_replicas,
                ca=ca,
                load_balancer_controller=self.load_balancer_controller.release,
            ),
            child,
        )
        self.argocd = ArgoCd(
            f"{name}-argocd",
            ArgoCdArgs(
                cluster,
                monitoring_crds,
                settings=services.argocd,
                kserve=self.kserve.runtimes,
                keda=self.keda.release,
                vault_secrets_operator=self.vault.operator,
                gateway_api=self.gateway.crds,
            ),
            child,
        )

        # Retraining (README "Retraining"): dev only (infra/config.py RETRAINING_ENVIRONMENT).
        self.argo_workflows: ArgoWorkflows | None = None
        self.argo_events: ArgoEvents | None = None
        if services.argo_workflows.enabled:
            pipelines = tuple(training_pipelines())
            self.argo_workflows = ArgoWorkflows(
                f"{name}-argo-workflows",
                ArgoWorkflowsArgs(
                    cluster,
                    monitoring_crds,
                    settings=services.argo_workflows,
                    artifact_store=self.minio,
                    registry=self.mlflow.release,
                    ca=ca,
                    pipelines=pipelines,
                    repository=services.argocd,
                ),
                child,
            )
            if services.argo_events.enabled:
                self.argo_events = ArgoEvents(
                    f"{name}-argo-events",
                    ArgoEventsArgs(
                        cluster,
                        monitoring_crds,
                        workflows=self.argo_workflows.release,
                        apps=tuple(p.app for p in pipelines),
                    ),
                    child,
                )

        # Default-deny walls around every platform namespace, once the namespaces exist (VSO's
        # namespace is created with its release).
        with_namespace: list[ChartService | DriftJobs] = [
            self.monitoring,
            self.cert_manager,
            self.kserve,
            self.gpu_operator,
            self.vault,
            self.minio,
            self.mlflow,
            self.falco,
            self.argocd,
            self.keda,
            self.load_balancer_controller,
            self.gateway,
            self.drift_jobs,
        ]
        with_namespace += [s for s in (self.argo_workflows, self.argo_events) if s is not None]
        absent = frozenset(
            ns
            for ns, service in (
                (argo_workflows.NAMESPACE, self.argo_workflows),
                (argo_events.NAMESPACE, self.argo_events),
            )
            if service is None
        )
        self.network_policies = NetworkPolicies(
            f"{name}-network-policies",
            NetworkPoliciesArgs(
                vpc_cidr=args.vpc_cidr,
                karpenter=args.karpenter_namespace,
                namespaces_created_by=[
                    *(s.namespace for s in with_namespace),
                    self.vault.operator,
                    self.gateway.gateway_namespace,
                ],
                absent=absent,
            ),
            child,
        )

        # Vault delivery of every generated credential, once VSO's CRDs exist.
        seeds = [*self.monitoring.seeds, *self.vault.seeds, *self.minio.seeds, *self.mlflow.seeds]
        seeds += self.drift_jobs.seeds
        seeds += [seed for s in (self.argo_workflows, self.argo_events) if s is not None for seed in s.seeds]
        # And of those only an operator can write (a private repository's credentials).
        written = self.argocd.written
        self.vault_access = [
            VaultAccess(
                f"{name}-vault-access-{ns}",
                ns,
                seeds,
                [self.vault.operator, self.vault.connection],
                child,
                written=written,
            )
            for ns in sorted({*(s.namespace for s in seeds), *(w.namespace for w in written)})
        ]
        self.register_outputs(
            {
                "minioEndpoint": self.minio.endpoint,
                "vaultAddress": VAULT_ADDRESS,
            }
        )
