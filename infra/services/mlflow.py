"""MLflow tracking server and model registry: PostgreSQL backend, artifacts in MinIO, basic auth.

The chart's PostgreSQL option (Bitnami subchart) runs the database in-cluster on the Retain
StorageClass. Artifacts are proxied by the server (`--serve-artifacts`), so clients need MLflow
credentials only, never MinIO ones.

Basic auth keeps its users and permissions in the same PostgreSQL database (`auth.postgres`), not
in the chart's default per-pod SQLite file: with more than one replica every pod must see the same
users. MLflow (>= 3.6) versions the auth schema in its own `alembic_version_auth` table, so the
auth tables can live next to the tracking tables in one database.

Prometheus reads `/metrics` (`--expose-prometheus`) as MLflow user `prometheus-metrics`: MLflow's basic
auth leaves only `/static`, `/favicon.ico` and `/health` open (mlflow 3.15.1
mlflow/server/auth/__init__.py `_UNPROTECTED_PATH_PREFIXES`), and in 3.15.1 any signed-in user may read
`/metrics`, which has no permission rule, so that user is granted nothing. Its password is generated
and delivered like every other credential (Vault `platform/mlflow/metrics-reader`, synced to the Secret
the ServiceMonitor's `basicAuth` reads); MLflow keeps users in its own database, so an admin creates the
user once (docs/runbooks/mlflow.md) and, until then, alert MlflowMetricsUnreadable says so.

The server reaches MinIO over https and verifies it against the internal CA: boto3 reads the CA
file named by `AWS_CA_BUNDLE` (chart mlflow-1.11.5 values.yaml `extraEnvVars` lists it), mounted
from ConfigMap `mlflow/mlplat-internal-ca` (`extraVolumes`/`extraVolumeMounts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.aws.cluster import REGISTRY_TUNNEL_GROUP
from infra.config import MlflowConfig
from infra.services.cert_manager import CA_BUNDLE_CONFIGMAP, InternalCa
from infra.services.chart import ChartService, ServiceArgs, custom_resources
from infra.services.minio import ARTIFACTS_BUCKET, ENDPOINT, MLFLOW, Minio

NAMESPACE = "mlflow"
RELEASE = "mlflow"
# Bitnami PostgreSQL and the MLflow chart both read `<release>-postgresql` (keys password,
# postgres-password); `username` is there for the auth backend, which reads user and password
# from one Secret.
POSTGRES_SECRET = f"{RELEASE}-postgresql"
# The Bitnami subchart's Service (its fullname), in this namespace.
POSTGRES_HOST = f"{RELEASE}-postgresql.{NAMESPACE}.svc.cluster.local"
POSTGRES_PORT = 5432
DATABASE = "mlflow"
DATABASE_USER = "mlflow"
ADMIN_SECRET = "mlflow-admin"  # pragma: allowlist secret
CA_DIR = "/etc/mlplat/internal-ca"
# The name the chart gives the server's container port, and uses for the Service's targetPort and the
# probes (mlflow-1.11.5 templates/deployment.yaml `ports[].name`, service.yaml `targetPort`, both
# `service.containerPortName`); the ServiceMonitor scrapes the port of that name.
CONTAINER_PORT_NAME = "mlflow"
# mlflow-1.11.5 templates/_helpers.tpl mlflow.selectorLabels: on the Service and the server's pods.
SERVER_LABELS = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": RELEASE}
# prometheus-flask-exporter's endpoint (GunicornInternalPrometheusMetrics path="/metrics").
METRICS_PATH = "/metrics"
METRICS_USER = "prometheus-metrics"
METRICS_SECRET = "mlflow-metrics-reader"  # pragma: allowlist secret
METRICS_VAULT_PATH = "platform/mlflow/metrics-reader"
# The chart's Service (its fullname: the release name, which contains the chart's) and its port
# (mlflow-1.11.5 values.yaml service.port 80 -> containerPort 5000).
SERVICE = RELEASE
SERVICE_PORT = 80
# What `kubectl port-forward svc/<name>` asks of the API server: get the Service, list its pods by the
# selector, get the pod, POST its portforward subresource (kubernetes/kubectl pkg/cmd/portforward/
# portforward.go and pkg/polymorphichelpers attachablepodforobject.go, helpers.go GetPodList, read at
# dee3483a3d6a64c07fdf746caf80af446dee99ac). A POST is RBAC's `create`.
REGISTRY_TUNNEL_RULES = (
    ("services", ("get",)),
    ("pods", ("get", "list")),
    ("pods/portforward", ("create",)),
)
CA_FILE_KEY = "ca.crt"


def metrics_monitor() -> dict[str, Any]:
    """The ServiceMonitor Prometheus reads MLflow's request metrics with: the server's container port
    by name, logged in as METRICS_USER from METRICS_SECRET (each field from the Secret's key of the same
    name). No jobLabel: the job is the Service's name, `mlflow`, which the alerts select."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": SERVICE},
        "spec": {
            "selector": {"matchLabels": SERVER_LABELS},
            "endpoints": [
                {
                    "targetPort": CONTAINER_PORT_NAME,
                    "path": METRICS_PATH,
                    "basicAuth": {
                        field: {"name": METRICS_SECRET, "key": field} for field in ("username", "password")
                    },
                }
            ],
        },
    }


@dataclass(frozen=True, kw_only=True)
class MlflowArgs(ServiceArgs):
    settings: MlflowConfig  # services.mlflow
    # MinIO: the server keeps artifacts in its bucket as its user (`mlflow_credentials`, seeded here
    # too), so the release waits for MinIO's.
    artifact_store: Minio
    # The internal CA (cert_manager.py), which MinIO's certificate chains to: MLflow verifies MinIO
    # against its certificate.
    ca: InternalCa


def computed_values(mlflow: MlflowConfig, storage_class: str) -> dict[str, Any]:
    """Per-environment values: from the environment's `services.mlflow` only; PostgreSQL's volume
    claims `storage_class`."""
    repository, tag = versions.image("mlflow")
    return {
        "replicaCount": mlflow.replicas,
        "service": {"containerPortName": CONTAINER_PORT_NAME},
        "image": {"repository": repository, "tag": tag},
        "postgresql": {
            "auth": {"username": DATABASE_USER, "database": DATABASE, "existingSecret": POSTGRES_SECRET},
            "primary": {
                "persistence": {
                    "storageClass": storage_class,
                    "size": f"{mlflow.postgres_volume_size_gi}Gi",
                }
            },
        },
        "artifactRoot": {
            "s3": {
                "enabled": True,
                "bucket": ARTIFACTS_BUCKET,
                "existingSecret": {
                    "name": MLFLOW.secret,
                    "keyOfAccessKeyId": "AWS_ACCESS_KEY_ID",
                    "keyOfSecretAccessKey": "AWS_SECRET_ACCESS_KEY",  # pragma: allowlist secret
                },
            }
        },
        "extraEnvVars": {"MLFLOW_S3_ENDPOINT_URL": ENDPOINT, "AWS_CA_BUNDLE": f"{CA_DIR}/{CA_FILE_KEY}"},
        "extraVolumes": [{"name": "internal-ca", "configMap": {"name": CA_BUNDLE_CONFIGMAP}}],
        "extraVolumeMounts": [{"name": "internal-ca", "mountPath": CA_DIR, "readOnly": True}],
        "auth": {
            "existingAdminSecret": {
                "name": ADMIN_SECRET,
                "usernameKey": "username",
                "passwordKey": "password",  # pragma: allowlist secret
            },
            # Users and permissions shared by every replica (see the module docstring).
            "postgres": {
                "enabled": True,
                "host": POSTGRES_HOST,
                "port": POSTGRES_PORT,
                "database": DATABASE,
                "driver": "psycopg2",
                "existingSecret": {
                    "name": POSTGRES_SECRET,
                    "usernameKey": "username",
                    "passwordKey": "password",  # pragma: allowlist secret
                },
            },
        },
    }


class Mlflow(ChartService):
    """MLflow with its generated database, admin and S3 credentials delivered as Secrets."""

    def __init__(self, name: str, args: MlflowArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "mlplat:services:Mlflow", name, NAMESPACE, args.cluster, [args.monitoring_crds], opts
        )
        self.seed(
            "postgres",
            POSTGRES_SECRET,
            "platform/mlflow/postgres",
            {
                "username": DATABASE_USER,
                "password": self.password("postgres-password"),
                "postgres-password": self.password("postgres-admin-password"),
            },
        )
        self.seed(
            "admin",
            ADMIN_SECRET,
            "platform/mlflow/admin",
            {"username": "admin", "password": self.password("admin-password")},
        )
        self.seed("s3", MLFLOW.secret, MLFLOW.vault_path, args.artifact_store.mlflow_credentials)
        # Read by the ServiceMonitor below, not by the chart (the release waits for it all the same).
        metrics_reader = self.seed(
            "metrics-reader",
            METRICS_SECRET,
            METRICS_VAULT_PATH,
            {"username": METRICS_USER, "password": self.password("metrics-reader-password")},
        )
        self.ca_bundle = args.ca.bundle(self, f"{name}-internal-ca", self.namespace, CA_FILE_KEY)
        self.release = self.install(
            "release",
            RELEASE,
            "mlflow",
            computed=computed_values(args.settings, args.cluster.storage_classes.retain),
            depends_on=[
                self.namespace,
                self.ca_bundle,
                *(s.resource for s in self.seeds),
                args.monitoring_crds,
                args.artifact_store.release,
            ],
            protect=args.cluster.protect_stateful,
        )
        # Created after the release, whose upgrade removes the chart's own ServiceMonitor of the same name.
        (self.metrics_monitor,) = custom_resources(
            self,
            name,
            [(Path(__file__), metrics_monitor())],
            NAMESPACE,
            [self.release, metrics_reader.resource, args.monitoring_crds],
        )
        # promote.yml's registry gate reaches this registry from the runner through the cluster API
        # (its only path into the VPC, ADR 0003): the promote roles' group may port-forward here and do
        # nothing else. A port-forward enters the pod's own network namespace, so the NetworkPolicies
        # (which admit port 5000 from drift jobs and pipelines only) stay as they are (docs/security.md).
        # RBAC cannot name pods whose names change: PostgreSQL's pod is in reach too, behind its password.
        tunnel = k8s.rbac.v1.Role(
            f"{name}-registry-tunnel",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="registry-tunnel", namespace=NAMESPACE),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=[resource], verbs=list(verbs))
                for resource, verbs in REGISTRY_TUNNEL_RULES
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        self.registry_tunnel = k8s.rbac.v1.RoleBinding(
            f"{name}-registry-tunnel",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="registry-tunnel", namespace=NAMESPACE),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name="registry-tunnel"
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="Group", name=REGISTRY_TUNNEL_GROUP, api_group="rbac.authorization.k8s.io"
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[tunnel]),
        )
        self.register_outputs({"release": self.release.status})
