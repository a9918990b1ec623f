# Vault role `argo-events` (ServiceAccount argo-events/vault-secrets): the bearer token Alertmanager
# must present to the retraining webhook.
path "kv/data/platform/argo-events/alertmanager-webhook" { capabilities = ["read"] }
