# Vault role `argocd` (ServiceAccount argocd/vault-secrets): the credentials of a private repository
# (services.argocd.repo_private; infra/services/argocd.py `repository_credentials`), and nothing else.
path "kv/data/platform/argocd/repository" { capabilities = ["read"] }
