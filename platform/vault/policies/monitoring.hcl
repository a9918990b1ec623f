# Vault role `monitoring` (ServiceAccount monitoring/vault-secrets): Grafana's admin credentials.
path "kv/data/platform/monitoring/*" { capabilities = ["read"] }
