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
def test_vault_reads_every_policy_as_read_only_path_rules(policy: Path) -> None:
    """Every consumer reads secrets and nothing else. A second rule for one path would be merged by
    Vault (vault/policy.go parsePaths keeps every `path` item) but folded by this parser into the
    last, so the rules counted in the text must be the rules parsed."""
    text = policy.read_text()
    parsed = hcl.loads(text)
    assert set(parsed) == {"path"}, f"{policy}: {parsed}"
    written = [line for line in text.splitlines() if line.startswith("path ")]
    assert len(written) == len(parsed["path"]), f"{policy}: a path is written twice: {written}"
    for path, rule in parsed["path"].items():
        assert rule == {"capabilities": ["read"]}, f"{policy}: {path}: {rule}"
