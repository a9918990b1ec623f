# Vault role `model-monitoring` (ServiceAccount model-monitoring/vault-secrets): the drift jobs read
# the inference logs (read-only user) and the model versions' reference samples (model-reader).
path "kv/data/platform/minio/inference-logs-reader" {
  capabilities = ["read"]
}

path "kv/data/platform/minio/model-reader" {
  capabilities = ["read"]
}
