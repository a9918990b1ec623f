# Model namespaces whose apps log inferences (apps/components/inference-logging): the write-only MinIO
# user KServe's agent uploads log batches with, and the environment's key the privacy marshaller
# hashes personal fields with. Attached to each `models-<team>` role next to `model-store-read`
# (docs/runbooks/model-namespaces.md).
path "kv/data/platform/minio/inference-logger" { capabilities = ["read"] }
path "kv/data/platform/monitoring/inference-log-hash-key" { capabilities = ["read"] }
