# Vault role `vault` (ServiceAccount vault/vault-secrets): the token Prometheus scrapes Vault's
# metrics with (a token of policy prometheus-metrics, platform/vault/prometheus-metrics.hcl).
path "kv/data/platform/vault/metrics-token" { capabilities = ["read"] }
