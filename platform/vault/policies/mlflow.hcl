# Vault role `mlflow` (ServiceAccount mlflow/vault-secrets): PostgreSQL, admin and MinIO credentials.
path "kv/data/platform/mlflow/*" { capabilities = ["read"] }
