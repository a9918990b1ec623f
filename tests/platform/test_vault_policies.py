"""Vault's policies as Vault reads them, and as the runbooks load and use them.

Vault parses a policy with HCL 1 (hashicorp/vault vault/policy.go imports github.com/hashicorp/hcl and
its hcl/ast, not hcl/v2), the grammar pyhcl ports; python-hcl2, which the other tests read the
policies with, accepts forms HCL 1 may read differently. Every file under platform/vault/ is written
with `vault policy write` (docs/runbooks/vault.md). The consumers' policies read secrets and nothing
else; `platform-admin` is what the platform engineers work with once the root token is revoked, so it
must allow every `vault` command the runbooks give from then on."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

import hcl  # pyhcl
import pytest

from infra.contract import ENVIRONMENTS
from tests.support.harness import REPO, build
from tests.support.runbook import RUNBOOKS, sections, synced_paths, vault_commands
from tests.support.vault_acl import allows, needs, rules

POLICIES = sorted((REPO / "platform" / "vault").rglob("*.hcl"))
ADMIN = REPO / "platform" / "vault" / "platform-admin.hcl"
CONSUMERS = [p for p in POLICIES if p != ADMIN]
# vault.md sections run with a root token (1, 2: bootstrap; 5: recovery, a root token generated from
# the recovery keys) or only `vault status` / `operator` in a server pod (6).
ROOT_SECTIONS = ("1.", "2.", "5.", "6.")


def test_the_policies_are_found() -> None:
    assert len(CONSUMERS) >= 2, POLICIES
    assert ADMIN in POLICIES, f"{ADMIN} is missing: the runbooks' admin access needs it"


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: str(p.relative_to(REPO)))
def test_vault_reads_every_policy_as_path_rules(policy: Path) -> None:
    """A second rule for one path would be merged by Vault (vault/policy.go parsePaths keeps every
    `path` item) but folded by this parser into the last, so the rules counted in the text must be
    the rules parsed."""
    text = policy.read_text()
    parsed = hcl.loads(text)
    assert set(parsed) == {"path"}, f"{policy}: {parsed}"
    written = [line for line in text.splitlines() if line.startswith("path ")]
    assert len(written) == len(parsed["path"]), f"{policy}: a path is written twice: {written}"


@pytest.mark.parametrize("policy", CONSUMERS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_consumer_policy_reads_and_nothing_else(policy: Path) -> None:
    for path, capabilities in rules(policy).items():
        assert capabilities == ["read"], f"{policy}: {path}: {capabilities}"


def _admin_commands() -> list[list[str]]:
    """Every `vault` command of the runbooks that runs after the root token is revoked."""
    texts = [text for title, text in sections("vault.md").items() if not title.startswith(ROOT_SECTIONS)]
    texts += [
        doc.read_text(encoding="utf-8") for doc in sorted(RUNBOOKS.glob("*.md")) if doc.name != "vault.md"
    ]
    texts.append((REPO / "docs" / "alerts.md").read_text(encoding="utf-8"))
    return vault_commands(*texts)


def _concrete(argv: list[str]) -> list[list[str]]:
    """The commands a loop runs: `$ns` is each role policy's namespace (vault.md section 3), `$path`
    each path the program syncs (the section 4 loop writes them all); other variables stay."""
    values = {
        "$ns": [p.stem for p in sorted((REPO / "platform" / "vault" / "policies").glob("*.hcl"))],
        "$path": sorted({path for env in ENVIRONMENTS for path in synced_paths(build(env)).values()}),
    }
    for variable, options in values.items():
        if any(variable in word for word in argv):
            return [[word.replace(variable, option) for word in argv] for option in options]
    return [argv]


def test_every_policy_file_is_loaded_by_a_runbook() -> None:
    """A policy file no runbook writes never reaches Vault: its role or token gets nothing."""
    written = [
        argv[3]
        for argv in vault_commands(*(doc.read_text(encoding="utf-8") for doc in RUNBOOKS.glob("*.md")))
        if argv[:2] == ["policy", "write"] and len(argv) > 3
    ]
    files = [re.sub(r'^"|"$', "", w).replace("$file", "platform/vault/policies/*.hcl") for w in written]
    unloaded = [
        str(p.relative_to(REPO))
        for p in POLICIES
        if not any(fnmatchcase(str(p.relative_to(REPO)), f) for f in files)
    ]
    assert not unloaded, f"no `vault policy write` in docs/runbooks loads {unloaded}"


def test_platform_admin_allows_every_command_the_runbooks_give_after_root_is_revoked() -> None:
    admin = rules(ADMIN)
    commands = _admin_commands()
    assert any(argv[:2] == ["policy", "write"] for argv in commands), "no admin command found"
    refused = [
        (" ".join(argv), path, capability)
        for loop in commands
        for argv in _concrete(loop)
        for path, capability in needs(argv)
        if not allows(admin, path, capability)
    ]
    assert not refused, f"{ADMIN.name} refuses what the runbooks ask a platform admin to run: {refused}"


def test_platform_admin_cannot_grant_itself_more() -> None:
    """No sudo, no rule over its own policy or over Vault's configuration (auth methods, mounts, audit,
    seal): those stay with a root token generated from the recovery keys."""
    admin = rules(ADMIN)
    assert not [p for p, caps in admin.items() if "sudo" in caps], admin
    for path in (
        "sys/policies/acl/platform-admin",
        "sys/auth/userpass",
        "sys/mounts/kv",
        "sys/audit/file",
        "auth/token/roles/prometheus-metrics",
        "auth/oidc/role/platform-admin",
        "auth/userpass/users/someone",
        "auth/token/create",
    ):
        assert not allows(admin, path, "update"), f"{ADMIN.name} may write {path}"
