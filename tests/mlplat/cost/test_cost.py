"""`mlplat cost`: hand-computed figures for a small plan, every environment priced and within its budget,
the budget refused by `mlplat plan`, and bad input as one message with exit 2."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra import versions
from infra.config import ENVIRONMENTS, load_environment
from infra.prices import CostError, load_prices
from mlplat.cost import CLAIMS, budget_of, estimate, price_plan, render_diff
from tests.support.checkout_copy import add_environment_to_the_contract, checkout_copy, mlplat
from tests.support.clock import either_side_of_utc_midnight, stopped_clock
from tests.support.prices import price_table

PlanFor = Callable[[str], dict[str, Any]]
# A day Kubernetes 1.34 (small_plan's, and every stack's) is in standard support: the figures below do
# not move with the calendar (infra/versions.py EKS_SUPPORT_CALENDAR).
IN_STANDARD_SUPPORT = date(2026, 12, 1)

# Round prices, so the arithmetic below can be checked by hand.
PRICE_TABLE = price_table(
    "xx-test-1",
    {
        "m6i.large": ("0.10", True),
        "m6i.xlarge": ("0.20", True),
        "g5.xlarge": ("1.00", False),
        "g5.12xlarge": ("5.00", False),
    },
)


def _resource(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"urn": f"urn:pulumi:test::mlplat::{type_}::{name}", "type": type_, "name": name, "inputs": inputs}


def small_plan() -> dict[str, Any]:
    """One of everything the estimate prices, sized so each line is easy to compute."""
    return {
        "kind": "offline-plan",
        "stack": "dev",
        "resources": [
            _resource("aws:eks/cluster:Cluster", "eks", {"version": "1.34"}),
            _resource("aws:ec2/natGateway:NatGateway", "nat", {}),
            _resource("aws:ec2/eip:Eip", "nat-ip", {"domain": "vpc"}),
            _resource(
                "aws:ec2/launchTemplate:LaunchTemplate",
                "system-node",
                {
                    "blockDeviceMappings": [{"ebs": {"volumeSize": 50.0, "volumeType": "gp3"}}],
                },
            ),
            _resource(
                "aws:eks/nodeGroup:NodeGroup",
                "system",
                {
                    "nodeGroupName": "system",
                    "instanceTypes": ["m6i.large", "m6i.xlarge"],
                    "scalingConfig": {"minSize": 2.0, "desiredSize": 2.0, "maxSize": 3.0},
                    "launchTemplate": {"id": "system-node-0123", "version": "1"},
                },
            ),
            _resource(
                "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
                "gpu-class",
                {
                    "metadata": {"name": "gpu"},
                    "spec": {"blockDeviceMappings": [{"ebs": {"volumeSize": "100Gi", "volumeType": "gp3"}}]},
                },
            ),
            _resource(
                "kubernetes:karpenter.sh/v1:NodePool",
                "gpu",
                {
                    "metadata": {"name": "gpu"},
                    "spec": {
                        "limits": {"nvidia.com/gpu": "3", "cpu": "8"},
                        "template": {
                            "spec": {
                                "nodeClassRef": {"name": "gpu"},
                                "requirements": [
                                    {
                                        "key": "node.kubernetes.io/instance-type",
                                        "operator": "In",
                                        "values": ["g5.xlarge", "g5.12xlarge"],
                                    },
                                    {
                                        "key": "karpenter.sh/capacity-type",
                                        "operator": "In",
                                        "values": ["spot"],
                                    },
                                ],
                            }
                        },
                    },
                },
            ),
            _resource(
                "kubernetes:storage.k8s.io/v1:StorageClass",
                "gp3",
                {
                    "metadata": {"name": "gp3-retain"},
                    "parameters": {"type": "gp3"},
                },
            ),
            _resource(
                "kubernetes:helm.sh/v3:Release",
                "minio",
                {
                    "chart": "minio",
                    "values": {
                        "mode": "distributed",
                        "replicas": 4.0,
                        "persistence": {"size": "10Gi", "storageClass": "gp3-retain"},
                    },
                },
            ),
            _resource("aws:cloudwatch/logGroup:LogGroup", "logs", {"retentionInDays": 30.0}),
            _resource("aws:kms/key:Key", "key-a", {}),
            _resource("aws:kms/key:Key", "key-b", {}),
            _resource("kubernetes:gateway.networking.k8s.io/v1:Gateway", "inference", {}),
        ],
    }


@pytest.fixture
def prices(tmp_path: Path) -> Any:
    path = tmp_path / "prices.yaml"
    path.write_text(PRICE_TABLE)
    return load_prices(path)


def _line(result: Any, start: str) -> Any:
    [line] = [line for line in result.lines if line.item.startswith(start)]
    return line


def test_small_plan_costs_what_the_arithmetic_says(prices: Any) -> None:
    result = estimate(small_plan(), "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)
    expected = {  # item: (idle, max), USD a month, 730 hours
        "EKS control plane": (0.10 * 730, 0.10 * 730),  # 73.00
        "NAT gateways": (0.05 * 730, 0.05 * 730),  # 36.50
        "public IPv4": (0.01 * 730, 0.01 * 730),  # 7.30
        "NLB": (0.02 * 730, 0.02 * 730),  # 14.60: the Gateway brings one
        # idle: 2 x the first listed type (m6i.large); max: 3 x the dearest (m6i.xlarge)
        "node group system": (2 * 0.10 * 730, 3 * 0.20 * 730),  # 146.00, 438.00
        "root volumes of node group": (2 * 50 * 0.10, 3 * 50 * 0.10),  # 10.00, 15.00
        # gpu=3 alone allows 3 x g5.xlarge (2190); cpu=8 allows 2 x g5.xlarge (4 vCPU each): the tighter wins.
        # A g5.12xlarge (4 GPUs, 48 vCPU) fits neither.
        "Karpenter pool gpu": (0.0, 2 * 1.00 * 730),  # 1460.00
        "root volumes of pool gpu": (0.0, 2 * 100 * 0.10),  # 20.00
        # distributed MinIO: 4 replicas x 1 drive (chart default drivesPerNode) x 1 pool x 10 GiB
        "MinIO drives": (4 * 10 * 0.10, 4 * 10 * 0.10),  # 4.00
        # 20 GiB ingested at 0.50, 30 days kept = 20 GiB stored at 0.03
        "CloudWatch Logs": (20 * 0.50 + 20 * 0.03, 20 * 0.50 + 20 * 0.03),  # 10.60
        "KMS": (2 * 1.00, 2 * 1.00),  # 2.00
    }
    for start, (idle, top) in expected.items():
        line = _line(result, start)
        assert (line.idle, line.max) == pytest.approx((idle, top)), line
    assert len(result.lines) == len(expected)
    assert result.idle == pytest.approx(304.00)
    assert result.max == pytest.approx(2081.00)
    # Only the GPU prices are unconfirmed in this table, so only the GPU pool line is marked.
    assert [line.item for line in result.lines if line.unverified] == [
        _line(result, "Karpenter pool gpu").item
    ]


def test_static_karpenter_pool_costs_its_replicas_when_idle(prices: Any) -> None:
    plan = small_plan()
    pool = next(r for r in plan["resources"] if r["type"] == "kubernetes:karpenter.sh/v1:NodePool")
    pool["inputs"]["spec"]["replicas"] = 1
    result = estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)
    # One node always up, priced at the dearest type it may launch (g5.12xlarge): 5.00 x 730.
    assert _line(result, "Karpenter pool gpu").idle == pytest.approx(5.00 * 730)
    assert _line(result, "root volumes of pool gpu").idle == pytest.approx(100 * 0.10)


def test_pool_without_limits_has_no_maximum(prices: Any) -> None:
    plan = small_plan()
    pool = next(r for r in plan["resources"] if r["type"] == "kubernetes:karpenter.sh/v1:NodePool")
    del pool["inputs"]["spec"]["limits"]
    result = estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)
    assert _line(result, "Karpenter pool gpu").max is None
    assert result.max is None, "a pool without limits must make the whole maximum unbounded"


def test_pool_of_an_unpriced_instance_type_is_refused_by_name(prices: Any) -> None:
    plan = small_plan()
    pool = next(r for r in plan["resources"] if r["type"] == "kubernetes:karpenter.sh/v1:NodePool")
    pool["inputs"]["spec"]["template"]["spec"]["requirements"][0]["values"].append("g6e.xlarge")
    with pytest.raises(CostError, match=r"instance type g6e\.xlarge has no xx-test-1 price"):
        estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)


def test_load_balancer_absent_is_said_not_priced(prices: Any) -> None:
    plan = small_plan()
    plan["resources"] = [r for r in plan["resources"] if not r["type"].endswith(":Gateway")]
    result = estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)
    assert not [line for line in result.lines if "NLB" in line.item]
    assert any("no load balancer in the plan" in note for note in result.notes)


def test_load_balancer_service_annotation_brings_an_nlb(prices: Any) -> None:
    plan = small_plan()
    plan["resources"] = [r for r in plan["resources"] if not r["type"].endswith(":Gateway")]
    plan["resources"].append(
        _resource(
            "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy",
            "proxy",
            {
                "spec": {
                    "provider": {
                        "kubernetes": {
                            "envoyService": {
                                "annotations": {
                                    "service.beta.kubernetes.io/aws-load-balancer-type": "external"
                                }
                            }
                        }
                    }
                },
            },
        )
    )
    assert _line(estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT), "NLB").max == pytest.approx(
        0.02 * 730
    )


def test_diff_shows_what_a_bigger_gpu_limit_adds(prices: Any) -> None:
    base = estimate(small_plan(), "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)
    bigger = small_plan()
    pool = next(r for r in bigger["resources"] if r["type"] == "kubernetes:karpenter.sh/v1:NodePool")
    pool["inputs"]["spec"]["limits"] = {"nvidia.com/gpu": "4"}
    head = estimate(bigger, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)
    markdown = render_diff(base, head)
    # 4 GPUs: one g5.12xlarge (3650) beats four g5.xlarge (2920): +2190 on the pool, +20 root volume
    # (1 node instead of 2: -10)... precisely: pool 1460 -> 3650 (+2190); volumes 20 -> 10 (-10).
    assert "| **change** | **+0.00** | **+2,180.00** |" in markdown, markdown
    assert "+2,190.00" in markdown and "-10.00" in markdown


# --- the real environments -------------------------------------------------------------------------


def _claims_in(values: Any) -> int:
    """Storage requests anywhere in a release's values: each needs a CLAIMS rule to be priced."""
    if isinstance(values, dict):
        own = 1 if ("storageClass" in values and "size" in values) or "volumeClaimTemplate" in values else 0
        return own + sum(_claims_in(v) for v in values.values())
    if isinstance(values, list):
        return sum(_claims_in(v) for v in values)
    return 0


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_is_priced_within_its_budget(offline_plan: PlanFor, env: str) -> None:
    # Priced on the first day of extended support, the dearest day its pinned version can be billed.
    day = versions.EKS_SUPPORT_CALENDAR[load_environment(env).cluster.kubernetes_version].standard_ends
    result = price_plan(offline_plan(env), on=day)
    budget = budget_of(offline_plan(env), env, load_prices(), day)
    assert budget is not None, f"{env}: no cost.max_monthly_usd"
    assert result.max is not None and 0 < result.idle < result.max
    assert budget.kept, f"{env}: {budget.maximum} in a 31-day month, above the budget {budget.usd}"
    assert any(line.item.startswith("Karpenter pool") for line in result.lines)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_readme_cost_table_is_what_the_plans_cost(offline_plan: PlanFor, repo_root: Path, env: str) -> None:
    """The README's figures are the ones a budget owner reads first: a stale row misleads them."""
    rows = {
        cells[0]: cells[1:]
        for line in (repo_root / "README.md").read_text().splitlines()
        if (cells := [c.strip() for c in line.strip().strip("|").split("|")]) and len(cells) == 5
    }
    assert env in rows, f"README.md, section Cost: no row for {env}"
    # The day the table says it was priced on: the control plane's price depends on it.
    [day] = re.findall(r"\(`mlplat cost --env ENV` on ([0-9-]{10});", (repo_root / "README.md").read_text())
    result = price_plan(offline_plan(env), on=date.fromisoformat(day))
    budget = budget_of(offline_plan(env), env, load_prices(), date.fromisoformat(day))
    assert budget is not None and budget.maximum is not None and result.max is not None
    expected = [
        f"${result.idle:,.2f}",
        f"${result.max:,.2f}",
        f"${budget.maximum:,.2f}",
        f"${budget.usd:,.0f}",
    ]
    assert rows[env] == expected, (
        f"README.md, section Cost, row {env}: `mlplat cost --env {env} --on {day}` says {expected}"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_persistent_volume_in_the_plan_goes_unpriced(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    requested = sum(
        _claims_in(r["inputs"].get("values"))
        for r in plan["resources"]
        if r["type"] == "kubernetes:helm.sh/v3:Release"
    )
    priced = [
        line for line in price_plan(plan).lines if any(line.item.startswith(f"{c.label}:") for c in CLAIMS)
    ]
    assert len(priced) == requested, (
        f"{env}: a chart requests storage that mlplat/cost.py CLAIMS does not price"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_gpu_pools_idle_at_zero(offline_plan: PlanFor, env: str) -> None:
    result = price_plan(offline_plan(env))
    pools = [line for line in result.lines if line.item.startswith("Karpenter pool")]
    assert pools and all(line.idle == 0 for line in pools)


def test_a_control_plane_past_standard_support_is_billed_at_the_extended_price(prices: Any) -> None:
    """Standard support of 1.34 ends on its calendar day: from then each cluster-hour is $0.60, not $0.10."""
    ends = versions.EKS_SUPPORT_CALENDAR["1.34"].standard_ends
    before = estimate(small_plan(), "xx-test-1", 20, prices, ends - timedelta(days=1))
    after = estimate(small_plan(), "xx-test-1", 20, prices, ends)
    assert "standard support" in _line(before, "EKS control plane").item
    assert _line(before, "EKS control plane").idle == pytest.approx(0.10 * 730)  # 73.00
    assert "extended support" in _line(after, "EKS control plane").item
    assert _line(after, "EKS control plane").idle == pytest.approx(0.60 * 730)  # 438.00
    assert after.idle - before.idle == pytest.approx(0.50 * 730)
    # Past extended support AWS upgrades the cluster to an extended version: still billed as extended.
    gone = versions.EKS_SUPPORT_CALENDAR["1.34"].extended_ends
    assert _line(
        estimate(small_plan(), "xx-test-1", 20, prices, gone), "EKS control plane"
    ).idle == pytest.approx(438.0)


def test_a_cluster_version_without_support_dates_is_refused_naming_the_cluster(prices: Any) -> None:
    plan = small_plan()
    plan["resources"][0]["inputs"]["version"] = "1.99"
    with pytest.raises(
        CostError, match=r"aws:eks/cluster:Cluster::eks: Kubernetes version '1.99' has no support"
    ):
        estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)


def test_every_version_a_stack_may_pin_has_support_dates() -> None:
    """A version with add-on pins but no calendar entry would be a stack `mlplat cost` cannot price."""
    assert set(versions.EKS_SUPPORT_CALENDAR) == set(versions.EKS_ADDONS)
    for version, calendar in versions.EKS_SUPPORT_CALENDAR.items():
        assert calendar.standard_ends < calendar.extended_ends, version


def test_a_day_that_is_not_a_date_is_a_usage_error(repo_root: Path) -> None:
    result = _cli(repo_root, "cost", "--env", "dev", "--on", "next-tuesday")
    assert result.returncode == 2 and "'next-tuesday' is not a day (YYYY-MM-DD)" in result.stderr, (
        result.stderr
    )


def _cli(repo_root: Path, *args: str, setup: str = "") -> subprocess.CompletedProcess[str]:
    code = f"import sys\nfrom pathlib import Path\n{setup}from mlplat.cli import main\nsys.exit(main({list(args)!r}))\n"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cost_command_plans_the_environment_itself(repo_root: Path, env: str) -> None:
    """`--env` prices a plan it runs now: never a stale file."""
    result = _cli(repo_root, "cost", "--env", env)
    assert result.returncode == 0, result.stderr
    assert f"mlplat cost {env} (eu-west-1), monthly USD, from a fresh offline plan" in result.stdout
    assert "TOTAL" in result.stdout and re.search(
        r"744-hour month \(31 days\), \$[0-9,.]+, is within it", result.stdout
    )


def test_cost_takes_an_environment_added_to_the_contract(tmp_path: Path) -> None:
    """`qa` added to infra/contract.py: `--env qa` reaches the plan (which asks for qa's stack file, not
    written here) instead of being refused by a list of its own (`invalid choice: 'qa'`)."""
    repo = checkout_copy(tmp_path / "checkout")
    add_environment_to_the_contract(repo)
    result = mlplat(repo, "cost", "--env", "qa")
    assert "invalid choice" not in result.stderr, result.stderr
    assert result.returncode == 2 and "environments/Pulumi.qa.yaml" in result.stderr, result.stderr


def _dev_with_budget(repo_root: Path, folder: Path, budget: str) -> str:
    """Dev's stack file with `cost.max_monthly_usd: budget`, written to `folder`; the setup code that
    makes `mlplat` read its stack files from there."""
    source = (repo_root / "environments" / "Pulumi.dev.yaml").read_text()
    [line] = re.findall(r"\n    max_monthly_usd: [0-9]+\n", source)
    (folder / "Pulumi.dev.yaml").write_text(source.replace(line, f"\n    max_monthly_usd: {budget}\n"))
    return f"import infra.config\ninfra.config.STACK_DIR = Path({str(folder)!r})\n"


def test_plan_over_budget_exits_2_naming_the_stack_file(repo_root: Path, tmp_path: Path) -> None:
    setup = _dev_with_budget(repo_root, tmp_path, "1000")
    out = tmp_path / "plan.json"
    result = _cli(repo_root, "plan", "--env", "dev", "--no-policies", "--out", str(out), setup=setup)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "above cost.max_monthly_usd ($1,000.00)" in result.stderr
    assert str(tmp_path / "Pulumi.dev.yaml") in result.stderr
    assert not out.exists(), "a plan over budget must not be written"


def test_budget_is_held_by_a_31_day_month_not_the_730_hour_average(
    offline_plan: PlanFor, repo_root: Path, tmp_path: Path
) -> None:
    """A budget just above dev's maximum over 730 hours let the plan through, though a 31-day month
    (744 hours) of that maximum bills above it."""
    average = price_plan(offline_plan("dev")).max
    assert average is not None
    setup = _dev_with_budget(repo_root, tmp_path, str(math.ceil(average) + 1))
    out = tmp_path / "plan.json"
    planned = _cli(repo_root, "plan", "--env", "dev", "--no-policies", "--out", str(out), setup=setup)
    assert planned.returncode == 2 and "Traceback" not in planned.stderr, planned.stderr
    assert re.search(r"dev could cost \$[0-9,.]+ in a 744-hour month", planned.stderr), planned.stderr
    assert not out.exists()
    priced = _cli(repo_root, "cost", "--env", "dev", setup=setup)
    assert priced.returncode == 1, priced.stdout + priced.stderr
    assert re.search(r"the maximum over a 744-hour month \(31 days\), \$[0-9,.]+, is ABOVE it", priced.stdout)


def test_budget_must_be_positive(repo_root: Path, tmp_path: Path) -> None:
    result = _cli(repo_root, "cost", "--env", "dev", setup=_dev_with_budget(repo_root, tmp_path, "-5"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "mlplat:cost.max_monthly_usd: Input should be greater than 0" in result.stderr


# --- bad input -------------------------------------------------------------------------------------


def test_missing_plan_file_exits_2(repo_root: Path, tmp_path: Path) -> None:
    result = _cli(repo_root, "cost", "--plan", str(tmp_path / "absent.json"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot read the plan" in result.stderr and "mlplat plan" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not a JSON plan file"), ('{"kind": "something-else"}', "not an offline plan written by")],
)
def test_file_that_is_not_a_plan_exits_2(repo_root: Path, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    result = _cli(repo_root, "cost", "--plan", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr and message in result.stderr


def test_unknown_environment_exits_2(repo_root: Path) -> None:
    result = _cli(repo_root, "cost", "--env", "qa")
    assert result.returncode == 2 and "invalid choice: 'qa'" in result.stderr


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'usd: 0.10, verified: true, source: "https://prices.test/eks"',
            'usd: -1, verified: true, source: "https://prices.test/eks"',
            "regions.xx-test-1.eks_cluster_hour.usd",
        ),
        ('taken: "2026-12-01"', "taken: yesterday", "taken"),
        (
            "      g5.12xlarge: {usd: 5.00,",
            '      x9.fictional: {usd: 1.00, verified: false, source: "https://prices.test/ec2", basis: "test"}\n'
            "      g5.12xlarge: {usd: 5.00,",
            "no size for ['x9.fictional'] in infra/instance_types.py",
        ),
        ("hours_per_month: 730", "hours_per_month: 730\nhours_per_month: 720", "price table"),
    ],
    ids=["negative-price", "undated", "type-without-size", "duplicate-key"],
)
def test_malformed_price_table_exits_2(
    repo_root: Path, tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in PRICE_TABLE
    table = tmp_path / "prices.yaml"
    table.write_text(PRICE_TABLE.replace(old, new, 1))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(small_plan()))
    result = _cli(
        repo_root,
        "cost",
        "--plan",
        str(plan),
        setup=f"import infra.prices\ninfra.prices.PRICES = Path({str(table)!r})\n",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"mlplat cost: price table {table}"), result.stderr
    assert message in result.stderr, result.stderr


def test_plan_of_unexpected_shape_is_a_cost_error(prices: Any) -> None:
    plan = copy.deepcopy(small_plan())
    plan["resources"][4]["inputs"]["scalingConfig"] = {"minSize": "two"}
    with pytest.raises(CostError, match="not shaped as `mlplat plan` writes it"):
        estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)


# --- the pull request workflow ---------------------------------------------------------------------


def _pr_jobs(repo_root: Path) -> dict[str, Any]:
    import yaml

    jobs: dict[str, Any] = yaml.safe_load((repo_root / ".github" / "workflows" / "pr.yml").read_text())[
        "jobs"
    ]
    return jobs


def test_pr_workflow_compares_base_and_head_plans_without_write_scope(repo_root: Path) -> None:
    job = _pr_jobs(repo_root)["cost"]
    assert job["permissions"] == {"contents": "read"}
    script = "\n".join(step.get("run", "") for step in job["steps"])
    assert 'git worktree add --detach "$RUNNER_TEMP/base" "origin/${BASE_REF}"' in script
    # The head with the PR's code; the base with the base's own code (run from its worktree).
    assert '.venv/bin/mlplat plan --env "$env" --no-policies --out "$head"' in script
    words = " ".join(script.split())
    assert '-m mlplat.cli \\ plan --env "$env" --no-policies --out "$base"' in words
    assert 'mlplat cost --diff "$base" "$head" --base-checkout "$RUNNER_TEMP/base"' in script
    assert "for env in $ENVIRONMENTS; do" in script, "every environment's cost difference is shown"


def _base_checkout(repo_root: Path, folder: Path, prices: str, stack: str) -> Path:
    """A base checkout holding only what prices a plan: its price table and dev's stack file."""
    (folder / "infra").mkdir(parents=True)
    (folder / "environments").mkdir()
    (folder / "infra" / "cost_prices.yaml").write_text(prices)
    (folder / "environments" / "Pulumi.dev.yaml").write_text(stack)
    return folder


def _diff(repo_root: Path, tmp_path: Path, base: Path) -> subprocess.CompletedProcess[str]:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(small_plan()))
    return _cli(repo_root, "cost", "--diff", str(plan), str(plan), "--base-checkout", str(base))


def test_diff_of_a_price_change_prices_the_base_with_the_bases_own_table(
    repo_root: Path, tmp_path: Path
) -> None:
    """A pull request that only lowers a price: both sides were priced with the head's table, so the
    comment said "no change" while the budget gate loosened."""
    table = (repo_root / "infra" / "cost_prices.yaml").read_text()
    head_price = "      g5.xlarge:\n        usd: 1.123\n"
    assert head_price in table
    base_table = table.replace(head_price, "      g5.xlarge:\n        usd: 2.123\n")
    stack = (repo_root / "environments" / "Pulumi.dev.yaml").read_text()
    result = _diff(repo_root, tmp_path, _base_checkout(repo_root, tmp_path / "base", base_table, stack))
    assert result.returncode == 0, result.stderr
    # small_plan's pool at maximum: two g5.xlarge, a dollar an hour cheaper each at the head.
    assert f"| **change** | **+0.00** | **{-2 * 1.0 * 730:+,.2f}** |" in result.stdout, result.stdout
    assert "**Price table changed**" in result.stdout, result.stdout


def test_diff_prices_the_base_with_the_bases_own_stack_settings(repo_root: Path, tmp_path: Path) -> None:
    stack = (repo_root / "environments" / "Pulumi.dev.yaml").read_text()
    assert "log_ingest_gib_per_month: 30\n" in stack
    base_stack = stack.replace("log_ingest_gib_per_month: 30\n", "log_ingest_gib_per_month: 40\n")
    table = (repo_root / "infra" / "cost_prices.yaml").read_text()
    result = _diff(repo_root, tmp_path, _base_checkout(repo_root, tmp_path / "base", table, base_stack))
    assert result.returncode == 0, result.stderr
    assert "CloudWatch Logs: 1 group(s), assumed 30 GiB/month" in result.stdout, result.stdout
    assert "Price table changed" not in result.stdout


def test_diff_with_an_unreadable_base_table_exits_2_naming_it(repo_root: Path, tmp_path: Path) -> None:
    stack = (repo_root / "environments" / "Pulumi.dev.yaml").read_text()
    base = _base_checkout(repo_root, tmp_path / "base", "taken: yesterday\n", stack)
    result = _diff(repo_root, tmp_path, base)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"mlplat cost: price table {base / 'infra' / 'cost_prices.yaml'}: ")


def test_pr_comment_job_runs_no_code_of_the_pull_request(repo_root: Path) -> None:
    """The job holding pull-requests: write checks nothing out and runs no script: the markdown the
    PR's code produced reaches it as data (an environment variable), never as code."""
    job = _pr_jobs(repo_root)["cost-comment"]
    assert job["needs"] == "cost" and job["permissions"] == {"contents": "read", "pull-requests": "write"}
    [step] = job["steps"]
    assert step["uses"].startswith("actions/github-script@") and "run" not in step
    assert step["env"] == {"BODY": "${{ needs.cost.outputs.markdown }}"}
    assert "${{" not in step["with"]["script"] and "process.env.BODY" in step["with"]["script"]


def test_node_group_whose_launch_template_is_missing_is_refused_not_sized_at_a_default(prices: Any) -> None:
    plan = small_plan()
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "aws:ec2/launchTemplate:LaunchTemplate"]
    with pytest.raises(CostError, match="its launch template is not in the plan"):
        estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)


@pytest.mark.parametrize(
    ("limit", "message"),
    [("1e12", "outside 0..100000 units"), ("-4", "outside 0..100000 units"), ("lots", "is not a quantity")],
)
def test_absurd_pool_limit_is_refused_not_computed(prices: Any, limit: str, message: str) -> None:
    """A plan file claiming a limit of 10^12 GPUs must not make the fill walk 10^12 units."""
    plan = small_plan()
    pool = next(r for r in plan["resources"] if r["type"] == "kubernetes:karpenter.sh/v1:NodePool")
    pool["inputs"]["spec"]["limits"] = {"nvidia.com/gpu": limit}
    with pytest.raises(CostError, match=message):
        estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)


@pytest.mark.parametrize("size", ["-10Gi", "10Qi", "1e400Gi"])
def test_unreadable_or_negative_volume_size_is_refused(prices: Any, size: str) -> None:
    plan = small_plan()
    release = next(r for r in plan["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release")
    release["inputs"]["values"]["persistence"]["size"] = size
    with pytest.raises(CostError, match="size"):
        estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)


def test_prod_without_a_budget_is_refused(repo_root: Path, tmp_path: Path) -> None:
    """Prod is never weaker than dev: a prod stack file that drops its budget stops the plan."""
    source = (repo_root / "environments" / "Pulumi.prod.yaml").read_text()
    start = source.index("  mlplat:cost:\n")
    end = source.index("\n  mlplat:", start + 1) + 1  # the block ends where the next key starts
    (tmp_path / "Pulumi.prod.yaml").write_text(source[:start] + source[end:])
    result = _cli(
        repo_root,
        "plan",
        "--env",
        "prod",
        "--no-policies",
        "--out",
        str(tmp_path / "plan.json"),
        setup=f"import infra.config\ninfra.config.STACK_DIR = Path({str(tmp_path)!r})\n",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cost.max_monthly_usd: prod has a budget the plan is held to" in result.stderr, result.stderr


def test_the_support_window_is_the_utc_days_not_the_machines(
    prices: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The estimate read the local day: ahead of UTC it billed extended support a day early, and a
    laptop and the CI runner priced the same plan differently around midnight."""
    ends = versions.EKS_SUPPORT_CALENDAR["1.34"].standard_ends
    for instant, window in zip(either_side_of_utc_midnight(ends), ("standard", "extended"), strict=True):
        with stopped_clock(monkeypatch, instant):
            item = _line(estimate(small_plan(), "xx-test-1", 20, prices), "EKS control plane").item
        assert f"{window} support" in item, (instant, item)


# --- node root volumes -----------------------------------------------------------------------------


def _resource_named(plan: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(r for r in plan["resources"] if r["type"] == type_)


def test_node_class_without_block_device_mappings_is_sized_at_karpenters_default(prices: Any) -> None:
    """Without blockDeviceMappings Karpenter gives an AL2023 node a 20 GiB gp3 root volume: it was
    priced as 0 GiB."""
    plan = small_plan()
    node_class = _resource_named(plan, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    node_class["inputs"]["spec"] = {"amiSelectorTerms": [{"alias": "al2023@v20251108"}]}
    line = _line(estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT), "root volumes of pool gpu")
    assert line.item == "root volumes of pool gpu: 20 GiB gp3 per node"
    assert line.max == pytest.approx(2 * 20 * 0.10)  # the two g5.xlarge of the pool's maximum


def test_node_class_of_a_custom_ami_without_block_device_mappings_is_refused(prices: Any) -> None:
    plan = small_plan()
    node_class = _resource_named(plan, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    node_class["inputs"]["spec"] = {"amiSelectorTerms": [{"id": "ami-0123"}]}
    with pytest.raises(
        CostError, match=r"EC2NodeClass::gpu-class: no blockDeviceMappings, and its AMI family"
    ):
        estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)


@pytest.mark.parametrize("volume_type", ["gp2", "io2", None])
@pytest.mark.parametrize(
    ("type_", "mappings"),
    [
        ("aws:ec2/launchTemplate:LaunchTemplate", lambda r: r["inputs"]["blockDeviceMappings"]),
        (
            "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
            lambda r: r["inputs"]["spec"]["blockDeviceMappings"],
        ),
    ],
    ids=["node-group", "karpenter"],
)
def test_root_volume_that_is_not_gp3_is_refused_not_priced_as_gp3(
    prices: Any, type_: str, mappings: Callable[[dict[str, Any]], Any], volume_type: str | None
) -> None:
    plan = small_plan()
    resource = _resource_named(plan, type_)
    [mapping] = mappings(resource)
    if volume_type is None:
        del mapping["ebs"]["volumeType"]
    else:
        mapping["ebs"]["volumeType"] = volume_type
    with pytest.raises(
        CostError, match=rf"{re.escape(resource['urn'])}: .*volume type {volume_type!r}; only gp3"
    ):
        estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)


# --- which instance types a pool may launch --------------------------------------------------------


def _family_requirement(*families: str) -> dict[str, Any]:
    return {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": list(families)}


def test_pool_limited_by_family_alone_is_refused_naming_the_unpriced_sizes(prices: Any) -> None:
    """`instance-family In [g5]` admits g5.2xlarge, g5.4xlarge, g5.8xlarge... which the table does not
    price: they were dropped silently and the maximum priced from g5.xlarge and g5.12xlarge alone."""
    plan = small_plan()
    requirements = _resource_named(plan, "kubernetes:karpenter.sh/v1:NodePool")["inputs"]["spec"]["template"][
        "spec"
    ]["requirements"]
    requirements[0] = _family_requirement("g5")
    with pytest.raises(CostError) as raised:
        estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)
    message = str(raised.value)
    assert message.startswith("urn:pulumi:test::mlplat::kubernetes:karpenter.sh/v1:NodePool::gpu: "), message
    assert "no xx-test-1 price" in message and "g5.2xlarge, g5.4xlarge, g5.8xlarge" in message, message
    assert "g5.xlarge," not in message and "g5.12xlarge" not in message, message


def test_pool_limited_by_family_and_type_launches_the_types_of_both(prices: Any) -> None:
    plan = small_plan()
    requirements = _resource_named(plan, "kubernetes:karpenter.sh/v1:NodePool")["inputs"]["spec"]["template"][
        "spec"
    ]["requirements"]
    requirements[0]["values"] = ["g5.xlarge", "g5.12xlarge", "g6e.xlarge"]  # g6e: not a g5, so never launched
    requirements.append(_family_requirement("g5"))
    line = _line(estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT), "Karpenter pool gpu")
    assert line.max == pytest.approx(2 * 1.00 * 730)  # as in small_plan: two g5.xlarge


# --- persistent volumes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chart", "values", "label"),
    [
        (
            "minio",
            {"persistence": {"enabled": False, "size": "10Gi", "storageClass": "gp3-retain"}},
            "MinIO drives",
        ),
        # The vault chart leaves the audit volume off unless server.auditStorage.enabled says otherwise.
        (
            "vault",
            {"server": {"auditStorage": {"size": "10Gi", "storageClass": "gp3-retain"}}},
            "Vault audit",
        ),
        # The mlflow chart's PostgreSQL is off by default (postgresql.enabled false).
        (
            "mlflow",
            {"postgresql": {"primary": {"persistence": {"size": "10Gi", "storageClass": "gp3-retain"}}}},
            "MLflow PostgreSQL",
        ),
    ],
    ids=["minio-persistence-disabled", "vault-audit-chart-default", "mlflow-postgresql-chart-default"],
)
def test_volume_the_chart_does_not_create_is_not_priced(
    prices: Any, chart: str, values: dict[str, Any], label: str
) -> None:
    plan = small_plan()
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "kubernetes:helm.sh/v3:Release"]
    plan["resources"].append(
        _resource("kubernetes:helm.sh/v3:Release", chart, {"chart": chart, "values": values})
    )
    result = estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)
    assert not [line.item for line in result.lines if line.item.startswith(label)]


def test_key_with_rotation_is_priced_at_its_ceiling_not_at_one_key(prices: Any) -> None:
    """Each of a key's first two rotations adds a key-month: a rotated key costs $3, not $1."""
    plan = small_plan()
    _resource_named(plan, "aws:kms/key:Key")["inputs"]["enableKeyRotation"] = True
    line = _line(estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT), "KMS")
    assert line.item == "KMS customer managed keys: 2, 1 rotated (at the price after two rotations)"
    assert line.max == pytest.approx(1.00 + 3.00)


def test_karpenter_pool_maximum_says_limits_can_be_overrun(prices: Any) -> None:
    """Karpenter checks limits eventually (nodepools.md, spec.limits): the maximum of a pool is not a
    hard cap, and the output says so wherever a pool is priced."""
    with_pool = estimate(small_plan(), "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)
    assert any("rapid scale-out can overrun" in note for note in with_pool.notes), with_pool.notes
    plan = small_plan()
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "kubernetes:karpenter.sh/v1:NodePool"]
    without = estimate(plan, "xx-test-1", 20, prices, IN_STANDARD_SUPPORT)
    assert not any("overrun" in note for note in without.notes), without.notes
