"""MinIO: the S3 store for model artifacts (`apps.model_store_uri`) and MLflow's artifacts.

Distributed with erasure coding where `services.minio` says so (prod: 4+ replicas), on the Retain
StorageClass. Root and MLflow credentials are generated, seeded once into Kubernetes Secrets and
then owned by Vault (see secrets.py); the chart only ever sees Secret names (`existingSecret`).

A read-only `model-reader` user is what KServe's storage initializer in every `models-<team>`
namespace downloads model artifacts with (docs/runbooks/model-namespaces.md): it can list and read
the model store bucket and nothing else.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra.config import StackConfig
from infra.services.chart import STATEFUL_STORAGE_CLASS, ChartService, ServiceArgs

NAMESPACE = "minio"
RELEASE = "minio"
ENDPOINT = f"http://{RELEASE}.{NAMESPACE}.svc.cluster.local:9000"
ARTIFACTS_BUCKET = "mlflow-artifacts"
ROOT_SECRET = "minio-root"  # pragma: allowlist secret
# MLflow's own MinIO user: the same Vault path is synced into the minio namespace (the chart creates
# the user from it) and into the mlflow namespace (the server signs requests with it).
MLFLOW_USER = "mlflow"
MLFLOW_S3_SECRET = "mlflow-s3"  # pragma: allowlist secret
MLFLOW_S3_VAULT_PATH = "platform/mlflow/s3"
MLFLOW_POLICY = "mlflow-artifacts-readwrite"
# The model servers' MinIO user: Vault path below `platform/minio/`, which the minio role can read;
# model namespaces get their own role reading only this path (docs/runbooks/model-namespaces.md).
MODEL_READER_USER = "model-reader"
MODEL_READER_SECRET = "model-reader-s3"  # pragma: allowlist secret (a Secret name)
MODEL_READER_VAULT_PATH = "platform/minio/model-reader"
MODEL_READER_POLICY = "models-readonly"


def model_bucket(config: StackConfig) -> str:
    return config.apps.model_store_uri.removeprefix("s3://")


def computed_values(config: StackConfig) -> dict[str, Any]:
    minio = config.services.minio
    return {
        "mode": minio.mode,
        "replicas": minio.replicas,
        "persistence": {
            "enabled": True,
            "storageClass": STATEFUL_STORAGE_CLASS,
            "size": f"{minio.volume_size_gi}Gi",
        },
        "existingSecret": ROOT_SECRET,
        "buckets": [
            # Model versions are immutable releases: versioning keeps an overwritten one recoverable.
            {"name": model_bucket(config), "policy": "none", "purge": False, "versioning": True},
            {"name": ARTIFACTS_BUCKET, "policy": "none", "purge": False, "versioning": False},
        ],
        "policies": [
            {
                "name": MLFLOW_POLICY,
                "statements": [
                    {"resources": [f"arn:aws:s3:::{ARTIFACTS_BUCKET}"], "actions": ["s3:ListBucket"]},
                    {
                        "resources": [f"arn:aws:s3:::{ARTIFACTS_BUCKET}/*"],
                        "actions": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    },
                ],
            },
            {
                "name": MODEL_READER_POLICY,
                "statements": [
                    {
                        "resources": [f"arn:aws:s3:::{model_bucket(config)}"],
                        "actions": ["s3:GetBucketLocation", "s3:ListBucket"],
                    },
                    {"resources": [f"arn:aws:s3:::{model_bucket(config)}/*"], "actions": ["s3:GetObject"]},
                ],
            },
        ],
        # Replaces the chart's default `console/console123` user.
        "users": [
            {
                # A MinIO access key is a user name, but the pack (rightly) treats any access key
                # as sensitive; it travels as a Pulumi secret like the rest of the credentials.
                "accessKey": pulumi.Output.secret(MLFLOW_USER),
                "existingSecret": MLFLOW_S3_SECRET,
                "existingSecretKey": "AWS_SECRET_ACCESS_KEY",  # pragma: allowlist secret
                "policy": MLFLOW_POLICY,
            },
            {
                "accessKey": pulumi.Output.secret(MODEL_READER_USER),
                "existingSecret": MODEL_READER_SECRET,
                "existingSecretKey": "AWS_SECRET_ACCESS_KEY",  # pragma: allowlist secret
                "policy": MODEL_READER_POLICY,
            },
        ],
    }


class Minio(ChartService):
    """MinIO with its buckets, a least-privilege MLflow user, and metrics scraped."""

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:Minio", name, args, NAMESPACE, opts)
        self.seed(
            "root",
            ROOT_SECRET,
            "platform/minio/root",
            {"rootUser": "mlplat-root", "rootPassword": self.password("root-password")},
        )
        # Exposed for MLflow, which seeds the same values in its own namespace.
        self.mlflow_credentials: dict[str, pulumi.Input[str]] = {
            "AWS_ACCESS_KEY_ID": MLFLOW_USER,
            "AWS_SECRET_ACCESS_KEY": self.password("mlflow-password"),
        }
        self.seed("mlflow-user", MLFLOW_S3_SECRET, MLFLOW_S3_VAULT_PATH, self.mlflow_credentials)
        # Same key names as the MLflow user's: KServe's storage initializer reads exactly these.
        self.seed(
            "model-reader",
            MODEL_READER_SECRET,
            MODEL_READER_VAULT_PATH,
            {
                "AWS_ACCESS_KEY_ID": MODEL_READER_USER,
                "AWS_SECRET_ACCESS_KEY": self.password("model-reader-password"),
            },
        )
        self.release = self.install(
            "release",
            RELEASE,
            "minio",
            computed=computed_values(args.config),
            protect=args.config.protect_stateful,
        )
        self.endpoint = ENDPOINT
        self.register_outputs({"release": self.release.status, "endpoint": ENDPOINT})
