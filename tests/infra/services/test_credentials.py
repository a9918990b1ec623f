"""Credentials between services: MLflow's shared auth database, and the model servers' MinIO user."""

from __future__ import annotations

import json
from typing import Any

from infra.services import minio, mlflow
from tests.support.harness import Plan


def _seeded(plan: Plan, namespace: str, name: str) -> Any:
    return next(
        s
        for s in plan.of_type("kubernetes:core/v1:Secret")
        if (s.inputs["metadata"]["namespace"], s.inputs["metadata"]["name"]) == (namespace, name)
    )


def test_mlflow_auth_users_live_in_the_shared_postgresql(plan: Plan) -> None:
    r = plan.releases()["mlflow"]
    values = r.inputs["values"]
    auth, database = values["auth"], values["postgresql"]
    assert auth["enabled"] is True, r.urn
    postgres = auth["postgres"]
    # Not the chart's default per-pod SQLite file: every replica must see the same users.
    assert postgres["enabled"] is True, f"{r.urn}: auth users in per-pod SQLite"
    assert postgres["host"] == "mlflow-postgresql.mlflow.svc.cluster.local", r.urn
    assert int(postgres["port"]) == 5432, r.urn
    assert postgres["database"] == database["auth"]["database"] == "mlflow", r.urn
    # Credentials from the Vault-owned Secret the database itself uses, never a literal.
    assert postgres.get("user", "") == "" and postgres.get("password", "") == "", f"{r.urn}: literal"
    ref = postgres["existingSecret"]
    assert ref["name"] == database["auth"]["existingSecret"] == mlflow.POSTGRES_SECRET, r.urn
    secret = _seeded(plan, "mlflow", ref["name"])
    data = secret.inputs["stringData"]
    assert {ref["usernameKey"], ref["passwordKey"]} <= set(data), f"{secret.urn}: keys {sorted(data)}"
    assert data[ref["usernameKey"]] == database["auth"]["username"], secret.urn
    assert secret.urn in r.dependencies, f"{r.urn} does not wait for {secret.urn}"
    sync = [
        s
        for s in plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret")
        if s.inputs["metadata"] == {"name": ref["name"], "namespace": "mlflow"}
    ]
    assert len(sync) == 1, f"{plan.env}: {ref['name']} is not kept in sync from Vault"


def test_model_reader_can_only_read_the_model_store(plan: Plan) -> None:
    r = plan.releases()["minio"]
    values = r.inputs["values"]
    bucket = "mlplat-models"
    assert {"name": bucket, "policy": "none", "purge": False, "versioning": True} in values["buckets"], r.urn
    policies = {p["name"]: p["statements"] for p in values["policies"]}
    statements = policies[minio.MODEL_READER.policy]
    granted = {(res, action) for s in statements for res in s["resources"] for action in s["actions"]}
    assert granted == {
        (f"arn:aws:s3:::{bucket}", "s3:GetBucketLocation"),
        (f"arn:aws:s3:::{bucket}", "s3:ListBucket"),
        (f"arn:aws:s3:::{bucket}/*", "s3:GetObject"),
    }, f"{r.urn}: {sorted(granted)}"
    users = [u for u in values["users"] if u["accessKey"] == minio.MODEL_READER.user]
    assert len(users) == 1, f"{r.urn}: users {json.dumps(values['users'])}"
    user = users[0]
    assert user["policy"] == minio.MODEL_READER.policy and "secretKey" not in user, r.urn
    index = values["users"].index(user)
    assert f"values.users[{index}].accessKey" in r.secret_paths, f"{r.urn}: access key not a secret"
    secret = _seeded(plan, "minio", user["existingSecret"])
    data = secret.inputs["stringData"]
    # KServe's storage initializer reads these two keys; the chart reads the secret key.
    assert set(data) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, secret.urn
    assert user["existingSecretKey"] in data and data["AWS_ACCESS_KEY_ID"] == user["accessKey"], secret.urn
    assert secret.inputs["metadata"]["annotations"]["mlplat/vault-path"] == (
        f"kv/{minio.MODEL_READER.vault_path}"
    ), secret.urn
    assert secret.urn in r.dependencies, f"{r.urn} does not wait for {secret.urn}"


def test_every_seeded_secret_is_ready_before_the_release_reading_it(plan: Plan) -> None:
    for secret in plan.of_type("kubernetes:core/v1:Secret"):
        namespace = secret.inputs["metadata"]["namespace"]
        readers = [r for r in plan.releases().values() if r.inputs["namespace"] == namespace]
        # A namespace without a chart (model-monitoring): its CronJobs read the Secret.
        readers = readers or [
            j
            for j in plan.of_type("kubernetes:batch/v1:CronJob")
            if j.inputs["metadata"]["namespace"] == namespace
        ]
        assert readers, f"{secret.urn}: no release or CronJob in {namespace}"
        for release in readers:
            assert secret.urn in release.dependencies, f"{release.urn} does not wait for {secret.urn}"
