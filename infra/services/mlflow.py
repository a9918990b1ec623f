"""MLflow tracking server and model registry: PostgreSQL backend, artifacts in MinIO, basic auth.

The chart's PostgreSQL option (Bitnami subchart) runs the database in-cluster on the Retain
StorageClass. Artifacts are proxied by the server (`--serve-artifacts`), so clients need MLflow
credentials only, never MinIO ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra import versions
from infra.config import StackConfig
from infra.services import secrets
from infra.services.chart import (
    STATEFUL_STORAGE_CLASS,
    ServiceArgs,
    deep_merge,
    helm_release,
    namespace,
    values_files,
)
from infra.services.minio import ARTIFACTS_BUCKET, ENDPOINT, MLFLOW_S3_SECRET, MLFLOW_S3_VAULT_PATH

NAMESPACE = "mlflow"
RELEASE = "mlflow"
# Bitnami PostgreSQL and the MLflow chart both read `<release>-postgresql` (keys password, postgres-password).
POSTGRES_SECRET = f"{RELEASE}-postgresql"
ADMIN_SECRET = "mlflow-admin"


@dataclass(frozen=True)
class MlflowArgs(ServiceArgs):
    # MinIO user credentials for the artifact bucket (the Minio component's mlflow_credentials).
    s3_credentials: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


def computed_values(config: StackConfig) -> dict[str, Any]:
    mlflow = config.services.mlflow
    repository, tag = versions.image("mlflow")
    return {
        "replicaCount": mlflow.replicas,
        "image": {"repository": repository, "tag": tag},
        "postgresql": {
            "auth": {"existingSecret": POSTGRES_SECRET},
            "primary": {
                "persistence": {
                    "storageClass": STATEFUL_STORAGE_CLASS,
                    "size": f"{mlflow.postgres_volume_size_gi}Gi",
                }
            },
        },
        "artifactRoot": {
            "s3": {
                "enabled": True,
                "bucket": ARTIFACTS_BUCKET,
                "existingSecret": {
                    "name": MLFLOW_S3_SECRET,
                    "keyOfAccessKeyId": "AWS_ACCESS_KEY_ID",
                    "keyOfSecretAccessKey": "AWS_SECRET_ACCESS_KEY",
                },
            }
        },
        "extraEnvVars": {"MLFLOW_S3_ENDPOINT_URL": ENDPOINT},
        "auth": {
            "existingAdminSecret": {
                "name": ADMIN_SECRET,
                "usernameKey": "username",
                "passwordKey": "password",
            }
        },
    }


class Mlflow(pulumi.ComponentResource):
    """MLflow with its generated database, admin and S3 credentials delivered as Secrets."""

    def __init__(self, name: str, args: MlflowArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:Mlflow", name, None, opts)
        ns = namespace(self, f"{name}-ns", NAMESPACE)
        postgres = secrets.seed_secret(
            self,
            f"{name}-postgres",
            ns,
            NAMESPACE,
            POSTGRES_SECRET,
            "platform/mlflow/postgres",
            {
                "password": secrets.password(self, f"{name}-postgres-password"),
                "postgres-password": secrets.password(self, f"{name}-postgres-admin-password"),
            },
        )
        admin = secrets.seed_secret(
            self,
            f"{name}-admin",
            ns,
            NAMESPACE,
            ADMIN_SECRET,
            "platform/mlflow/admin",
            {"username": "admin", "password": secrets.password(self, f"{name}-admin-password")},
        )
        s3 = secrets.seed_secret(
            self, f"{name}-s3", ns, NAMESPACE, MLFLOW_S3_SECRET, MLFLOW_S3_VAULT_PATH, args.s3_credentials
        )
        self.seeds = [postgres, admin, s3]
        values = deep_merge(values_files("mlflow", args.config.environment), computed_values(args.config))
        self.release = helm_release(
            self,
            f"{name}-release",
            RELEASE,
            "mlflow",
            ns.metadata.name,
            values,
            [ns, *(seed.resource for seed in self.seeds), *args.after],
            protect=args.config.protect_stateful,
        )
        self.register_outputs({"release": self.release.status})
