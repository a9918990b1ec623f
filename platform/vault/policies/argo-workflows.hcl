# Vault role `argo-workflows` (ServiceAccount argo-workflows/vault-secrets): each app's artifact store
# user (below platform/minio/argo-artifacts/, one per app with a pipeline), the model store writer (`model-publisher`) their `register` step publishes new
# versions as, and below platform/argo-workflows/ their own MLflow account `retrain-pipeline` (never MLflow's admin), the GitHub token for the promotion pull request, and the UI's SSO client.
path "kv/data/platform/minio/argo-artifacts/*" { capabilities = ["read"] }
path "kv/data/platform/minio/model-publisher" { capabilities = ["read"] }
path "kv/data/platform/argo-workflows/*" { capabilities = ["read"] }
