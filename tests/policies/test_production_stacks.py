"""The policy pack's production-only policies follow `PRODUCTION` in infra/contract.py, not the stack
name "prod": a stack added as production (`eu`, after prod) is held to every one of them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.support.checkout_copy import checkout_copy, edit
from tests.support.harness import REPO

POLICY_PYTHON = REPO / ".venv-policy" / "bin" / "python"
PLAN = REPO / "tests" / "fixtures" / "plans" / "pulumi-pack-violations-prod.json"
CONFIG = REPO / "tests" / "fixtures" / "plans" / "pulumi-pack-policy-config-plaintext.json"


def _policies_broken(repo: Path, plan: Path) -> Counter[str]:
    """Each policy's count of violations, as the copy's own pack reports them over `plan`."""
    result = subprocess.run(
        [str(POLICY_PYTHON), str(repo / "policies" / "pulumi" / "offline.py"), str(plan), "--policy-config", str(CONFIG)],
        capture_output=True, text=True, check=False, cwd=repo, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return Counter(v["policy"] for v in json.loads(result.stdout))


def test_a_production_stack_after_prod_breaks_what_prod_breaks(tmp_path: Path) -> None:
    if not POLICY_PYTHON.exists():
        pytest.fail(f"{POLICY_PYTHON} is missing: `make setup` creates .venv-policy")
    repo = checkout_copy(tmp_path / "checkout")
    shutil.copytree(REPO / "policies" / "pulumi", repo / "policies" / "pulumi")
    contract = repo / "infra" / "contract.py"
    edit(contract, 'Literal["dev", "staging", "prod"]', 'Literal["dev", "staging", "prod", "eu"]')
    edit(contract, 'frozenset({"prod"})', 'frozenset({"prod", "eu"})')
    eu = tmp_path / "eu.json"
    plan = json.loads(PLAN.read_text())
    plan["stack"] = "eu"
    eu.write_text(
        json.dumps(plan).replace("urn:pulumi:prod::", "urn:pulumi:eu::").replace("mlplat-prod", "mlplat-eu")
    )
    as_prod = _policies_broken(repo, PLAN)
    assert "protect-stateful-prod" in as_prod, as_prod  # the fixture breaks prod-only policies
    assert _policies_broken(repo, eu) == as_prod
