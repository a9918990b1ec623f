# Vault role `model-monitoring` (ServiceAccount model-monitoring/vault-secrets): the drift jobs read
# the inference logs (read-only user) and the model versions' reference samples (model-reader), and
# read the registry as MLflow user drift-job (infra/services/model_monitoring.py).
path "kv/data/platform/minio/inference-logs-reader" { capabilities = ["read"] }
path "kv/data/platform/minio/model-reader" { capabilities = ["read"] }
path "kv/data/platform/model-monitoring/mlflow-reader" { capabilities = ["read"] }
