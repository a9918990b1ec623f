"""Platform services on the cluster: one component per service, each a pinned Helm release.

`PlatformServices` builds them in dependency order: kube-prometheus-stack first (its CRDs are used
by every ServiceMonitor), cert-manager before KServe, cert-manager's internal CA issuer before Vault
(which serves TLS with a certificate from it), Vault + the Vault Secrets Operator before the
VaultStaticSecrets that deliver generated credentials, Argo CD before its AppProject/ApplicationSet,
the AWS Load Balancer Controller and the internal CA before the inference gateway, MinIO and MLflow
before Argo Workflows (its artifacts and the pipelines' registrations), Argo Workflows before Argo
Events (whose Sensor creates Workflows).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.config import StackConfig
from infra.services import argo_events, argo_workflows
from infra.services.argo_events import ArgoEvents, ArgoEventsArgs
from infra.services.argo_workflows import ArgoWorkflows, ArgoWorkflowsArgs, training_pipelines
from infra.services.argocd import ArgoCd
from infra.services.cert_manager import CertManager
from infra.services.chart import ChartService, ServiceArgs
from infra.services.falco import Falco
from infra.services.gateway import InferenceGateway, InferenceGatewayArgs
from infra.services.gpu_operator import GpuOperator
from infra.services.keda import Keda
from infra.services.kserve import Kserve, KserveArgs
from infra.services.load_balancer import LoadBalancerController, LoadBalancerControllerArgs
from infra.services.minio import Minio, MinioArgs
from infra.services.mlflow import Mlflow, MlflowArgs
from infra.services.model_monitoring import DriftJobs, DriftJobsArgs
from infra.services.monitoring import Monitoring
from infra.services.network_policies import NamespaceRef, NetworkPolicies, NetworkPoliciesArgs
from infra.services.secrets import VaultAccess
from infra.services.vault import ADDRESS as VAULT_ADDRESS
from infra.services.vault import Vault, VaultArgs


@dataclass(frozen=True)
class VaultUnseal:
    role_arn: pulumi.Input[str]  # IRSA role for the vault ServiceAccount (vault/vault)
    kms_key_id: pulumi.Input[str]
    region: str


@dataclass(frozen=True)
class LoadBalancing:
    role_arn: pulumi.Input[str]  # IRSA role of the AWS Load Balancer Controller
    vpc_id: pulumi.Input[str]  # the VPC its NLBs and security groups live in


@dataclass(frozen=True)
class PlatformServicesArgs:
    config: StackConfig
    vault_unseal: VaultUnseal
    load_balancing: LoadBalancing
    cluster_name: pulumi.Input[str]
    # Karpenter's namespace lives with the node pools; its walls must wait for it.
    karpenter_namespace: NamespaceRef


class PlatformServices(pulumi.ComponentResource):
    """Every platform service of one environment; Kubernetes resources use the provider in `opts`."""

    def __init__(self, name: str, args: PlatformServicesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:PlatformServices", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)

        self.monitoring = Monitoring(f"{name}-monitoring", ServiceArgs(config), child)
        after = (self.monitoring.release,)
        self.cert_manager = CertManager(f"{name}-cert-manager", ServiceArgs(config, after), child)
        self.kserve = Kserve(
            f"{name}-kserve",
            KserveArgs(
                config,
                after,
                cert_manager=self.cert_manager.release,
                ca_cert_pem=self.cert_manager.ca_cert_pem,
            ),
            child,
        )
        self.gpu_operator = GpuOperator(f"{name}-gpu-operator", ServiceArgs(config, after), child)
        unseal = args.vault_unseal
        self.vault = Vault(
            f"{name}-vault",
            VaultArgs(
                config,
                after,
                role_arn=unseal.role_arn,
                kms_key_id=unseal.kms_key_id,
                region=unseal.region,
                ca_issuer=self.cert_manager.ca_issuer,
            ),
            child,
        )
        self.minio = Minio(
            f"{name}-minio", MinioArgs(config, after, ca_issuer=self.cert_manager.ca_issuer), child
        )
        self.mlflow = Mlflow(
            f"{name}-mlflow",
            MlflowArgs(
                config,
                (*after, self.minio.release),
                s3_credentials=self.minio.mlflow_credentials,
                ca_cert_pem=self.cert_manager.ca_cert_pem,
            ),
            child,
        )
        self.drift_jobs = DriftJobs(
            f"{name}-drift-jobs",
            DriftJobsArgs(
                config,
                logs_reader=self.minio.logs_reader,
                model_reader=self.minio.model_reader,
                ca_cert_pem=self.cert_manager.ca_cert_pem,
                after=(self.monitoring.pushgateway,),
            ),
            child,
        )
        self.falco = Falco(f"{name}-falco", ServiceArgs(config, after), child)
        self.argocd = ArgoCd(f"{name}-argocd", ServiceArgs(config, after), child)
        # After monitoring: its ServiceMonitors need the CRDs, its triggers query that Prometheus.
        self.keda = Keda(f"{name}-keda", ServiceArgs(config, after), child)
        self.load_balancer_controller = LoadBalancerController(
            f"{name}-load-balancer-controller",
            LoadBalancerControllerArgs(
                config,
                after,
                role_arn=args.load_balancing.role_arn,
                cluster_name=args.cluster_name,
                vpc_id=args.load_balancing.vpc_id,
            ),
            child,
        )
        self.gateway = InferenceGateway(
            f"{name}-gateway",
            InferenceGatewayArgs(
                config,
                after,
                ca_issuer=self.cert_manager.ca_issuer,
                load_balancer_controller=self.load_balancer_controller.release,
            ),
            child,
        )

        # Retraining (README "Retraining"): switched per stack, on in every environment.
        self.argo_workflows: ArgoWorkflows | None = None
        self.argo_events: ArgoEvents | None = None
        if config.services.argo_workflows.enabled:
            pipelines = tuple(training_pipelines())
            self.argo_workflows = ArgoWorkflows(
                f"{name}-argo-workflows",
                ArgoWorkflowsArgs(
                    config,
                    (*after, self.minio.release, self.mlflow.release),
                    artifacts_credentials=self.minio.workflow_artifacts,
                    publisher_credentials=self.minio.model_publisher,
                    ca_cert_pem=self.cert_manager.ca_cert_pem,
                    pipelines=pipelines,
                ),
                child,
            )
            if config.services.argo_events.enabled:
                self.argo_events = ArgoEvents(
                    f"{name}-argo-events",
                    ArgoEventsArgs(
                        config, (*after, self.argo_workflows.release), apps=tuple(p.app for p in pipelines)
                    ),
                    child,
                )

        # Default-deny walls around every platform namespace, once the namespaces exist (VSO's
        # namespace is created with its release).
        services: list[ChartService | DriftJobs] = [
            self.monitoring,
            self.cert_manager,
            self.kserve,
            self.gpu_operator,
            self.vault,
        ]
        services += [
            self.minio,
            self.mlflow,
            self.falco,
            self.argocd,
            self.keda,
            self.load_balancer_controller,
            self.gateway,
            self.drift_jobs,
        ]
        services += [s for s in (self.argo_workflows, self.argo_events) if s is not None]
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
                str(config.network.vpc_cidr),
                args.karpenter_namespace,
                [*(s.namespace for s in services), self.vault.operator, self.gateway.gateway_namespace],
                absent,
            ),
            child,
        )

        # Vault delivery of every generated credential, once VSO's CRDs exist.
        seeds = [*self.monitoring.seeds, *self.vault.seeds, *self.minio.seeds, *self.mlflow.seeds]
        seeds += self.drift_jobs.seeds
        seeds += [seed for s in (self.argo_workflows, self.argo_events) if s is not None for seed in s.seeds]
        self.vault_access = [
            VaultAccess(
                f"{name}-vault-access-{ns}", ns, seeds, [self.vault.operator, self.vault.connection], child
            )
            for ns in sorted({seed.namespace for seed in seeds})
        ]
        self.register_outputs(
            {
                "minioEndpoint": self.minio.endpoint,
                "vaultAddress": VAULT_ADDRESS,
            }
        )
