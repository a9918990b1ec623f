# Policy `prometheus-metrics`: the token in Secret vault/vault-metrics-token, sent by Prometheus
# on every scrape of /v1/sys/metrics (infra/services/vault.py). Nothing else: a leaked copy reads
# metrics only. Not a role policy (platform/vault/policies/ holds those): the runbook writes it
# once and issues the token with it (docs/runbooks/vault.md, section 8).
path "sys/metrics" { capabilities = ["read"] }
