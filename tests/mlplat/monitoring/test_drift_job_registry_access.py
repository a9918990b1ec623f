"""The drift job reads the served version's reference data through the MLflow registry, whose basic
auth refuses anonymous callers (platform/mlflow/values.yaml): it must call it as its own read-only
account, from Vault, never as the admin. Evaluated on the offline plan of each environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.config import ENVIRONMENTS
from infra.services import mlflow, model_monitoring
from mlplat import registry_gate
from tests.support.fake_mlflow import FakeRegistry, serve

REPO = Path(__file__).resolve().parents[3]
VAULT_STATIC_SECRET = (
    "kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret"  # pragma: allowlist secret (a resource type)
)


def of_type(plan: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == kind]


def drift_containers(plan: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for job in of_type(plan, "kubernetes:batch/v1:CronJob"):
        pod = job["inputs"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        found += [(job["urn"], c) for c in pod["containers"] if c["args"][:2] == ["monitor", "drift"]]
    assert found, "no drift job in the plan"
    return found


def policy_paths(role: str) -> set[str]:
    text = (REPO / "platform" / "vault" / "policies" / f"{role}.hcl").read_text()
    return {line.split('"')[1] for line in text.splitlines() if line.startswith("path ")}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_drift_job_is_not_anonymous_to_the_registry(env: str, offline_plan: Any, monkeypatch: Any) -> None:
    plan = offline_plan(env)
    syncs = {
        s["inputs"]["spec"]["destination"]["name"]: s["inputs"]["spec"]["path"]
        for s in of_type(plan, VAULT_STATIC_SECRET)
        if s["inputs"]["metadata"]["namespace"] == model_monitoring.NAMESPACE
    }
    for urn, drift in drift_containers(plan):
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in drift["env"] if "valueFrom" in e}
        # Exactly what the job's registry client sends as credentials, from one Secret.
        for name, ref in refs.items():
            monkeypatch.setenv(name, "from-" + ref["key"])
        with serve(FakeRegistry()) as fake:
            registry_gate.Registry(fake.url).model("any")
        assert fake.seen_headers and all("Authorization" in h for h in fake.seen_headers), f"{urn}: {refs}"
        (secret,) = {ref["name"] for ref in refs.values()}
        # The Secret is Vault's, in the job's namespace, and the job's own role reads it.
        path = syncs.get(secret)
        assert path, f"{urn}: {secret} is not synced from Vault into {model_monitoring.NAMESPACE}"
        assert f"kv/data/{path}" in policy_paths(model_monitoring.NAMESPACE), path
        # Never MLflow's admin (it may write and delete models); no other role reads this account.
        assert not path.startswith("platform/mlflow/"), f"{urn}: reads the registry with {path}"
        others = [p.stem for p in (REPO / "platform" / "vault" / "policies").glob("*.hcl")]
        readers = [role for role in others if f"kv/data/{path}" in policy_paths(role)]
        assert readers == [model_monitoring.NAMESPACE], f"{path} is readable by {readers}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_drift_jobs_registry_account_is_generated_with_the_first_deployment(
    env: str, offline_plan: Any
) -> None:
    plan = offline_plan(env)
    seeded = {
        s["inputs"]["metadata"]["name"]: s["inputs"]["metadata"]["annotations"]["mlplat/vault-path"]
        for s in of_type(plan, "kubernetes:core/v1:Secret")
        if s["inputs"]["metadata"]["namespace"] == model_monitoring.NAMESPACE
        and "mlplat/vault-path" in (s["inputs"]["metadata"].get("annotations") or {})
    }
    for urn, drift in drift_containers(plan):
        (secret,) = {e["valueFrom"]["secretKeyRef"]["name"] for e in drift["env"] if "valueFrom" in e}
        # Seeded (generated) before Vault holds it, so the job and the admin creating the MLflow
        # user read the same password; a Secret nobody creates would keep the pod from starting.
        assert secret in seeded, f"{urn}: {secret} is never created in {model_monitoring.NAMESPACE}"
        admin = [
            s["inputs"]["metadata"]["annotations"]["mlplat/vault-path"]
            for s in of_type(plan, "kubernetes:core/v1:Secret")
            if s["inputs"]["metadata"]["name"] == mlflow.ADMIN_SECRET
        ]
        assert admin and seeded[secret] not in admin, f"{urn}: the registry admin's credentials"
