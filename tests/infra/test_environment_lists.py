"""The environments have one owner, `ENVIRONMENTS` in infra/contract.py (promotion order). What can read it
does (the program, the tools, the Makefile, the pr and drift workflows); the files that must spell the list
out (the deploy and promote workflows, the bootstrap's locals) are written from it by `mlplat generate`, so
adding one is an edit of the contract plus `make generate`, shown here for `qa`."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.checkout_copy import add_environment_to_the_contract, checkout_copy, mlplat
from tests.support.workflow_steps import jobs


def _make(repo: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(repo), *argv], capture_output=True, text=True, check=False)


def test_make_plans_plans_an_environment_added_to_the_contract(tmp_path: Path) -> None:
    """`ENVS` in the Makefile listed dev, staging and prod again: `make plans` skipped `qa`."""
    repo = checkout_copy(tmp_path / "checkout")
    add_environment_to_the_contract(repo)
    # -n prints the commands; -o takes the virtualenvs as made, so the copy needs none.
    plans = _make(repo, "-n", "-o", ".venv/bin/.installed", "-o", ".venv-policy/.installed", "plans")
    assert plans.returncode == 0, plans.stderr
    assert "for e in dev qa staging prod; do .venv/bin/mlplat plan --env $e" in plans.stdout, plans.stdout


def test_make_help_runs_before_python_is_there(tmp_path: Path) -> None:
    """Reading the environments costs a Python start; a target that does not use them never pays it,
    and one that does stops with the reason when the contract cannot be read."""
    repo = checkout_copy(tmp_path / "checkout")
    assert _make(repo, "help", "PYTHON=false").returncode == 0
    plans = _make(
        repo, "-n", "-o", ".venv/bin/.installed", "-o", ".venv-policy/.installed", "plans", "PYTHON=false"
    )
    assert plans.returncode == 2, plans.stdout
    assert "cannot read the environments from infra/contract.py" in plans.stderr, plans.stderr


# --- The files GitHub and Terraform read before any Python runs: generated -----------------------------

WITH_QA = ["dev", "qa", "staging", "prod"]
GENERATED = (
    ".github/workflows/deploy.yml",
    ".github/workflows/promote.yml",
    "infra/bootstrap/contract.tf.json",
)


def _admitted(repo: Path, source: str, target: str) -> bool:
    """Whether promote.yml's `Check inputs` step, run as GitHub runs it (bash -e, inputs through env), lets
    a promotion from `source` to `target` go on."""
    (check,) = [s for s in jobs("promote.yml", repo)["promote"]["steps"] if s.get("name") == "Check inputs"]
    env = {"APP": "iris-classifier", "FROM": source, "TO": target, "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        ["bash", "-e", "-c", check["run"]], env=env, capture_output=True, text=True, check=False
    )
    return run.returncode == 0


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout copy after the two steps: `qa` in the contract (between dev and staging), `make generate`.
    Before generating, `--check` names each file that lists the environments."""
    repo = checkout_copy(tmp_path_factory.mktemp("qa") / "checkout")
    add_environment_to_the_contract(repo)
    check = mlplat(repo, "generate", "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert sorted(line.split(":")[0] for line in check.stdout.splitlines()) == sorted(GENERATED), check.stdout
    generated = mlplat(repo, "generate")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert mlplat(repo, "generate", "--check").returncode == 0
    return repo


def test_an_environment_added_to_the_contract_is_deployed_in_its_place_after_make_generate(
    repo: Path,
) -> None:
    """deploy.yml's chain was three hand-kept jobs: `qa` in the contract got no deploy job of its own."""
    deploy = jobs("deploy.yml", repo)
    assert list(deploy) == WITH_QA
    assert [deploy[env].get("needs") for env in WITH_QA] == [None, "dev", "qa", "staging"]
    qa = deploy["qa"]
    assert qa["runs-on"] == "codebuild-mlplat-github-runner-qa-${{ github.run_id }}-${{ github.run_attempt }}"
    assert qa["environment"] == {"name": "qa"}
    assert qa["concurrency"] == {"group": "pulumi-qa", "cancel-in-progress": False}
    assert [s["run"] for s in qa["steps"] if "mlplat preflight" in s.get("run", "")] == [
        ".venv/bin/mlplat preflight --env qa"
    ]
    # Every job is the one template filled in: staging's job with `qa` for `staging` is qa's, but for needs.
    staging = (
        json.dumps(deploy["staging"]).replace("staging", "qa").replace('"needs": "qa"', '"needs": "dev"')
    )
    assert json.loads(staging) == qa


def test_an_environment_added_to_the_contract_is_one_promotion_step_after_make_generate(
    repo: Path,
) -> None:
    """promote.yml offered and admitted dev → staging → prod only: qa could be neither left nor reached."""
    promote = yaml.safe_load((repo / ".github" / "workflows" / "promote.yml").read_text())
    inputs = promote[True]["workflow_dispatch"]["inputs"]  # YAML 1.1 reads the key `on` as True
    assert inputs["from"]["options"] == ["dev", "qa", "staging"]
    assert inputs["to"]["options"] == ["qa", "staging", "prod"]
    admitted = [(a, b) for a, b in itertools.product(WITH_QA, WITH_QA) if _admitted(repo, a, b)]
    assert admitted == [("dev", "qa"), ("qa", "staging"), ("staging", "prod")]


def test_an_environment_added_to_the_contract_gets_a_free_runner_share_after_make_generate(
    repo: Path,
) -> None:
    """The bootstrap listed the environments again: `qa` got no runner, and a share by position would
    have moved staging's and prod's runner subnets."""
    local = json.loads((repo / "infra" / "bootstrap" / "contract.tf.json").read_text())["locals"]
    assert local["contract_environments"] == WITH_QA
    assert local["runner_shares"] == {"dev": 0, "qa": 3, "staging": 1, "prod": 2}
