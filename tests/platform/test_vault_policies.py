"""Vault's policies as Vault reads them.

Vault parses a policy with HCL 1 (hashicorp/vault vault/policy.go imports github.com/hashicorp/hcl and
its hcl/ast, not hcl/v2), the grammar pyhcl ports; python-hcl2, which the other tests read the
policies with, accepts forms HCL 1 may read differently. Every file under platform/vault/ is written
with `vault policy write` (docs/runbooks/vault.md), so each must read as path rules and nothing else."""

from __future__ import annotations

from pathlib import Path

import hcl  # pyhcl
import pytest

from tests.support.harness import REPO

POLICIES = sorted((REPO / "platform" / "vault").rglob("*.hcl"))


def test_the_policies_are_found() -> None:
    assert len(POLICIES) >= 2, POLICIES


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: str(p.relative_to(REPO)))
def test_vault_reads_every_policy_as_path_rules_with_capabilities(policy: Path) -> None:
    parsed = hcl.loads(policy.read_text())
    assert set(parsed) == {"path"}, f"{policy}: {parsed}"
    for path, rule in parsed["path"].items():
        assert set(rule) == {"capabilities"} and rule["capabilities"], f"{policy}: {path}: {rule}"
