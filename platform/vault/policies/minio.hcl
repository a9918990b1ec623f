# Vault role `minio` (ServiceAccount minio/vault-secrets): MinIO's root credentials, and the MLflow
# user's key, from which the chart creates that MinIO user.
path "kv/data/platform/minio/*" { capabilities = ["read"] }
path "kv/data/platform/mlflow/s3" { capabilities = ["read"] }
