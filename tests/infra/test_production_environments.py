"""Production's gates follow `PRODUCTION` in infra/contract.py, never the name "prod": an environment
added as production (here `eu`, after prod, as a second region would be) gets every gate prod has."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from mlplat import registry_gate
from tests.support.checkout_copy import checkout_copy, edit
from tests.support.fake_mlflow import FakeRegistry, serve
from tests.support.lineage import COMPLETE

APP = "iris-classifier"
VERSION = "8"

# Run in the copy (its own infra/ and mlplat/ come first on sys.path): each gate asked about `eu`.
# Arguments: the registry's URL, the app, and a version of it no approval alias is on.
GATES = """
import json
import sys
from pathlib import Path

from infra.config import ConfigError, load_stack_config, read_stack_file
from infra.monitoring_contract import MonitoringContract
from mlplat import promote, registry_gate
from mlplat.findings import RenderedDoc

url, app, version = sys.argv[1:]
found = {}
dev = Path("environments/Pulumi.dev.yaml")
try:
    load_stack_config({**read_stack_file(dev), "environment": "eu"}, "Pulumi.eu.yaml", "eu")
except ConfigError as err:
    found["config"] = str(err)
logging = MonitoringContract.model_validate({
    "fields": {"email": "keep", "amount": "keep"}, "personal": ["email"], "features": ["amount"],
    "prediction": "class", "retention_days": {"dev": 7},
})
found["monitoring"] = logging.violations_for("eu")
try:
    promote.promote(Path.cwd(), "no-such-app", "prod", "eu", None, canary=10)
except Exception as err:
    found["promote"] = str(err)
prod = promote.render_inference_service(Path.cwd(), app, "prod")
prod = promote.with_version(prod, version, f"s3://mlplat-models/{app}/{version}")
eu = RenderedDoc("eu", prod.target, prod.source_file, prod.doc)
found["registry"] = [f.rule for f in registry_gate.check([eu], url, repo_root=Path.cwd())]
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What each gate says about `eu`, a production environment after prod (one copy for the module)."""
    repo = checkout_copy(tmp_path_factory.mktemp("production") / "checkout")
    contract = repo / "infra" / "contract.py"
    edit(contract, 'Literal["dev", "staging", "prod"]', 'Literal["dev", "staging", "prod", "eu"]')
    edit(contract, 'frozenset({"prod"})', 'frozenset({"prod", "eu"})')
    # A passing version the approval alias is not on: what prod refuses (MLP-REGISTRY-APPROVAL).
    tags = {registry_gate.EVALUATION_TAG: registry_gate.EVALUATION_PASSED, **COMPLETE}
    tags[registry_gate.METRIC_TAG_PREFIX + "accuracy"] = "0.99"
    with serve(FakeRegistry()) as fake:
        fake.add_version(APP, VERSION, source=f"s3://mlplat-models/{APP}/{VERSION}", tags=tags)
        result = subprocess.run(
            [sys.executable, "-c", GATES, fake.url, APP, VERSION],
            cwd=repo, capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_an_environment_after_prod_gets_prods_stack_config_rules(gates: dict[str, Any]) -> None:
    """Dev's stack file as `eu`: refused as prod would refuse it (the rules were keyed on "prod")."""
    assert "prod may not weaken security or availability" in gates.get("config", ""), gates
    assert "apps.scale_to_zero: prod models never scale to zero" in gates["config"], gates


def test_an_environment_after_prod_may_not_log_personal_fields_raw(gates: dict[str, Any]) -> None:
    assert gates["monitoring"] == ["personal field 'email' is kept raw in eu: hash or drop it"], gates


def test_an_environment_after_prod_takes_canaries(gates: dict[str, Any]) -> None:
    """`--canary` to `eu` passes the canary rule and stops only at the app, which does not exist."""
    assert gates["promote"].startswith("unknown app 'no-such-app'"), gates


def test_an_environment_after_prod_needs_the_approval_alias(gates: dict[str, Any]) -> None:
    """prod's overlay judged as `eu`, at a passing version no alias approves."""
    assert "MLP-REGISTRY-APPROVAL" in gates["registry"], gates
