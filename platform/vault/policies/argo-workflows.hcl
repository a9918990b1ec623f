# Vault role `argo-workflows` (ServiceAccount argo-workflows/vault-secrets): the retraining pipelines'
# artifact store user, MLflow's credentials for registering a version (no narrower MLflow user exists
# yet: README "Retraining"), the GitHub token for the promotion pull request, and the UI's SSO client.
path "kv/data/platform/minio/argo-artifacts" {
  capabilities = ["read"]
}

path "kv/data/platform/mlflow/admin" {
  capabilities = ["read"]
}

path "kv/data/platform/argo-workflows/*" {
  capabilities = ["read"]
}
