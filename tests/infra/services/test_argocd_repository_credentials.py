"""A private repository: Argo CD (its ApplicationSet's git generator and every Application) clones the
stack's `repo_url` with credentials the Vault Secrets Operator delivers from Vault, and a public one
needs nothing. The Secret is judged as the two upstream programs would read it: VSO v1.4.1 turning the
VaultStaticSecret and Vault's data into a Secret, Argo CD v3.4.4 finding that Secret for a repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from infra.config import ConfigError, StackConfig, load_environment
from infra.contract import ENVIRONMENTS
from tests.support.crds import CRDS
from tests.support.harness import REPO, Plan, Registered, build, build_config, depends_on
from tests.support.runbook import KV_MOUNT, RUNBOOKS, vault_commands
from tests.support.stack_edit import argocd_edited
from tests.support.vault_acl import allows, rules

VSS = "kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret"
NAMESPACE = "argocd"
# What an operator may write at the path (docs/runbooks/vault.md section 10), and keys that would change
# where or how Argo CD connects if they reached the Secret.
TOKEN = {"username": "x-access-token", "password": "a-token"}  # pragma: allowlist secret (a stand-in)
STRAY = {"url": "https://github.com/someone-else/other.git", "insecure": "true", "project": "default"}


def _private(env: str, directory: Path, repo_url: str | None = None) -> StackConfig:
    """`env`'s stack config with `repo_private: true` (and another `repo_url`)."""
    moved = {"repo_url": repo_url} if repo_url else {}
    return argocd_edited(env, directory, repo_private=True, **moved)


@pytest.fixture(scope="module")
def private_dev(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return build_config(_private("dev", tmp_path_factory.mktemp("stack")))


def _vso_secret(vss: Registered, vault_data: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, data) of the Secret VSO v1.4.1 writes for a VaultStaticSecret whose kv-v2 path holds
    `vault_data` (hashicorp/vault-secrets-operator v1.4.1 helpers/secrets.go `SyncSecret` sets
    `destination.labels`; `WithVaultData`/`makeK8sData`: `_raw` unless excluded, then the templates, then
    the source keys `FilterData` keeps (excludes, then `includes`, regexp.MatchString) that no template wrote).
    Owner labels are left out. A template here is literal text: no `{{`."""
    destination = vss.inputs["spec"]["destination"]
    transformation = destination.get("transformation", {})
    templates = transformation.get("templates", {})
    assert all("{{" not in t["text"] for t in templates.values()), f"{vss.urn}: a template with actions"
    data = {} if transformation.get("excludeRaw") else {"_raw": json.dumps(vault_data)}
    data.update({key: t["text"] for key, t in templates.items()})
    kept = {
        key: value
        for key, value in vault_data.items()
        if not any(re.search(p, key) for p in transformation.get("excludes", []))
        and (not transformation.get("includes") or any(re.search(p, key) for p in transformation["includes"]))
    }
    data.update({key: value for key, value in kept.items() if key not in data})
    return dict(destination.get("labels") or {}), data


def _argocd_repository(secrets: list[tuple[dict[str, str], dict[str, str]]], repo_url: str) -> dict[str, str]:
    """The Secret data Argo CD v3.4.4 connects to `repo_url` with, for any project (util/db/
    repository_secrets.go `getRepositorySecret` with allowFallback: label `argocd.argoproj.io/secret-type:
    repository`, `url` the same repository, `project` empty); {} when it clones anonymously."""
    found = [
        data
        for labels, data in secrets
        if labels.get("argocd.argoproj.io/secret-type") == "repository"
        and data.get("url", "").removesuffix(".git") == repo_url.removesuffix(".git")
        and not data.get("project")
    ]
    assert len(found) <= 1, f"several repository Secrets for {repo_url}"
    return found[0] if found else {}


def _argocd_syncs(plan: Plan) -> list[Registered]:
    return [r for r in plan.of_type(VSS) if r.inputs["metadata"]["namespace"] == NAMESPACE]


def _repositories_read(plan: Plan) -> set[str]:
    """Every repository the environment's AppProject and ApplicationSet make Argo CD clone."""
    (appset,) = plan.of_type("kubernetes:argoproj.io/v1alpha1:ApplicationSet")
    (project,) = plan.of_type("kubernetes:argoproj.io/v1alpha1:AppProject")
    spec = appset.inputs["spec"]
    return {
        *(g["git"]["repoURL"] for g in spec["generators"]),
        spec["template"]["spec"]["source"]["repoURL"],
        *project.inputs["spec"]["sourceRepos"],
    }


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_a_private_repository_is_cloned_with_the_credentials_in_vault(env: str, tmp_path: Path) -> None:
    plan = build_config(_private(env, tmp_path))
    syncs = _argocd_syncs(plan)
    assert len(syncs) == 1, f"{env}: no VaultStaticSecret gives Argo CD the repository's credentials: {syncs}"
    (vss,) = syncs
    errors = list(
        jsonschema.Draft7Validator(CRDS[("secrets.hashicorp.com/v1beta1", "VaultStaticSecret")]).iter_errors(
            vss.inputs
        )
    )
    assert not errors, f"{vss.urn}: {[f'{list(e.path)}: {e.message}' for e in errors]}"
    (namespace,) = [
        r for r in plan.of_type("kubernetes:core/v1:Namespace") if r.inputs["metadata"]["name"] == NAMESPACE
    ]
    assert depends_on(plan, vss, namespace), f"{vss.urn} does not wait for {namespace.urn}"
    secret = _vso_secret(vss, {**TOKEN, **STRAY})
    for repo_url in _repositories_read(plan):
        used = _argocd_repository([secret], repo_url)
        # The token, and nothing from Vault that would send it elsewhere or skip TLS verification.
        assert used == {**TOKEN, "url": repo_url, "type": "git"}, f"{vss.urn}: Argo CD reads {used}"


def test_a_github_app_in_vault_reaches_argo_cd_whole(private_dev: Plan) -> None:
    (vss,) = _argocd_syncs(private_dev)
    app = {"githubAppID": "1", "githubAppInstallationID": "2", "githubAppPrivateKey": "-----BEGIN ..."}
    _, data = _vso_secret(vss, app)
    assert {key: data.get(key) for key in app} == app, f"{vss.urn}: {sorted(data)}"


def test_no_credential_of_the_repository_is_in_the_plan(private_dev: Plan) -> None:
    """The credentials stay in Vault: nothing Pulumi records in the argocd namespace holds one, or a
    stand-in Argo CD would send to the Git host instead of the real one."""
    in_namespace = [
        r
        for r in private_dev.resources
        if (r.inputs.get("metadata") or {}).get("namespace") == NAMESPACE
        or r.inputs.get("namespace") == NAMESPACE
    ]
    for r in in_namespace:
        assert r.type != "kubernetes:core/v1:Secret", f"{r.urn}: a Secret the plan writes"
        text = json.dumps(r.inputs)
        for key in ("password", "githubAppPrivateKey", "sshPrivateKey", "bearerToken"):
            assert f'"{key}":' not in text, f"{r.urn}: holds {key}"


def test_the_argocd_vault_role_reads_the_repository_path_and_nothing_else(private_dev: Plan) -> None:
    (vss,) = _argocd_syncs(private_dev)
    (auth,) = [
        r
        for r in private_dev.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultAuth")
        if r.inputs["metadata"]["namespace"] == NAMESPACE
    ]
    assert vss.inputs["spec"]["vaultAuthRef"] == auth.inputs["metadata"]["name"], vss.urn
    role = auth.inputs["spec"]["kubernetes"]["role"]
    spec = vss.inputs["spec"]
    read = f"{spec['mount']}/data/{spec['path']}"
    policy = rules(REPO / "platform" / "vault" / "policies" / f"{role}.hcl")
    assert allows(policy, read, "read"), f"{vss.urn}: role {role} cannot read {read}"
    assert policy == {read: ["read"]}, f"role {role} reads more than {read}: {policy}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_public_repository_needs_nothing_in_vault(env: str) -> None:
    """The committed environments' repository is public: no Secret Argo CD would try, no sync that fails
    until someone writes Vault."""
    plan = build(env)
    assert not load_environment(env).services.argocd.repo_private, env
    assert _argocd_syncs(plan) == [], env
    labelled = [r.urn for r in plan.resources if "argocd.argoproj.io/secret-type" in json.dumps(r.inputs)]
    assert labelled == [], f"{env}: {labelled}"


def test_a_private_repository_over_ssh_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"services\.argocd: .*git@github\.com:platform-team/mlplat\.git.*TCP 443 only"
    ):
        _private("dev", tmp_path, repo_url="git@github.com:platform-team/mlplat.git")


def test_a_private_repository_on_another_port_is_refused_with_the_reason(tmp_path: Path) -> None:
    """Argo CD may leave the cluster on 443 alone: a self-hosted server on :8443 was accepted and then
    never reached."""
    with pytest.raises(ConfigError, match=r"services\.argocd: .*port 8443: .*TCP 443 only"):
        _private("prod", tmp_path, repo_url="https://git.corp.test:8443/platform-team/mlplat.git")


def test_the_runbooks_write_the_credentials_whole_and_say_how_to_rotate_them(private_dev: Plan) -> None:
    """VSO writes exactly the keys Vault holds: the path is written from stdin with every key at once
    (a `kv put` of one key would drop the others), and the rotation table of section 9 has its order."""
    (vss,) = _argocd_syncs(private_dev)
    path = vss.inputs["spec"]["path"]
    text = (RUNBOOKS / "vault.md").read_text(encoding="utf-8")
    written = [
        argv
        for argv in vault_commands(text)
        if argv[:2] == ["kv", "put"] and f"-mount={KV_MOUNT}" in argv and argv[-2:] == [path, "-"]
    ]
    assert written, f"no `vault kv put -mount={KV_MOUNT} {path} -` in docs/runbooks/vault.md"
    rotation = text[text.index("## 9. ") : text.index("## 10. ")]
    assert f"\n| `{path}`" in rotation, f"no rotation order for {path} in vault.md section 9"
