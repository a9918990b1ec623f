# Policy `platform-admin`: what a platform engineer signed in to Vault (OIDC or userpass,
# docs/runbooks/vault.md section 2) does after the initial root token is revoked: write the platform's
# secrets (first copy, placeholders, rotations), the consumers' policies and Kubernetes roles, and issue
# the metrics token. Not a role policy (platform/vault/policies/ holds those). No `sudo`, nothing of
# `sys/` but the named ACL policies and Raft's peer list: auth methods, audit devices, mounts, seal and
# Raft changes are left out so that no routine command changes them by mistake. It is no boundary: an
# admin may rewrite a consumer's policy (even `prometheus-metrics`, to `path "*"` with `sudo`) and then
# get a token carrying it (the metrics token role; a Kubernetes role bound to a ServiceAccount they
# control), and Vault reads a token's policies by name at each request, so this policy is root in
# effect. Its group is held to root's standard (docs/runbooks/vault.md, "Admin access").
#
# The platform's secrets. `patch` is what `vault kv patch` uses (hashicorp/vault command/kv_patch.go:
# HTTP PATCH, read-then-write without it); metadata to list paths and versions.
path "kv/data/platform/*" { capabilities = ["create", "read", "update", "patch"] }
path "kv/metadata/platform/*" { capabilities = ["read", "list"] }
# The policies the runbooks write, by name: the platform namespaces' roles (platform/vault/policies/),
# the model namespaces' (docs/runbooks/model-namespaces.md) and the metrics token's. Never this one.
path "sys/policies/acl/argo-events" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/argocd" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/argo-workflows" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/minio" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/mlflow" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/model-monitoring" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/monitoring" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/vault" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/model-store-read" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/models-inference-logging" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/prometheus-metrics" { capabilities = ["create", "read", "update"] }
# Raft's peers, the first check of the Raft alerts (docs/alerts.md): not a root path of the system
# backend (hashicorp/vault vault/logical_system.go `PathsSpecial.Root`), so `read` is enough.
path "sys/storage/raft/configuration" { capabilities = ["read"] }
# The Kubernetes auth roles, one per consuming namespace (`<namespace>`, `models-<team>`).
path "auth/kubernetes/role/*" { capabilities = ["create", "read", "update", "list"] }
# The metrics token (section 8): issued from token role `prometheus-metrics`, which section 2 creates
# with the root token (orphan, periodic, policy prometheus-metrics only); a role's `orphan` and period
# need no sudo (hashicorp/vault vault/token_store.go handleCreateCommon). Renewed and revoked here.
path "auth/token/create/prometheus-metrics" { capabilities = ["update"] }
path "auth/token/renew" { capabilities = ["update"] }
path "auth/token/lookup" { capabilities = ["update"] }
path "auth/token/revoke-accessor" { capabilities = ["update"] }
