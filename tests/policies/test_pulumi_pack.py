"""The Pulumi CrossGuard pack (policies/pulumi), run the way `mlplat plan` runs it.

The pack only imports in .venv-policy (pulumi-policy pins protobuf 5), so every test drives
offline.py as a subprocess over a plan document: checked-in fixtures and a real prod plan.
"""

from __future__ import annotations

import copy
import functools
import json
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "policies" / "pulumi"
POLICY_PYTHON = REPO / ".venv-policy" / "bin" / "python"
FIXTURES = REPO / "tests" / "fixtures" / "plans"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
STACK_SECRETS = "no-plaintext-secrets-in-outputs-or-config"  # pragma: allowlist secret


def urn(name: str, typ: str, stack: str = "prod", parent_type: str = "") -> str:
    qualified = f"{parent_type}${typ}" if parent_type else typ
    return f"urn:pulumi:{stack}::mlplat::{qualified}::{name}"


def stack_urn(stack: str = "prod") -> str:
    return f"urn:pulumi:{stack}::mlplat::pulumi:pulumi:Stack::mlplat-{stack}"


KEY = "aws:kms/key:Key"
EKS = "aws:eks/cluster:Cluster"
RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
BUCKET = "aws:s3/bucketV2:BucketV2"
STORE = "mlplat:storage:ModelStore"
IAM_POLICY = "aws:iam/policy:Policy"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
API_ACCESS = "prod-api-admits-only-referenced-groups"


def run_pack(*args: str | Path, runner: str = "offline.py") -> subprocess.CompletedProcess[str]:
    if not POLICY_PYTHON.exists():
        pytest.fail(f"{POLICY_PYTHON} is missing: `make setup` creates .venv-policy")
    return subprocess.run(
        [str(POLICY_PYTHON), str(PACK / runner), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )


def violations_of(
    plan: Path, policy_config: Path | None = None, runner: str = "offline.py"
) -> list[dict[str, str]]:
    extra = ["--policy-config", policy_config] if policy_config else []
    result = run_pack(plan, *extra, runner=runner)
    assert result.returncode == 0, result.stderr
    found: list[dict[str, str]] = json.loads(result.stdout)
    return found


def keyed(violations: list[dict[str, str]]) -> Counter[tuple[str, str, str]]:
    """(policy, urn, enforcementLevel) with multiplicity: one entry per reported message."""
    return Counter((v["policy"], v["urn"], v["enforcementLevel"]) for v in violations)


# fixture plan -> the stack config file its --policy-config (pulumi-pack-policy-config-*.json) names
STACK_CONFIG = {"compliant-prod": "clean", "violations-prod": "plaintext", "dev": "clean"}


@functools.cache
def fixture_violations(fixture: str, runner: str = "offline.py") -> list[dict[str, str]]:
    """Violations of a checked-in fixture plan, computed once per runner (each run is a subprocess)."""
    config = FIXTURES / f"pulumi-pack-policy-config-{STACK_CONFIG[fixture]}.json"
    return violations_of(FIXTURES / f"pulumi-pack-{fixture}.json", config, runner)


# ---- the pack and its documentation -------------------------------------------------------------


@pytest.fixture(scope="module")
def registered() -> list[dict[str, str]]:
    """The policies __main__.py registers, as reported by the pack itself."""
    probe = (
        "import runpy, sys, json, pulumi_policy\n"
        "seen = {}\n"
        "class Capture:\n"
        "    def __init__(self, name, policies, **kwargs): seen.update(name=name, policies=policies, **kwargs)\n"
        "pulumi_policy.PolicyPack = Capture\n"
        # What `python -m pulumi.policy <pack dir>` (the CLI's analyzer shim) does with the pack.
        f"runpy.run_path({str(PACK)!r}, run_name='__main__')\n"
        "import mlplat_policies\n"
        "assert seen['policies'] is mlplat_policies.POLICIES, 'pack and runner must share the objects'\n"
        "print(json.dumps([p.name for p in seen['policies']]))\n"
    )
    result = subprocess.run([str(POLICY_PYTHON), "-c", probe], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    names = json.loads(result.stdout)
    listed = json.loads(run_pack("--list").stdout)
    assert [p["policy"] for p in listed] == names
    return listed


def test_main_registers_the_objects_the_runner_runs(registered: list[dict[str, str]]) -> None:
    names = [p["policy"] for p in registered]
    assert len(names) == len(set(names)) == 18
    assert all(p["description"] and p["enforcementLevel"] in ("mandatory", "advisory") for p in registered)
    # Advisory only with a stated reason: exactly one such policy today.
    assert [p["policy"] for p in registered if p["enforcementLevel"] == "advisory"] == [
        "kms-deletion-window-prod"
    ]


def test_readme_documents_every_policy(registered: list[dict[str, str]]) -> None:
    readme = (PACK.parent / "README.md").read_text()
    missing = [p["policy"] for p in registered if f"`{p['policy']}`" not in readme]
    assert not missing, f"policies/README.md does not document {missing}"


def test_pulumi_policy_yaml_uses_the_policy_venv() -> None:
    text = (PACK / "PulumiPolicy.yaml").read_text()
    assert "name: python" in text and "virtualenv: ../../.venv-policy" in text
    assert (PACK / "requirements.txt").exists()


# ---- fixtures: exact violations ---------------------------------------------------------------


def test_compliant_prod_fixture_has_no_violation() -> None:
    assert fixture_violations("compliant-prod") == []


VIOLATIONS_PROD = Counter(
    {
        ("kms-key-rotation", urn("bad-key", KEY), "mandatory"): 1,
        # A computed value cannot be judged in preview: reported as the CLI's analyzer does.
        ("kms-key-rotation", urn("computed-rotation-key", KEY), "advisory"): 1,
        ("kms-deletion-window-prod", urn("bad-key", KEY), "advisory"): 1,
        ("eks-secrets-encryption", urn("bad-eks", EKS), "mandatory"): 1,
        ("eks-secrets-encryption", urn("wrong-encryption-eks", EKS), "mandatory"): 2,
        ("eks-audit-logging", urn("bad-eks", EKS), "mandatory"): 1,
        ("eks-endpoint-access", urn("bad-eks", EKS), "mandatory"): 2,
        # Public, and no rule admits a referenced group (its only 443 rule admits a range).
        (API_ACCESS, urn("bad-eks", EKS), "mandatory"): 2,
        (API_ACCESS, urn("api-from-runner-range", SG_RULE), "mandatory"): 1,
        (API_ACCESS, urn("api-from-anywhere", INGRESS_RULE), "mandatory"): 1,
        (API_ACCESS, urn("all-traffic-from-vpc-range", INGRESS_RULE), "mandatory"): 1,
        ("nodes-imdsv2-required", urn("imdsv1-lt", "aws:ec2/launchTemplate:LaunchTemplate"), "mandatory"): 1,
        (
            "nodes-imdsv2-required",
            urn("default-metadata-class", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"),
            "mandatory",
        ): 1,
        ("nodes-imdsv2-required", urn("no-template", NODE_GROUP), "mandatory"): 1,
        ("gpu-pool-taint", urn("gpu-untainted", NODE_POOL), "mandatory"): 1,
        ("gpu-pool-taint", urn("gpu-by-family", NODE_POOL), "mandatory"): 1,
        ("gpu-pool-taint", urn("gpu-by-type", NODE_POOL), "mandatory"): 1,
        ("gpu-pool-taint", urn("gpu-group", NODE_GROUP), "mandatory"): 1,
        ("gpu-pool-limits", urn("gpu-untainted", NODE_POOL), "mandatory"): 1,
        ("protect-stateful-prod", urn("bad-key", KEY), "mandatory"): 1,
        ("protect-stateful-prod", urn("vault", RELEASE), "mandatory"): 1,
        ("protect-stateful-prod", urn("storage-artifacts", BUCKET, parent_type=STORE), "mandatory"): 1,
        ("helm-chart-version-pinned", urn("vault", RELEASE), "mandatory"): 1,
        ("helm-chart-version-pinned", urn("minio", RELEASE), "mandatory"): 1,
        ("helm-chart-version-pinned", urn("grafana", RELEASE), "mandatory"): 1,
        ("helm-chart-version-pinned", urn("exporter", RELEASE), "mandatory"): 1,
        ("helm-oci-chart-form", urn("oci-as-repository", RELEASE), "mandatory"): 1,
        ("helm-values-no-plaintext-secrets", urn("vault", RELEASE), "mandatory"): 1,
        ("helm-values-no-plaintext-secrets", urn("minio", RELEASE), "mandatory"): 3,
        ("iam-no-admin-wildcard", urn("admin-inline", "aws:iam/rolePolicy:RolePolicy"), "mandatory"): 1,
        ("iam-no-admin-wildcard", urn("admin-colon", IAM_POLICY), "mandatory"): 1,
        (
            "iam-no-admin-wildcard",
            urn("admin-attach", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"),
            "mandatory",
        ): 1,
        ("iam-no-admin-wildcard", urn("inline-admin-role", "aws:iam/role:Role"), "mandatory"): 1,
        ("iam-no-admin-wildcard", urn("not-json", IAM_POLICY), "mandatory"): 1,
        **{
            (policy, urn(bucket, BUCKET, parent_type=STORE), "mandatory"): 1
            for policy in ("s3-sse-kms", "s3-versioning", "s3-public-access-block")
            for bucket in ("storage-models", "storage-artifacts")
        },
        (STACK_SECRETS, stack_urn(), "mandatory"): 2 + 2,  # outputs dbPassword, notes; two config keys
    }
)


def test_violations_prod_fixture_reports_exactly_the_expected_violations() -> None:
    found = fixture_violations("violations-prod")
    assert keyed(found) == VIOLATIONS_PROD
    messages = {(v["policy"], v["urn"].rsplit("::", 1)[1], v["message"]) for v in found}
    # Spot checks that messages name the offending field, and that the S3 correlation fallbacks
    # (by name+parent for storage-logs, by dependency for data) found the compliant companions.
    assert ("helm-values-no-plaintext-secrets", "minio", "values.extraEnv[0].value holds a plaintext secret: "
            "reference an existing Secret or pass pulumi.secret()") in messages  # fmt: skip
    assert any("config mlplat:db_password" in m for p, _, m in messages if p == STACK_SECRETS)
    assert not any(v["urn"].endswith(("::storage-logs", "::data")) for v in found)


def test_dev_fixture_allows_an_allowlisted_public_endpoint_only() -> None:
    found = fixture_violations("dev")
    assert keyed(found) == Counter(
        {
            ("eks-endpoint-access", urn("open-to-world", EKS, "dev"), "mandatory"): 1,
            ("eks-endpoint-access", urn("default-public", EKS, "dev"), "mandatory"): 1,
            # An allowlist computed during the update cannot be judged in preview: advisory, as the
            # CLI's analyzer reports it, never "no allowlist" (which would be mandatory and false).
            ("eks-endpoint-access", urn("computed-allowlist", EKS, "dev"), "advisory"): 1,
        }
    )


def test_policy_config_sets_enforcement_levels(tmp_path: Path) -> None:
    config = tmp_path / "levels.json"
    config.write_text(json.dumps({"all": "advisory", "protect-stateful-prod": "disabled"}))
    found = violations_of(FIXTURES / "pulumi-pack-violations-prod.json", config)
    assert {v["enforcementLevel"] for v in found} == {"advisory"}
    assert "protect-stateful-prod" not in {v["policy"] for v in found}


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        pytest.param(
            "config:\n  mlplat:db_password: hunter2\n  mlplat:db_password: {secure: v1:AAAA}\n",  # pragma: allowlist secret
            "duplicate key 'mlplat:db_password'",
            id="duplicate-key-hides-a-plaintext-secret",
        ),
        pytest.param(
            "config:\n  mlplat:a: &x [one, two]\n  mlplat:b: [*x, *x, *x]\n",
            "anchors and aliases are not allowed",
            id="aliases-expand-before-anything-is-checked",
        ),
    ],
)
def test_stack_config_is_read_under_the_programs_bounds(tmp_path: Path, text: str, refusal: str) -> None:
    """The pack reads the stack file as the program does (infra/stack_file.py): a duplicate key would
    let the last value hide a plaintext first one; aliases multiply before any check runs."""
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack_file.write_text(text)
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({STACK_SECRETS: {"stackConfigFile": str(stack_file)}}))
    found = [
        v
        for v in violations_of(FIXTURES / "pulumi-pack-compliant-prod.json", config)
        if v["policy"] == STACK_SECRETS
    ]
    assert [v["urn"] for v in found] == [stack_urn()], found
    assert "cannot be read safely" in found[0]["message"] and refusal in found[0]["message"], found


def test_configured_stack_file_that_does_not_exist_is_a_violation(tmp_path: Path) -> None:
    """A policy config naming a stack file that is not there must not pass as "no secrets found"."""
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({STACK_SECRETS: {"stackConfigFile": str(tmp_path / "Pulumi.prod.yaml")}}))
    found = [
        v
        for v in violations_of(FIXTURES / "pulumi-pack-compliant-prod.json", config)
        if v["policy"] == STACK_SECRETS
    ]
    assert [v["urn"] for v in found] == [stack_urn()] and "does not exist" in found[0]["message"], found


# ---- parity with the analyzer the CLI runs -------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(STACK_CONFIG))
def test_offline_runner_matches_pulumi_policy_analyzer(fixture: str) -> None:
    """pulumi_policy's own servicer, fed the protobufs the engine sends, reports what offline.py reports.

    The one expected difference: the analyzer protocol has no retainOnDelete, so a prod resource kept
    only by retainOnDelete passes offline and fails under the CLI.
    """
    offline = Counter(tuple(v.values()) for v in fixture_violations(fixture))
    analyzer = Counter(tuple(v.values()) for v in fixture_violations(fixture, "via_analyzer.py"))
    retained_only = {
        "compliant-prod": [urn("monitoring", RELEASE)],
        "violations-prod": [urn("retained-key", KEY)],
        "dev": [],
    }[fixture]
    assert offline - analyzer == Counter()
    assert sorted((p, u) for p, u, _, _ in analyzer - offline) == [
        ("protect-stateful-prod", u) for u in retained_only
    ]


# ---- a real plan with injected violations -------------------------------------------------------


def injected(plan: dict[str, Any]) -> tuple[dict[str, Any], Counter[tuple[str, str, str]]]:
    """A copy of a real plan with bad resources added (and the cluster mutated); what that must add."""
    mutated = copy.deepcopy(plan)
    stack, root = plan["stack"], stack_urn(plan["stack"])

    def add(typ: str, name: str, inputs: dict[str, Any], **extra: Any) -> str:
        resource_urn = urn(name, typ, stack)
        mutated["resources"].append(
            {"urn": resource_urn, "type": typ, "name": name, "parent": root, "custom": True, "provider": None,
             "inputs": inputs, "protect": False, "retainOnDelete": False, "dependsOn": [], **extra}
        )  # fmt: skip
        return resource_urn

    key = add(KEY, "injected-key", {"enableKeyRotation": False})
    bucket = add(BUCKET, "injected-bucket", {"bucket": "mlplat-injected"}, retainOnDelete=True)
    release = add(
        RELEASE,
        "injected-minio",
        {"chart": "minio", "version": "5.4.0", "values": {"rootPassword": "x1"}},  # pragma: allowlist secret
    )
    admin = add(
        IAM_POLICY,
        "injected-admin",
        {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})},
    )
    clusters = [r for r in mutated["resources"] if r["type"] == EKS]
    assert clusters, "the real prod plan declares no EKS cluster"
    clusters[0]["inputs"]["vpcConfig"]["endpointPublicAccess"] = True
    by_address = add(
        INGRESS_RULE,
        "injected-api-from-anywhere",
        {
            "securityGroupId": UNKNOWN,
            "ipProtocol": "tcp",
            "fromPort": 443,
            "toPort": 443,
            "cidrIpv4": "0.0.0.0/0",
        },
        dependsOn=[clusters[0]["urn"]],
    )
    # Rules on the cluster's group that do not take in TCP 443 from anywhere: not violations.
    for name, typ, inputs in [
        (
            "injected-ports-above-https",
            INGRESS_RULE,
            {"ipProtocol": "tcp", "fromPort": 500, "toPort": 600, "cidrIpv4": "0.0.0.0/0"},
        ),
        (
            "injected-udp-on-https",
            INGRESS_RULE,
            {"ipProtocol": "udp", "fromPort": 443, "toPort": 443, "cidrIpv4": "0.0.0.0/0"},
        ),
        (
            "injected-https-egress",
            SG_RULE,
            {
                "type": "egress",
                "protocol": "tcp",
                "fromPort": 443,
                "toPort": 443,
                "cidrBlocks": ["0.0.0.0/0"],
            },
        ),
    ]:
        add(typ, name, {"securityGroupId": UNKNOWN, **inputs}, dependsOn=[clusters[0]["urn"]])
    expected = Counter(
        {
            ("kms-key-rotation", key, "mandatory"): 1,
            ("protect-stateful-prod", key, "mandatory"): 1,
            ("s3-sse-kms", bucket, "mandatory"): 1,
            ("s3-versioning", bucket, "mandatory"): 1,
            ("s3-public-access-block", bucket, "mandatory"): 1,
            ("protect-stateful-prod", release, "mandatory"): 1,
            ("helm-values-no-plaintext-secrets", release, "mandatory"): 1,
            ("iam-no-admin-wildcard", admin, "mandatory"): 1,
            ("eks-endpoint-access", clusters[0]["urn"], "mandatory"): 1,
            (API_ACCESS, clusters[0]["urn"], "mandatory"): 1,
            (API_ACCESS, by_address, "mandatory"): 1,
        }
    )
    return mutated, expected


def test_runner_reports_violations_injected_into_the_real_prod_plan(
    offline_plan: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    real = offline_plan("prod")
    baseline_path, mutated_path = tmp_path / "prod.json", tmp_path / "prod-injected.json"
    baseline_path.write_text(json.dumps(real))
    mutated, expected = injected(real)
    mutated_path.write_text(json.dumps(mutated))
    before, after = keyed(violations_of(baseline_path)), keyed(violations_of(mutated_path))
    assert after - before == expected
    assert before - after == Counter()


# ---- unreadable input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "cannot read plan"),
        ("{not json", "is not JSON"),
        ('{"resources": {}}', "is not an offline plan"),
        ('{"stack": "prod", "project": "mlplat", "resources": [{"urn": "u"}]}', "resources[0] needs"),
    ],
)
def test_unreadable_plan_exits_2_with_a_message(tmp_path: Path, content: str | None, error: str) -> None:
    plan = tmp_path / "plan.json"
    if content is not None:
        plan.write_text(content)
    result = run_pack(plan)
    assert result.returncode == 2
    assert error in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_unknown_enforcement_level_in_policy_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"kms-key-rotation": "sometimes"}))
    result = run_pack(FIXTURES / "pulumi-pack-dev.json", "--policy-config", config)
    assert result.returncode == 2 and "unknown enforcementLevel" in result.stderr
    assert "Traceback" not in result.stderr
