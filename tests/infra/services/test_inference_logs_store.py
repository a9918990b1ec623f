"""The inference logs store: its own bucket with an expiry per environment, two single-purpose users
whose credentials come from Vault, and the environment's hash key for the privacy marshaller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import StackConfig
from infra.services import minio, monitoring
from tests.support.harness import Plan

REPO = Path(__file__).resolve().parents[3]


def _stack_days(env: str) -> int:
    document = yaml.safe_load((REPO / "environments" / f"Pulumi.{env}.yaml").read_text())
    return int(document["config"]["mlplat:services"]["inference_logs"]["retention_days"])


def _grants(values: dict[str, Any], policy: str) -> set[tuple[str, str]]:
    statements = {p["name"]: p["statements"] for p in values["policies"]}[policy]
    return {(res, action) for s in statements for res in s["resources"] for action in s["actions"]}


def _seeded(plan: Plan, namespace: str, name: str) -> Any:
    found = [
        s
        for s in plan.of_type("kubernetes:core/v1:Secret")
        if (s.inputs["metadata"]["namespace"], s.inputs["metadata"]["name"]) == (namespace, name)
    ]
    assert len(found) == 1, f"{plan.env}: Secret {namespace}/{name} seeded {len(found)} times"
    return found[0]


def _synced(plan: Plan, namespace: str, name: str) -> bool:
    return any(
        s.inputs["metadata"] == {"name": name, "namespace": namespace}
        for s in plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret")
    )


def test_inference_logs_expire_after_the_environments_retention(plan: Plan) -> None:
    r = plan.releases()["minio"]
    values = r.inputs["values"]
    bucket = [b for b in values["buckets"] if b["name"] == minio.LOGS_BUCKET]
    # Versioning would keep an expired object as a noncurrent version: logs must really go.
    assert bucket == [{"name": minio.LOGS_BUCKET, "policy": "none", "purge": False, "versioning": False}], (
        r.urn
    )
    days = _stack_days(plan.env)
    commands = [c["command"] for c in values.get("customCommands") or []]
    assert f"ilm rule add --expire-days {days} myminio/{minio.LOGS_BUCKET}" in commands, (
        f"{r.urn}: {commands}"
    )


def test_the_logger_can_write_log_objects_but_never_read_or_list_them(plan: Plan) -> None:
    values = plan.releases()["minio"].inputs["values"]
    assert _grants(values, minio.LOGS_WRITER.policy) == {
        (f"arn:aws:s3:::{minio.LOGS_BUCKET}/*", "s3:PutObject"),
        (f"arn:aws:s3:::{minio.LOGS_BUCKET}/*", "s3:AbortMultipartUpload"),
    }
    assert _grants(values, minio.LOGS_READER.policy) == {
        (f"arn:aws:s3:::{minio.LOGS_BUCKET}", "s3:GetBucketLocation"),
        (f"arn:aws:s3:::{minio.LOGS_BUCKET}", "s3:ListBucket"),
        (f"arn:aws:s3:::{minio.LOGS_BUCKET}/*", "s3:GetObject"),
    }
    # Neither user reaches the model store or MLflow's artifacts.
    for policy in (minio.LOGS_WRITER.policy, minio.LOGS_READER.policy):
        assert all(minio.LOGS_BUCKET in res for res, _ in _grants(values, policy)), policy


@pytest.mark.parametrize("account", [minio.LOGS_WRITER, minio.LOGS_READER], ids=lambda a: a.user)
def test_log_users_get_their_keys_from_vault_never_from_values(plan: Plan, account: minio.MinioUser) -> None:
    user, secret, policy, vault_path = account.user, account.secret, account.policy, account.vault_path
    r = plan.releases()["minio"]
    users = [u for u in r.inputs["values"]["users"] if u["accessKey"] == user]
    assert len(users) == 1 and users[0]["policy"] == policy and "secretKey" not in users[0], r.urn
    index = r.inputs["values"]["users"].index(users[0])
    assert f"values.users[{index}].accessKey" in r.secret_paths, f"{r.urn}: access key not a secret"
    seeded = _seeded(plan, minio.NAMESPACE, secret)
    data = seeded.inputs["stringData"]
    # KServe's agent and the drift job read exactly these key names.
    assert set(data) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, seeded.urn
    assert seeded.inputs["metadata"]["annotations"]["mlplat/vault-path"] == f"kv/{vault_path}", seeded.urn
    assert seeded.urn in r.dependencies, f"{r.urn} does not wait for {seeded.urn}"
    assert _synced(plan, minio.NAMESPACE, secret), f"{plan.env}: {secret} not kept in sync from Vault"


def test_each_environment_has_its_own_generated_hash_key_owned_by_vault(plan: Plan) -> None:
    seeded = _seeded(plan, monitoring.NAMESPACE, monitoring.INFERENCE_LOG_HASH_KEY_SECRET)
    assert set(seeded.inputs["stringData"]) == {"key"}, seeded.urn
    assert "stringData" in seeded.secret_paths, f"{seeded.urn}: the key is not a Pulumi secret"
    assert seeded.inputs["metadata"]["annotations"]["mlplat/vault-path"] == (
        f"kv/{monitoring.INFERENCE_LOG_HASH_KEY_VAULT_PATH}"
    ), seeded.urn
    assert _synced(plan, monitoring.NAMESPACE, monitoring.INFERENCE_LOG_HASH_KEY_SECRET), plan.env


def test_model_namespaces_may_read_the_logger_key_and_hash_key_only() -> None:
    policy = (REPO / "platform" / "vault" / "models-inference-logging.hcl").read_text()
    paths = sorted(line.split('"')[1] for line in policy.splitlines() if line.startswith("path "))
    assert paths == sorted(
        [f"kv/data/{minio.LOGS_WRITER.vault_path}", f"kv/data/{monitoring.INFERENCE_LOG_HASH_KEY_VAULT_PATH}"]
    ), paths


def test_prod_may_not_keep_inference_logs_shorter_than_its_floor() -> None:
    document = yaml.safe_load((REPO / "environments" / "Pulumi.prod.yaml").read_text())
    raw = {k.removeprefix("mlplat:"): v for k, v in document["config"].items() if k.startswith("mlplat:")}
    raw["services"]["inference_logs"] = {"retention_days": 7}
    with pytest.raises(
        ValueError, match=r"services\.inference_logs\.retention_days: prod keeps inference logs"
    ):
        StackConfig.model_validate(raw, context={"stack": "prod"})
