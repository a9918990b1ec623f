"""The Pulumi CrossGuard pack (policies/pulumi), run the way `mlplat plan` runs it.

The pack only imports in .venv-policy (pulumi-policy pins protobuf 5), so every test drives
offline.py as a subprocess over a plan document: checked-in fixtures and a real prod plan.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

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


# The fixture's resources each policy reports once, as mandatory ...
REPORTED_ONCE = {
    "kms-key-rotation": [urn("bad-key", KEY)],
    "eks-secrets-encryption": [urn("bad-eks", EKS)],
    "eks-audit-logging": [urn("bad-eks", EKS)],
    API_ACCESS: [urn("api-from-runner-range", SG_RULE), urn("api-from-anywhere", INGRESS_RULE), urn("all-traffic-from-vpc-range", INGRESS_RULE)],
    "nodes-imdsv2-required": [urn("imdsv1-lt", "aws:ec2/launchTemplate:LaunchTemplate"), urn("default-metadata-class", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"), urn("no-template", NODE_GROUP)],
    "gpu-pool-taint": [*(urn(name, NODE_POOL) for name in ("gpu-untainted", "gpu-by-family", "gpu-by-type")), urn("gpu-group", NODE_GROUP)],
    "gpu-pool-limits": [urn("gpu-untainted", NODE_POOL)],
    "protect-stateful-prod": [urn("bad-key", KEY), urn("vault", RELEASE), urn("storage-artifacts", BUCKET, parent_type=STORE)],
    "helm-chart-version-pinned": [urn(name, RELEASE) for name in ("vault", "minio", "grafana", "exporter")],
    "helm-oci-chart-form": [urn("oci-as-repository", RELEASE)],
    "helm-values-no-plaintext-secrets": [urn("vault", RELEASE)],
    "iam-no-admin-wildcard": [
        urn("admin-inline", "aws:iam/rolePolicy:RolePolicy"),
        urn("admin-colon", IAM_POLICY),
        urn("admin-attach", "aws:iam/rolePolicyAttachment:RolePolicyAttachment"),
        urn("inline-admin-role", "aws:iam/role:Role"),
        urn("not-json", IAM_POLICY),
    ],
    **{
        policy: [urn(bucket, BUCKET, parent_type=STORE) for bucket in ("storage-models", "storage-artifacts")]
        for policy in ("s3-sse-kms", "s3-versioning", "s3-public-access-block")
    },
}  # fmt: skip
# ... and the rest: advisory reports, and resources reported more than once (one entry per message).
VIOLATIONS_PROD = Counter(
    {
        (policy, resource, "mandatory"): 1
        for policy, resources in REPORTED_ONCE.items()
        for resource in resources
    }
) + Counter(
    {
        # A computed value cannot be judged in preview: reported as the CLI's analyzer does.
        ("kms-key-rotation", urn("computed-rotation-key", KEY), "advisory"): 1,
        ("kms-deletion-window-prod", urn("bad-key", KEY), "advisory"): 1,
        ("eks-secrets-encryption", urn("wrong-encryption-eks", EKS), "mandatory"): 2,
        ("eks-endpoint-access", urn("bad-eks", EKS), "mandatory"): 2,
        # Public, and no rule admits a referenced group (its only 443 rule admits a range).
        (API_ACCESS, urn("bad-eks", EKS), "mandatory"): 2,
        ("helm-values-no-plaintext-secrets", urn("minio", RELEASE), "mandatory"): 3,
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


# ---- small plans: one rule's branch each ----------------------------------------------------------


def small_plan(tmp_path: Path, resources: list[dict[str, Any]], stack: str = "prod") -> Path:
    """An offline plan of just `resources` (offline.py adds the stack resource, as the CLI does)."""
    plan = tmp_path / f"{stack}-small.json"
    full = [
        {"parent": stack_urn(stack), "custom": True, "provider": None, "protect": False,
         "retainOnDelete": False, "dependsOn": [], **r}
        for r in resources
    ]  # fmt: skip
    plan.write_text(json.dumps({"stack": stack, "project": "mlplat", "outputs": {}, "resources": full}))
    return plan


CLUSTER_GROUP = "sg-0bbbbbbbbbbbbbbbb"


def private_cluster(group: str) -> dict[str, Any]:
    """A prod cluster once it exists: its security group's ID is known and reported in vpcConfig."""
    return {
        "urn": urn("eks", EKS),
        "type": EKS,
        "name": "eks",
        "inputs": {
            "vpcConfig": {
                "endpointPrivateAccess": True,
                "endpointPublicAccess": False,
                "clusterSecurityGroupId": group,
            }
        },
    }


def https_rule(name: str, group: str, **source: str) -> dict[str, Any]:
    """An ingress rule for TCP 443 on `group`, created after the cluster (it depends on it)."""
    inputs = {"securityGroupId": group, "ipProtocol": "tcp", "fromPort": 443, "toPort": 443}
    return {
        "urn": urn(name, INGRESS_RULE),
        "type": INGRESS_RULE,
        "name": name,
        "inputs": {**inputs, **source},
        "dependsOn": [urn("eks", EKS)],
    }


@pytest.mark.parametrize(
    ("open_group", "expected"),
    [
        # Groups sorting before and after the cluster's: another resource's (a load balancer's), not the API's.
        pytest.param("sg-0aaaaaaaaaaaaaaaa", Counter(), id="open-rule-on-a-group-sorting-before"),
        pytest.param("sg-0cccccccccccccccc", Counter(), id="open-rule-on-a-group-sorting-after"),
        pytest.param(
            CLUSTER_GROUP,
            Counter({(API_ACCESS, urn("open-https", INGRESS_RULE), "mandatory"): 1}),
            id="open-rule-on-the-cluster-group",
        ),
    ],
)
def test_known_group_ids_decide_which_rules_guard_the_prod_api(
    tmp_path: Path, open_group: str, expected: Counter[tuple[str, str, str]]
) -> None:
    """Once the cluster reports its security group, a rule is the API's exactly when it is on that group,
    whatever it depends on: an open rule on another group is not the API's, and the runner's rule on the
    cluster's group is what keeps the private API reachable."""
    plan = small_plan(
        tmp_path,
        [
            private_cluster(CLUSTER_GROUP),
            https_rule("api-from-runner", CLUSTER_GROUP, referencedSecurityGroupId="sg-0123456789abcdef0"),
            https_rule("open-https", open_group, cidrIpv4="0.0.0.0/0"),
        ],
    )
    found = [v for v in violations_of(plan) if v["policy"] == API_ACCESS]
    assert keyed(found) == expected, found


def test_a_label_value_that_reads_like_a_gpu_family_does_not_make_a_gpu_pool(tmp_path: Path) -> None:
    """Only the instance-type, -family, -category and GPU attribute keys select GPUs: a CPU pool that
    requires labels of its own whose values happen to read like instance families (`tier In [p3]`)
    needs neither the GPU taint nor a GPU limit."""
    requirements = [
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m"]},
        # Label keys of the team's own, sorting before, between and after the keys that do select GPUs,
        # with values that read like a category (p), a family (p2) or a type's family (p3.2xlarge's).
        {"key": "billing-class", "operator": "In", "values": ["p", "p2"]},
        {"key": "mlplat/priority", "operator": "In", "values": ["p2"]},
        {"key": "tier", "operator": "In", "values": ["p3"]},
    ]
    pool = {
        "urn": urn("cpu-tiered", NODE_POOL),
        "type": NODE_POOL,
        "name": "cpu-tiered",
        "inputs": {"spec": {"template": {"spec": {"requirements": requirements}}}},
    }
    assert violations_of(small_plan(tmp_path, [pool])) == []


def test_stack_config_is_checked_when_the_plan_declares_no_resource() -> None:
    """A stack with nothing declared yet (its first preview) still has its config checked: the stack
    resource alone names the stack whose file is read."""
    plan = FIXTURES / "pulumi-pack-empty-prod.json"
    config = FIXTURES / "pulumi-pack-policy-config-plaintext.json"
    found = violations_of(plan, config)
    assert keyed(found) == Counter({(STACK_SECRETS, stack_urn(), "mandatory"): 2}), found


def test_malformed_and_computed_iam_documents_are_judged_not_crashed_on(tmp_path: Path) -> None:
    """A statement without `Effect` grants nothing (it is not an Allow) and must not stop the pack; a Deny
    statement does not hide the admin Allow after it; an
    inline policy computed during the update cannot be judged in preview (advisory, as the CLI's
    analyzer reports it), never a false "not valid JSON"."""
    no_effect = json.dumps({"Statement": [{"Action": "*", "Resource": "*"}]})
    deny_then_admin = json.dumps(
        {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
                       {"Sid": "Admin", "Effect": "Allow", "Action": "*", "Resource": "*"}]}
    )  # fmt: skip
    resources = [
        {"urn": urn("no-effect", IAM_POLICY), "type": IAM_POLICY, "name": "no-effect", "inputs": {"policy": no_effect}},
        {"urn": urn("deny-then-admin", IAM_POLICY), "type": IAM_POLICY, "name": "deny-then-admin",
         "inputs": {"policy": deny_then_admin}},
        {"urn": urn("computed-inline", "aws:iam/role:Role"), "type": "aws:iam/role:Role", "name": "computed-inline",
         "inputs": {"inlinePolicies": [{"name": "reader", "policy": UNKNOWN}]}},
    ]  # fmt: skip
    result = run_pack(small_plan(tmp_path, resources))
    assert result.returncode == 0, result.stderr
    assert keyed(json.loads(result.stdout)) == Counter(
        {
            ("iam-no-admin-wildcard", urn("computed-inline", "aws:iam/role:Role"), "advisory"): 1,
            # Every statement is judged: a Deny before the admin Allow does not end the search.
            ("iam-no-admin-wildcard", urn("deny-then-admin", IAM_POLICY), "mandatory"): 1,
        }
    )


def bucket_with(
    name: str, versioning_for: str | None = None, status: str = "Enabled"
) -> list[dict[str, Any]]:
    """Bucket `name` (bucket input mlplat-<name>), and a versioning companion named after it that
    configures the bucket `versioning_for` names by its bucket input, with `status`."""
    resources: list[dict[str, Any]] = [
        {"urn": urn(name, BUCKET), "type": BUCKET, "name": name, "inputs": {"bucket": f"mlplat-{name}"}}
    ]
    if versioning_for is not None:
        typ = "aws:s3/bucketVersioningV2:BucketVersioningV2"
        inputs = {"bucket": f"mlplat-{versioning_for}", "versioningConfiguration": {"status": status}}
        resources.append({"urn": urn(f"{name}-versioning", typ), "type": typ, "name": f"{name}-versioning",
                          "inputs": inputs})  # fmt: skip
    return resources


def test_a_companions_known_bucket_value_decides_its_bucket_over_its_name(tmp_path: Path) -> None:
    """The correlation rules are tried in order (README: S3 correlation): a companion named after
    `models` whose bucket input is `archive`'s configures `archive`, so `models` is the unversioned one.
    And only `Enabled` versions objects (`Disabled`, which sorts before it, does not)."""
    plan = small_plan(
        tmp_path,
        [
            *bucket_with("models", versioning_for="archive"),
            *bucket_with("archive"),
            *bucket_with("scratch", versioning_for="scratch", status="Disabled"),
        ],
    )
    found = [v for v in violations_of(plan) if v["policy"] == "s3-versioning"]
    assert keyed(found) == Counter(
        {("s3-versioning", urn(name, BUCKET), "mandatory"): 1 for name in ("models", "scratch")}
    ), found


def test_stack_file_is_found_through_the_projects_stack_config_dir(tmp_path: Path) -> None:
    """Without a stackConfigFile in the policy config the pack reads <stackConfigDir>/Pulumi.<stack>.yaml
    of the project (Pulumi.yaml) it belongs to; were it to look beside Pulumi.yaml instead, it would find
    nothing and pass a plaintext secret. Run on a copy of the pack in a project with such a file."""
    for name in ("Pulumi.yaml", "infra/__init__.py", "infra/stack_file.py", "infra/contract.py", *(
        str(p.relative_to(REPO)) for p in PACK.glob("*.py")
    )):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((REPO / name).read_bytes())
    stacks = tmp_path / yaml.safe_load((REPO / "Pulumi.yaml").read_text())["stackConfigDir"]
    stacks.mkdir(parents=True, exist_ok=True)
    (stacks / "Pulumi.prod.yaml").write_text(
        "config:\n  mlplat:db_password: hunter2\n"
    )  # pragma: allowlist secret
    result = subprocess.run(
        [
            str(POLICY_PYTHON),
            str(tmp_path / "policies/pulumi/offline.py"),
            str(FIXTURES / "pulumi-pack-empty-prod.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},  # the copy finds its own infra/
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert keyed(found) == Counter({(STACK_SECRETS, stack_urn(), "mandatory"): 1}), found
    assert "config mlplat:db_password in Pulumi.prod.yaml" in found[0]["message"]


def test_gpu_count_selects_a_gpu_pool_and_computed_taints_are_advisory(tmp_path: Path) -> None:
    """`instance-category In [g]` and `instance-gpu-count In [1]` ask for GPU instances (only a count of 0
    does not); a GPU node group
    whose taints are computed during the update cannot be judged in preview: advisory, not a violation."""
    by_count = {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "In", "values": ["1"]}
    by_category = {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["g"]}
    resources = [
        {"urn": urn("gpu-by-category", NODE_POOL), "type": NODE_POOL, "name": "gpu-by-category",
         "inputs": {"spec": {"template": {"spec": {"requirements": [by_category]}}}}},
        {"urn": urn("gpu-by-count", NODE_POOL), "type": NODE_POOL, "name": "gpu-by-count",
         "inputs": {"spec": {"template": {"spec": {"requirements": [by_count]}}}}},
        {"urn": urn("gpu-group", NODE_GROUP), "type": NODE_GROUP, "name": "gpu-group",
         "inputs": {"amiType": "AL2023_x86_64_NVIDIA", "launchTemplate": {"id": "lt-1"}, "taints": UNKNOWN}},
    ]  # fmt: skip
    assert keyed(violations_of(small_plan(tmp_path, resources))) == Counter(
        {
            ("gpu-pool-taint", urn("gpu-by-category", NODE_POOL), "mandatory"): 1,
            ("gpu-pool-limits", urn("gpu-by-category", NODE_POOL), "mandatory"): 1,
            ("gpu-pool-taint", urn("gpu-by-count", NODE_POOL), "mandatory"): 1,
            ("gpu-pool-limits", urn("gpu-by-count", NODE_POOL), "mandatory"): 1,
            ("gpu-pool-taint", urn("gpu-group", NODE_GROUP), "advisory"): 1,
        }
    )


@pytest.mark.parametrize(
    ("computed", "expected"),
    [
        pytest.param(
            "endpointPublicAccess",
            {
                ("eks-endpoint-access", urn("eks", EKS), "advisory"): 1,
                (API_ACCESS, stack_urn(), "advisory"): 1,
            },
            id="endpoint-access-computed",
        ),
        pytest.param(
            "fromPort",
            {(API_ACCESS, urn("open-https", INGRESS_RULE), "mandatory"): 1},
            id="from-port-computed",
        ),
    ],
)
def test_computed_endpoint_access_and_ports_are_not_taken_for_closed(
    tmp_path: Path, computed: str, expected: dict[tuple[str, str, str], int]
) -> None:
    """A prod cluster whose endpointPublicAccess is computed cannot be judged in preview (advisory, as
    the CLI's analyzer reports it), never passed as private; a rule on the cluster's group whose fromPort
    is computed may admit 443 and is judged as if it did."""
    cluster = private_cluster(CLUSTER_GROUP)
    open_rule = https_rule("open-https", CLUSTER_GROUP, cidrIpv4="0.0.0.0/0")
    if computed == "endpointPublicAccess":
        cluster["inputs"]["vpcConfig"][computed] = UNKNOWN
        del open_rule["inputs"]["cidrIpv4"]  # the endpoint alone is what cannot be judged
    else:
        open_rule["inputs"][computed] = UNKNOWN
    resources = [
        cluster,
        https_rule("api-from-runner", CLUSTER_GROUP, referencedSecurityGroupId="sg-0123456789abcdef0"),
        open_rule,
    ]
    found = [
        v
        for v in violations_of(small_plan(tmp_path, resources))
        if v["policy"] in ("eks-endpoint-access", API_ACCESS)
    ]
    assert keyed(found) == Counter(expected), found


def test_only_the_stack_resources_outputs_are_judged_as_stack_outputs(tmp_path: Path) -> None:
    """A resource of another type (here one sorting after pulumi:pulumi:Stack) whose inputs hold a
    literal under a secret-like key is not a stack output: the stack-secrets policy reports nothing."""
    typ = "random:index/randomPassword:RandomPassword"
    keepers = {"password": "hunter2"}  # pragma: allowlist secret
    resources = [
        {"urn": urn("db", typ), "type": typ, "name": "db", "inputs": {"length": 32, "keepers": keepers}}
    ]
    assert [v for v in violations_of(small_plan(tmp_path, resources)) if v["policy"] == STACK_SECRETS] == []
