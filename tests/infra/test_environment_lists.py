"""The environments have one owner, `ENVIRONMENTS` in infra/contract.py (promotion order). What can read it
does (the program, the tools, the Makefile, the pr and drift workflows); the places that must spell the
list out are held to it here, each failure naming the file and what to write there."""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.contract import ENVIRONMENTS
from tests.support.checkout_copy import add_environment_to_the_contract, checkout_copy
from tests.support.delivery_helpers import terraform, workflow


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


# --- The places that must spell the environments out -------------------------------------------------
# GitHub reads a `workflow_dispatch` choice's options and a workflow's jobs before anything runs, and each
# deploy job has its own GitHub environment, runner and place in the dev → staging → prod chain; the
# bootstrap's Terraform is applied once per account, before any checkout of this repository exists.

DEPLOY = ".github/workflows/deploy.yml"
PROMOTE = ".github/workflows/promote.yml"
_QUOTED = re.compile(r'"([^"]+)"')


def _listed_in(expression: str, call: str) -> list[str] | None:
    """The quoted names of the list literal passed to `call(` in an HCL expression, None when absent."""
    found = re.search(rf"{call}\(\[([^\]]*)\]", expression)
    return _QUOTED.findall(found[1]) if found else None


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def _deploy_chain(environments: Sequence[str]) -> list[str]:
    jobs = {job_id: job for job_id, job in workflow("deploy.yml")["jobs"].items() if "environment" in job}
    problems = [
        f"{DEPLOY}: job `{job_id}` deploys an environment infra/contract.py does not have: remove it"
        for job_id in jobs
        if job_id not in environments
    ]
    for previous, env in zip([None, *environments], environments, strict=False):
        wants = f"needs `{previous}`" if previous else "needs no other job"
        if env not in jobs:
            problems.append(
                f"{DEPLOY}: no job `{env}`: add one (GitHub environment `{env}`, its own runner) that {wants}"
            )
        elif _needs(jobs[env]) != ([previous] if previous else []):
            problems.append(f"{DEPLOY}: job `{env}` needs {_needs(jobs[env])}: it {wants}")
    return problems


def _promotion_choices(environments: Sequence[str]) -> list[str]:
    promote = workflow("promote.yml")
    inputs = promote["on"]["workflow_dispatch"]["inputs"]
    problems = [
        f"{PROMOTE}: inputs.{name}.options are {inputs[name]['options']}: write {expected} ({why})"
        for name, expected, why in (
            ("from", list(environments[:-1]), "every environment but the last, in promotion order"),
            ("to", list(environments[1:]), "every environment but the first, in promotion order"),
        )
        if inputs[name]["options"] != expected
    ]
    (check,) = [s for s in promote["jobs"]["promote"]["steps"] if s.get("name") == "Check inputs"]
    pairs = re.findall(r'"(\w+)>(\w+)"', check["run"])
    steps = list(itertools.pairwise(environments))
    if pairs != steps:
        admitted, allowed = ("|".join(f'"{a}>{b}"' for a, b in p) for p in (pairs, steps))
        problems.append(
            f"{PROMOTE}: step `Check inputs` admits {admitted}: write {allowed} (each step of the order)"
        )
    return problems


def _bootstrap_lists(environments: Sequence[str]) -> list[str]:
    tf = terraform()
    wanted = set(environments)
    problems = []
    variable = tf["variable"]["environments"]
    if set(variable["default"]) != wanted:
        problems.append(
            f"infra/bootstrap/variables.tf: var.environments default is {variable['default']}: write {list(environments)}"
        )
    (validation,) = variable["validation"]
    allowed = _listed_in(validation["condition"], "contains")
    if allowed is None or set(allowed) != wanted:
        problems.append(
            f"infra/bootstrap/variables.tf: var.environments admits {allowed} (its validation's contains([...])): "
            f"write {list(environments)}, and name them in its error_message"
        )
    problems += _runner_shares(tf, environments)
    others = tf["locals"]["other_environments"]
    expected = {env: [other for other in environments if other != env] for env in environments}
    if {env: set(names) for env, names in others.items()} != {
        env: set(names) for env, names in expected.items()
    }:
        problems.append(
            f"infra/bootstrap/deploy_roles.tf: local.other_environments is {others}: write {expected}"
        )
    return problems


def _runner_shares(tf: dict[str, Any], environments: Sequence[str]) -> list[str]:
    """runners.tf gives each environment the share of the runner VPC at its position in a list: a new
    one is appended (reordering moves every later environment's subnets), and its share must be free."""
    where = "infra/bootstrap/runners.tf: local.runner_environment_cidr"
    expression = tf["locals"]["runner_environment_cidr"]
    listed = _listed_in(expression, "index") or []
    missing = [env for env in environments if env not in listed]
    unknown = [env for env in listed if env not in environments]
    problems = []
    if missing:
        problems.append(
            f"{where}: index([...]) lists {listed}: append {missing} at its end (an environment's "
            "place there is its share of the runner VPC: never reorder it)"
        )
    if unknown:
        problems.append(f"{where}: index([...]) lists {unknown}, which infra/contract.py does not have")
    # Shares of the same size taken by a literal index elsewhere (the NAT subnet's) are not free.
    size = re.search(r"cidrsubnet\(var\.runner_vpc_cidr, (\d+), index\(", expression)
    if size:
        taken = {
            int(k)
            for k in re.findall(rf"cidrsubnet\(var\.runner_vpc_cidr, {size[1]}, (\d+)\)", str(tf["resource"]))
        }
        clash = [
            env
            for position, env in enumerate([*listed, *missing])
            if position in taken or position >= 2 ** int(size[1])
        ]
        if clash:
            problems.append(
                f"{where}: no free share of the runner VPC for {clash} (shares of newbits {size[1]}, "
                f"taken elsewhere: {sorted(taken)}): lay the runner VPC out anew"
            )
    return problems


def places_that_disagree(environments: Sequence[str]) -> list[str]:
    """Every place that must spell out the environments and does not list `environments`, with what to write."""
    return [*_deploy_chain(environments), *_promotion_choices(environments), *_bootstrap_lists(environments)]


def test_every_place_that_must_list_the_environments_lists_the_contracts() -> None:
    assert places_that_disagree(ENVIRONMENTS) == []


def test_an_environment_added_to_the_contract_alone_is_named_in_every_place_that_lists_them() -> None:
    """`qa` in infra/contract.py and nowhere else: each of these files is named, with qa in what to write."""
    with_qa = ("dev", "qa", "staging", "prod")
    problems = places_that_disagree(with_qa)
    for place in (
        DEPLOY,
        PROMOTE,
        "variables.tf: var.environments default",
        "variables.tf: var.environments admits",
        "runners.tf",
        "deploy_roles.tf",
    ):
        named = [p for p in problems if place in p]
        assert named and all("qa" in p for p in named), (place, problems)
    assert (
        f"{DEPLOY}: no job `qa`: add one (GitHub environment `qa`, its own runner) that needs `dev`"
        in problems
    )
    assert f"{DEPLOY}: job `staging` needs ['dev']: it needs `qa`" in problems
