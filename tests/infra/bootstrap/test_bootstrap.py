"""infra/bootstrap: the state bucket, KMS keys, GitHub OIDC trust and deploy roles have the properties
the platform's delivery relies on, read from the Terraform source with python-hcl2; who may do what is
evaluated with the small IAM evaluator in iam_eval.py (ADR 0002)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import botocore
import hcl2
import pytest
import yaml

from infra.aws import cluster, karpenter
from infra.contract import ENVIRONMENT_LABEL
from tests.support import delivery_helpers
from tests.support.delivery_helpers import (
    BOOTSTRAP,
    ENVIRONMENTS,
    REPO,
    default_environments,
    policy_statements,
    render,
    runner_layout,
    statement,
    terraform,
    workflow,
    workflow_files,
)
from tests.support.iam_eval import (
    ACCOUNT,
    ADMIN_ARN,
    GITHUB_REPOSITORY,
    GITHUB_ROLE_KINDS,
    Scope,
    boundary_arn,
    decide,
    github_environment,
    github_role,
    request,
    resolve,
    role_arn,
    role_policy,
    runner_vpc_arn,
    shadowed_sids,
    statements,
    trust_document,
)
from tests.support.workflow_steps import matrix_values

RESOURCES = terraform()["resource"]
POLICY_DOCS = terraform()["data"]["aws_iam_policy_document"]
# key_administration is the first statement of every key policy (kms.tf), runner_logs_key included.
KEY_POLICY_DOCS = {"key_administration", "state_key", "pulumi_secrets_key"}

# Allow statements whose resource is "*", each with the reason it cannot be narrower. A new one fails
# test_star_resources_are_listed until it is reasoned here (and, for checkov, in iac-skips.yaml).
STAR_RESOURCE_ALLOWED = {
    (
        "environment_scoped/platform",
        "CreateEnvironmentNetwork",
    ): "EC2 IDs exist only after creation; request tag required",
    (
        "environment_scoped/platform",
        "TagEnvironmentNetworkOnCreate",
    ): "tag on create only; request tag required",
    (
        "environment_scoped/platform",
        "ChangeEnvironmentNetwork",
    ): "EC2 IDs are random; resource tag and region required",
    ("deploy_platform", "ReadOnlyLookups"): "List/Describe/GetCallerIdentity accept only *",
    ("environment_scoped/keys", "CreateEnvironmentKeys"): "CreateKey has no resource; request tag required",
    ("environment_scoped/keys", "TagEnvironmentKeysOnCreate"): "a key being created; request tag required",
    ("environment_scoped/keys", "ManageEnvironmentKeys"): "key IDs are random; resource tag required",
    ("environment_scoped/platform", "DenyEnvironmentRetagOfNetwork"): "a Deny",
    ("environment_scoped/keys", "DenyRetagOfEnvironmentKeys"): "a Deny",
    ("environment_scoped/oidc_provider", "DenyRetagOfClusterOidcProvider"): "a Deny",
    ("deploy_platform", "DenyOtherClustersDiscoveryTags"): "a Deny",
    ("deploy_platform", "DenyOtherClustersKarpenterDiscovery"): "a Deny",
    ("deny_other_environments", "DenyOtherEnvironments"): "a Deny",
    ("deploy_iam", "ReadIam"): "read-only IAM Get/List",
    ("workload_boundary", "KarpenterListsInstanceProfiles"): "a List call, upstream grants it on *",
    ("environment_scoped/iam", "DenyEnvironmentRetagOfRoles"): "a Deny",
    ("deploy_iam", "DenyLongLivedCredentials"): "a Deny",
    ("region_held_boundary", "ClusterWorkloads"): "boundary ceiling for nodes/Karpenter/CSI; region-bound",
    ("region_held_boundary", "KarpenterPriceList"): "Price List API has no resources; pricing region only",
    ("region_held_boundary", "SsmManagedInstanceCore"): "the managed policy's own resource; region-bound",
    ("workload_boundary", "EnvironmentKeysByTag"): "EBS/EKS keys are random IDs; resource tag required",
    ("preview", "DescribeUnscopable"): "read-only Describe/List that accept only *",
    ("runner", "VpcNetworkInterfaces"): "CodeBuild's ENI and Describe calls accept only *; region-bound",
    ("deploy_keeps_runners", "NoChangesToRunnerNetwork"): "a Deny, held to the bootstrap's resource tag",
    ("runner_logs_key", "CloudWatchLogsUse"): "key policy: * is the key itself; this account's log groups",
}


def _blocks(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key, [])
    return value if isinstance(value, list) else [value]


def test_one_concern_per_file() -> None:
    names = {p.name for p in BOOTSTRAP.glob("*.tf")}
    assert names >= {
        "versions.tf",
        "variables.tf",
        "state.tf",
        "kms.tf",
        "github_oidc.tf",
        "deploy_roles.tf",
        "service_linked_roles.tf",
        "outputs.tf",
        "runners.tf",
        "preflight.tf",
    }
    # runners.tf (the in-VPC GitHub runners, ADR 0003) keeps its own inputs and outputs beside it.
    assert {v["__file__"] for v in terraform()["variable"].values()} == {"variables.tf", "runners.tf"}
    assert {o["__file__"] for o in terraform()["output"].values()} == {"outputs.tf", "runners.tf"}
    assert {b["__file__"] for b in RESOURCES["aws_iam_role"].values()} == {"deploy_roles.tf", "runners.tf"}
    assert {b["__file__"] for b in RESOURCES["aws_kms_key"].values()} == {"kms.tf", "runners.tf"}


def test_every_variable_has_description_type_and_a_default_where_sensible() -> None:
    variables = terraform()["variable"]
    for name, var in variables.items():
        assert var.get("description", "").strip(), f"variable {name} has no description"
        assert var.get("type"), f"variable {name} has no type"
    # The inputs without a safe default: key_admin_arns (a wrong guess locks the keys) and
    # github_repository (a guessed owner would be trusted by every role).
    assert {n for n, v in variables.items() if "default" not in v} == {"key_admin_arns", "github_repository"}
    assert set(default_environments()) == set(ENVIRONMENTS)


def test_terraform_and_provider_versions_are_pinned() -> None:
    (block,) = terraform()["terraform"]
    assert re.fullmatch(r"~> \d+\.\d+\.\d+", block["required_version"]), block["required_version"]
    providers = block["required_providers"][0]
    assert set(providers) == {"aws"}
    for name, spec in providers.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", spec["version"]), f"{name} is not pinned exactly: {spec}"
        assert spec["source"] == f"hashicorp/{name}"


def test_state_bucket_is_protected_from_destroy() -> None:
    bucket = RESOURCES["aws_s3_bucket"]["state"]
    assert bucket["lifecycle"][0]["prevent_destroy"] is True
    for key in RESOURCES["aws_kms_key"].values():
        assert key["lifecycle"][0]["prevent_destroy"] is True


def test_state_bucket_versioning_enabled() -> None:
    versioning = RESOURCES["aws_s3_bucket_versioning"]["state"]
    assert versioning["bucket"] == "${aws_s3_bucket.state.id}"
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"


def test_state_bucket_encrypted_with_the_customer_managed_key() -> None:
    sse = RESOURCES["aws_s3_bucket_server_side_encryption_configuration"]["state"]
    assert sse["bucket"] == "${aws_s3_bucket.state.id}"
    default = sse["rule"][0]["apply_server_side_encryption_by_default"][0]
    assert default["sse_algorithm"] == "aws:kms"
    assert default["kms_master_key_id"] == "${aws_kms_key.state.arn}"


def test_state_bucket_public_access_block_all_true() -> None:
    block = RESOURCES["aws_s3_bucket_public_access_block"]["state"]
    assert block["bucket"] == "${aws_s3_bucket.state.id}"
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    assert {f: block.get(f) for f in flags} == dict.fromkeys(flags, True)


def test_state_bucket_ownership_enforced() -> None:
    rule = RESOURCES["aws_s3_bucket_ownership_controls"]["state"]["rule"][0]
    assert rule["object_ownership"] == "BucketOwnerEnforced"


def test_state_bucket_policy_denies_non_tls() -> None:
    policy = RESOURCES["aws_s3_bucket_policy"]["state"]
    assert policy["policy"] == "${data.aws_iam_policy_document.state_bucket.json}"
    deny = statement("state_bucket", "DenyInsecureTransport")
    assert deny["effect"] == "Deny"
    assert deny["actions"] == ["s3:*"]
    assert set(deny["resources"]) == {"${aws_s3_bucket.state.arn}", "${aws_s3_bucket.state.arn}/*"}
    assert deny["principals"] == [{"type": "*", "identifiers": ["*"]}]
    assert deny["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]


def test_state_bucket_lifecycle_expires_noncurrent_versions() -> None:
    lifecycle = RESOURCES["aws_s3_bucket_lifecycle_configuration"]["state"]
    (rule,) = lifecycle["rule"]
    assert rule["status"] == "Enabled"
    days = rule["noncurrent_version_expiration"][0]["noncurrent_days"]
    assert render(days) == str(terraform()["variable"]["noncurrent_version_retention_days"]["default"])
    assert terraform()["variable"]["noncurrent_version_retention_days"]["default"] >= 30
    assert "${aws_s3_bucket_versioning.state}" in lifecycle["depends_on"]


def test_kms_keys_rotate_and_have_explicit_policies() -> None:
    keys = RESOURCES["aws_kms_key"]
    assert set(keys) == {"state", "pulumi_secrets", "runner_logs"}
    for name, key in keys.items():
        assert key["enable_key_rotation"] is True, name
        assert key["policy"].startswith("${data.aws_iam_policy_document."), name
    assert keys["pulumi_secrets"]["for_each"] == "${local.environments}"


def test_key_policies_name_principals_and_never_delegate_to_root_or_anyone() -> None:
    for doc in KEY_POLICY_DOCS:
        for st in policy_statements(doc):
            assert st["effect"] == "Allow"
            for principal in st["principals"]:
                assert principal["type"] == "AWS"
                for identifier in principal["identifiers"]:
                    assert identifier != "*" and ":root" not in identifier, f"{doc}/{st['sid']}: {identifier}"
    # The preview role may decrypt config secrets but never encrypt or re-encrypt.
    assert statement("pulumi_secrets_key", "PreviewRoleDecryptOnly")["actions"] == [
        "kms:Decrypt",
        "kms:DescribeKey",
    ]
    # Roles reach the state key only through S3.
    (via,) = statement("state_key", "StateReadWriteThroughS3")["condition"]
    assert (via["variable"], render(via["values"][0])) == ("kms:ViaService", "s3.eu-west-1.amazonaws.com")


def test_github_oidc_provider() -> None:
    provider = RESOURCES["aws_iam_openid_connect_provider"]["github"]
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["client_id_list"] == ["sts.amazonaws.com"]


REPO_SUBJECT = f"repo:{GITHUB_REPOSITORY}"


def _may_assume(kind: str, env: str, subject: str) -> bool:
    claims = {
        "token.actions.githubusercontent.com:aud": ["sts.amazonaws.com"],
        "token.actions.githubusercontent.com:sub": [subject],
    }
    return decide(
        statements(trust_document(kind), Scope(env)),
        "sts:AssumeRoleWithWebIdentity",
        role_arn(kind, env),
        claims,
    )[0]


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("kind", GITHUB_ROLE_KINDS)
def test_role_trust_is_one_repository_one_github_environment_and_literal(env: str, kind: str) -> None:
    (only,) = policy_statements(trust_document(kind))
    assert only["effect"] == "Allow" and only["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert only["principals"] == [{"type": "Federated", "identifiers": ["${local.github_oidc_provider_arn}"]}]
    (rendered,) = statements(trust_document(kind), Scope(env))
    conditions = {key: (test, values) for test, key, values in rendered.conditions}
    assert conditions["token.actions.githubusercontent.com:aud"] == ("StringEquals", ("sts.amazonaws.com",))
    test, subjects = conditions["token.actions.githubusercontent.com:sub"]
    github_env = github_environment(kind, env)
    for subject in subjects:
        assert subject.startswith(f"{REPO_SUBJECT}:environment:{github_env}:ref:refs/"), subject
    # The only wildcard anywhere is a pull request's number, in the dev preview role.
    wildcards = [s for s in subjects if "*" in s or "?" in s]
    assert wildcards == (
        [f"{REPO_SUBJECT}:environment:dev-preview:ref:refs/pull/*/merge"]
        if (kind, env) == ("preview", "dev")
        else []
    )
    assert test == ("StringLike" if wildcards else "StringEquals")
    # Each role takes its own trust policy: no two roles share one.
    assert len({trust_document(k) for k in GITHUB_ROLE_KINDS}) == len(GITHUB_ROLE_KINDS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("kind", GITHUB_ROLE_KINDS)
def test_roles_refuse_branches_other_than_main_and_tokens_without_a_ref(env: str, kind: str) -> None:
    """GitHub's default subject drops the ref when a job names an environment, so any branch that reaches
    the environment would get the role: the trust demands the ref, and main's."""
    github_env = github_environment(kind, env)
    assert _may_assume(kind, env, f"{REPO_SUBJECT}:environment:{github_env}:ref:refs/heads/main")
    for subject in (
        f"{REPO_SUBJECT}:environment:{github_env}",
        f"{REPO_SUBJECT}:environment:{github_env}:ref:refs/heads/feature",
        f"{REPO_SUBJECT}:environment:{github_env}:ref:refs/tags/v1",
        f"{REPO_SUBJECT}:ref:refs/heads/main",
        f"{REPO_SUBJECT}:pull_request",
        f"repo:example-org/other:environment:{github_env}:ref:refs/heads/main",
    ):
        assert not _may_assume(kind, env, subject), f"{kind} role of {env} trusts {subject}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("kind", GITHUB_ROLE_KINDS)
def test_only_the_dev_preview_role_runs_pull_request_code(env: str, kind: str) -> None:
    """The drift role reads the cluster's Secrets (infra/aws/cluster.py): it trusts no pull request,
    not even dev's."""
    github_env = github_environment(kind, env)
    subject = f"{REPO_SUBJECT}:environment:{github_env}:ref:refs/pull/42/merge"
    assert _may_assume(kind, env, subject) == ((kind, env) == ("preview", "dev")), subject


def _github_repository_pattern() -> re.Pattern[str]:
    (validation,) = terraform()["variable"]["github_repository"]["validation"]
    pattern = re.search(r'regex\("(.+?)",', validation["condition"])
    assert pattern, validation
    return re.compile(pattern[1].replace("\\\\", "\\"))


def test_github_repository_cannot_carry_wildcards() -> None:
    regex = _github_repository_pattern()
    assert regex.fullmatch("example-org/mlplat")
    for wildcard in ("*/mlplat", "example-org/*", "example-org/mlplat*", "*"):
        assert not regex.fullmatch(wildcard), f"github_repository accepts {wildcard}"


def test_github_repository_is_owner_and_name_in_one() -> None:
    """One value for what the trust policies name (`repo:<owner>/<name>`): half of it, or a path with
    more parts, is refused where it is set, not turned into a subject no token carries."""
    regex = _github_repository_pattern()
    for partial in ("example-org", "mlplat", "/mlplat", "example-org/", "example-org/mlplat/extra"):
        assert not regex.fullmatch(partial), f"github_repository accepts {partial}"
    assert "github_org" not in terraform()["variable"] and "github_repo" not in terraform()["variable"]


def test_github_repository_has_no_stand_in_default() -> None:
    """A default owner would be trusted by every role of an account whose tfvars forgot (or, after the
    migration to one variable, still spell the old two: Terraform only warns of those)."""
    assert "default" not in terraform()["variable"]["github_repository"]


def _written_actions(st: dict[str, Any]) -> set[str]:
    """A statement's actions as written, an expression of them (concat of a shared list) resolved."""
    actions = st.get("actions", [])
    return set(resolve(actions, Scope(ENVIRONMENTS[0])) if isinstance(actions, str) else actions)


def test_no_statement_allows_every_action() -> None:
    for doc in POLICY_DOCS:
        for st in policy_statements(doc):
            if st["effect"] == "Allow":
                assert not {"*", "*:*"} & _written_actions(st), f"{doc}/{st.get('sid')}"
                assert "not_actions" not in st, f"{doc}/{st.get('sid')} uses not_actions"


def test_star_resources_are_listed_with_a_reason() -> None:
    found = set()
    for doc in set(POLICY_DOCS) - KEY_POLICY_DOCS:  # in a key policy "*" is the key itself
        for st in policy_statements(doc):
            if "*" in st.get("resources", []):
                found.add((doc, st.get("sid")))
    unlisted = found - set(STAR_RESOURCE_ALLOWED)
    assert not unlisted, f"resource '*' without a listed reason: {sorted(unlisted)}"
    assert not set(STAR_RESOURCE_ALLOWED) - found, "stale entries in STAR_RESOURCE_ALLOWED"


def test_broad_service_wildcards_are_held_to_the_region() -> None:
    for doc in POLICY_DOCS:
        for st in policy_statements(doc):
            wildcards = [a for a in st.get("actions", []) if a.endswith(":*")]
            if st["effect"] == "Allow" and wildcards and "*" in st.get("resources", []):
                variables = {c["variable"]: c["values"] for c in st["condition"]}
                assert "aws:RequestedRegion" in variables, (
                    f"{doc}/{st['sid']}: {wildcards} on * in any region"
                )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stack_roles_are_capped_by_the_boundary_and_cannot_reach_the_bootstrap(env: str) -> None:
    deploy = role_policy("deploy", env)
    role = f"arn:aws:iam::{ACCOUNT}:role/mlplat-{env}-karpenter"
    tagged = {"mlplat/environment": env}

    def creates(boundary: str, tags: dict[str, str]) -> bool:
        return decide(
            deploy, "iam:CreateRole", role, request(iam__PermissionsBoundary=boundary, request_tags=tags)
        )[0]

    assert creates(boundary_arn(env), tagged)
    assert not creates(f"arn:aws:iam::{ACCOUNT}:policy/mlplat-wide-open", tagged), "role without the boundary"
    assert not creates(boundary_arn(env), {}), "role without the environment tag"
    for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"):
        ctx = request(
            iam__PermissionsBoundary=f"arn:aws:iam::{ACCOUNT}:policy/mlplat-wide-open", resource_tags=tagged
        )
        assert not decide(deploy, action, role, ctx)[0], f"{action} lifts the boundary of {role}"
    for own in [role_arn("deploy", env), role_arn("preview", env), boundary_arn(env)]:
        for action in (
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePolicy",
            "iam:CreatePolicyVersion",
            "iam:TagRole",
        ):
            ctx = request(
                iam__PermissionsBoundary=boundary_arn(env), resource_tags=tagged, request_tags=tagged
            )
            assert not decide(deploy, action, own, ctx)[0], f"{env} deploy role may {action} {own}"


def _state_object(key: str) -> str:
    return f"{Scope('dev').state_bucket_arn}/{key}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_and_preview_roles_only_touch_their_own_stack_state(env: str) -> None:
    """Object keys of the DIY backend's project layout (pulumi/pulumi pkg/backend/diy store.go, lock.go)."""
    own = {
        "stack": f".pulumi/stacks/mlplat/{env}.json",
        "stack backup copy": f".pulumi/stacks/mlplat/{env}.json.bak",
        "history": f".pulumi/history/mlplat/{env}/{env}-1700000000.history.json",
        "backup": f".pulumi/backups/mlplat/{env}/{env}.1700000000.json",
        "lock": f".pulumi/locks/organization/mlplat/{env}/5f0c.json",
    }
    ctx = request(aws__RequestedRegion="eu-west-1")
    for kind in ("deploy", "preview"):
        policy = role_policy(kind, env)
        assert decide(policy, "s3:GetObject", _state_object(".pulumi/meta.yaml"), ctx)[0]
        for what, key in own.items():
            assert decide(policy, "s3:GetObject", _state_object(key), ctx)[0], (
                f"{kind} {env} cannot read its {what}"
            )
            may_write = kind == "deploy" or what == "lock"
            for action in ("s3:PutObject", "s3:DeleteObject"):
                assert decide(policy, action, _state_object(key), ctx)[0] == may_write, (
                    f"{kind} {env} {action} {what}"
                )
        # The backend marker and the bootstrap's own state are the admins' (state.tf), never a stack's.
        for key in (".pulumi/meta.yaml", "bootstrap/terraform.tfstate"):
            assert not decide(policy, "s3:PutObject", _state_object(key), ctx)[0], (
                f"{kind} {env} writes {key}"
            )


def test_outputs_backend_url_secrets_providers_and_role_arns() -> None:
    outputs = terraform()["output"]
    assert (
        outputs["pulumi_backend_url"]["value"]
        == "s3://${aws_s3_bucket.state.bucket}?region=${var.aws_region}&awssdk=v2"
    )
    providers = outputs["pulumi_secrets_providers"]["value"]
    assert "awskms://${alias.name}?region=${var.aws_region}" in providers
    assert (
        RESOURCES["aws_kms_alias"]["pulumi_secrets"]["name"] == "alias/${var.name_prefix}-pulumi-${each.key}"
    )
    assert "aws_iam_role.github[key].arn" in outputs["github_role_arns"]["value"]
    for name, out in outputs.items():
        assert out.get("description", "").strip(), f"output {name} has no description"


def test_terraform_fmt_check() -> None:
    terraform_bin = shutil.which("terraform")
    if terraform_bin is None:
        pytest.skip("terraform is not on PATH (scripts/ensure-tools lists how to install it)")
    result = subprocess.run(
        [terraform_bin, "fmt", "-check", "-recursive", "-diff", str(BOOTSTRAP)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


# --- Issue 12.1: the documented first steps (`pulumi login`, `stack init`, `terraform init -migrate-state`)


def test_pulumi_login_finds_an_initialised_project_backend() -> None:
    """The DIY backend writes .pulumi/meta.yaml on first use of an empty bucket (pulumi/pulumi
    pkg/backend/diy/meta.go ensurePulumiMeta); no stack role may write there, so the bootstrap does."""
    meta = RESOURCES["aws_s3_object"]["pulumi_meta"]
    assert (meta["bucket"], meta["key"]) == ("${aws_s3_bucket.state.id}", ".pulumi/meta.yaml")
    assert yaml.safe_load(meta["content"].replace("\\n", "\n")) == {"version": 1}, (
        "project layout is version 1"
    )
    assert (meta["server_side_encryption"], meta["kms_key_id"]) == ("aws:kms", "${aws_kms_key.state.arn}")


@pytest.mark.parametrize(
    "key",
    [
        ".pulumi/stacks/mlplat/dev.json",  # pulumi stack init
        ".pulumi/stacks/mlplat/prod.json.bak",
        ".pulumi/locks/organization/mlplat/staging/5f0c.json",  # pulumi cancel
        "bootstrap/terraform.tfstate",  # terraform init -migrate-state
        "bootstrap/terraform.tfstate.tflock",  # use_lockfile=true
    ],
)
def test_admins_can_init_stacks_and_keep_the_bootstrap_state_in_the_bucket(key: str) -> None:
    scope = Scope("dev")
    bucket, key_policy = statements("state_bucket", scope), statements("state_key", scope)
    tls = {"aws:SecureTransport": ["true"]}
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        allowed, why = decide(bucket, action, f"{scope.state_bucket_arn}/{key}", tls, principal=ADMIN_ARN)
        assert allowed, f"admin {action} {key}: {why}"
    assert decide(bucket, "s3:ListBucket", scope.state_bucket_arn, tls, principal=ADMIN_ARN)[0]
    via_s3 = {"kms:ViaService": ["s3.eu-west-1.amazonaws.com"]}
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert decide(key_policy, action, scope.key_arn("state"), via_s3, principal=ADMIN_ARN)[0], action
        # Directly, outside S3, nobody decrypts state objects.
        assert not decide(key_policy, action, scope.key_arn("state"), {}, principal=ADMIN_ARN)[0], action


@pytest.mark.parametrize("doc", ["state_key", "pulumi_secrets_key", "runner_logs_key"])
@pytest.mark.parametrize("action", ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:EnableKeyRotation"])
def test_admins_keep_administering_every_key_whose_policy_does_not_delegate_to_iam(
    doc: str, action: str
) -> None:
    """The key policies name their principals instead of the account root, so no IAM policy can grant
    access back: a key policy that lost the admins' KeyAdministration statement could never be changed
    again. Only the admins hold it: a deploy role cannot rewrite or delete a key."""
    scope = Scope("dev")
    policy, key = statements(doc, scope), scope.key_arn(doc)
    assert decide(policy, action, key, {}, principal=ADMIN_ARN)[0], f"{doc}: admin {action}"
    assert not decide(policy, action, key, {}, principal=role_arn("deploy", "dev"))[0], (
        f"{doc}: deploy {action}"
    )


def test_state_cannot_be_written_under_s3_managed_keys() -> None:
    # `terraform init -migrate-state` without kms_key_id sends AES256: refused, so the bootstrap state
    # (and any stack file) is only ever stored under the state key.
    scope = Scope("dev")
    bucket = statements("state_bucket", scope)
    tls = {"aws:SecureTransport": ["true"]}
    target = f"{scope.state_bucket_arn}/bootstrap/terraform.tfstate"
    for header in ("AES256", "aws:kms:dsse"):
        ctx = {**tls, "s3:x-amz-server-side-encryption": [header]}
        assert not decide(bucket, "s3:PutObject", target, ctx, principal=ADMIN_ARN)[0], header
    ours = {
        **tls,
        "s3:x-amz-server-side-encryption": ["aws:kms"],
        "s3:x-amz-server-side-encryption-aws-kms-key-id": [scope.key_arn("state")],
    }
    assert decide(bucket, "s3:PutObject", target, ours, principal=ADMIN_ARN)[0]
    assert decide(bucket, "s3:PutObject", target, tls, principal=ADMIN_ARN)[0]  # no header: bucket default


# --- Issue 12.10: the Spot service-linked role


def test_spot_service_linked_role_exists_before_karpenter_launches_spot() -> None:
    spot = RESOURCES["aws_iam_service_linked_role"]["spot"]
    assert spot["aws_service_name"] == "spot.amazonaws.com"
    # Optional for an account that already has it (one per account): created unless told otherwise.
    assert spot["count"] == "${var.create_spot_service_linked_role ? 1 : 0}"
    assert terraform()["variable"]["create_spot_service_linked_role"]["default"] is True


def test_elb_service_linked_role_exists_before_the_gateway_asks_for_an_nlb() -> None:
    """The load balancer controller's role has no iam:CreateServiceLinkedRole (the boundary refuses
    it), so in an account without this role the gateway's first NLB would fail to create."""
    elb = RESOURCES["aws_iam_service_linked_role"]["elastic_load_balancing"]
    assert elb["aws_service_name"] == "elasticloadbalancing.amazonaws.com"
    assert elb["count"] == "${var.create_elb_service_linked_role ? 1 : 0}"
    assert terraform()["variable"]["create_elb_service_linked_role"]["default"] is True


IDENTITY_DOCS = ("deploy_state", "deploy_platform", "deploy_iam", "preview", "workload_boundary")


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("doc", IDENTITY_DOCS)
def test_service_linked_roles_are_created_only_for_named_services(env: str, doc: str) -> None:
    policy = statements(doc, Scope(env))
    spot = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"
    for service in ("spot.amazonaws.com", "ec2.amazonaws.com", "iam.amazonaws.com"):
        ctx = {"iam:AWSServiceName": [service]}
        assert not decide(policy, "iam:CreateServiceLinkedRole", spot, ctx)[0], (
            f"{doc} creates {service}'s role"
        )
    assert not decide(policy, "iam:CreateServiceLinkedRole", spot, {})[0], (
        f"{doc}: no iam:AWSServiceName condition"
    )
    if doc == "deploy_iam":
        eks = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/eks.amazonaws.com/AWSServiceRoleForAmazonEKS"
        assert decide(
            policy, "iam:CreateServiceLinkedRole", eks, {"iam:AWSServiceName": ["eks.amazonaws.com"]}
        )[0]


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("doc", ["workload_boundary", "deploy_platform", "preview"])
def test_no_role_of_an_environment_reads_or_changes_what_another_environment_tagged(
    env: str, doc: str
) -> None:
    """DenyOtherEnvironments reaches these documents as an override document (the provider appends it
    last): a role or boundary that lost it could act on another environment's resources its grants
    match by name or "*" (dev's preview runs unreviewed code)."""
    policy = statements(doc, Scope(env))
    instance = f"arn:aws:ec2:{Scope(env).region}:{ACCOUNT}:instance/i-0123456789abcdef0"
    for other in (e for e in ENVIRONMENTS if e != env):
        tagged = {"aws:ResourceTag/mlplat/environment": [other]}
        for action in ("ec2:DescribeInstances", "ec2:TerminateInstances", "ec2:CreateTags"):
            allowed, why = decide(policy, action, instance, tagged)
            # Denied by the override, or never granted at all (the boundary grants no EC2 tagging).
            assert not allowed and (not why or any(w.endswith("/DenyOtherEnvironments") for w in why)), (
                f"{doc} of {env} may {action} on an instance tagged {other}: {why}"
            )
        denies = [st for st in policy if st.sid == "DenyOtherEnvironments" and st.effect == "Deny"]
        assert denies and policy[-1] is denies[0], f"{doc}: DenyOtherEnvironments is not its last statement"


# --- Issue 12.13: what the node role, Karpenter and `pulumi preview --refresh` need

# What the node roles' AmazonSSMManagedInstanceCore grants, as AWS publishes it (the file names the
# version and the page it was read from); the boundary must admit all of it.
SSM_MANAGED_INSTANCE_CORE = json.loads(
    (REPO / "tests" / "fixtures" / "aws-managed-policies" / "AmazonSSMManagedInstanceCore.json").read_text(
        encoding="utf-8"
    )
)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_boundary_admits_what_the_node_roles_ssm_managed_policy_needs(env: str) -> None:
    boundary = statements("workload_boundary", Scope(env))
    ctx = {"aws:RequestedRegion": ["eu-west-1"]}
    instance = f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0123456789abcdef0"
    public = "arn:aws:ssm:eu-west-1::parameter/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/recommended/image_id"
    # The managed policy the file describes is the one the program's node roles carry.
    assert SSM_MANAGED_INSTANCE_CORE["policy"] in cluster.NODE_POLICIES
    assert SSM_MANAGED_INSTANCE_CORE["policy"] in karpenter.NODE_POLICIES
    for action in SSM_MANAGED_INSTANCE_CORE["actions"]:
        resource = public if action.startswith("ssm:GetParameter") else instance
        assert decide(boundary, action, resource, ctx)[0], f"boundary of {env} blocks {action}"
    # The managed policy's GetParameter on "*" stays capped: no environment's own parameters.
    for other in ENVIRONMENTS:
        secret = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/mlplat-{other}/db-password"
        assert not decide(boundary, "ssm:GetParameter", secret, ctx)[0]


@pytest.mark.parametrize(
    ("region", "pricing_region"),
    # aws/karpenter-provider-aws pkg/providers/pricing/pricing.go NewAPI
    [
        ("eu-west-1", "eu-central-1"),
        ("eu-north-1", "eu-central-1"),
        ("us-west-2", "us-east-1"),
        ("ap-southeast-1", "ap-south-1"),
    ],
)
def test_boundary_lets_karpenter_read_prices_in_its_pricing_region(region: str, pricing_region: str) -> None:
    boundary = statements("workload_boundary", Scope("prod", region))
    assert decide(boundary, "pricing:GetProducts", "*", {"aws:RequestedRegion": [pricing_region]})[0]
    elsewhere = "us-west-1"
    assert not decide(boundary, "pricing:GetProducts", "*", {"aws:RequestedRegion": [elsewhere]})[0]


@pytest.mark.parametrize("kind", ["preview", "deploy"])
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_refresh_reads_its_own_eventbridge_rules_and_no_other_environments(kind: str, env: str) -> None:
    """A refresh reads the stack's interruption rules, their targets and tags; another environment's rules
    (what they watch, where they send it) are none of its business."""
    policy = role_policy(kind, env)
    for action in ("events:ListTargetsByRule", "events:DescribeRule", "events:ListTagsForResource"):
        for rule_env in ENVIRONMENTS:
            rule = f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/mlplat-{rule_env}-spot-interruption-1a2b"
            assert decide(policy, action, rule, {})[0] == (rule_env == env), f"{env} {kind} {action} {rule}"


# --- Issue 13.1: no role of one environment touches another environment's resources

TAG = "mlplat/environment"
REGION = "eu-west-1"


def _arn(service: str, rest: str, *, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{rest}"


EC2_ACTIONS = (
    "ec2:AttachInternetGateway",
    "ec2:AttachVolume",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:CreateRoute",
    "ec2:CreateRouteTable",
    "ec2:CreateSubnet",
    "ec2:CreateTags",
    "ec2:DeleteNatGateway",
    "ec2:DeleteSubnet",
    "ec2:DeleteTags",
    "ec2:DeleteVpc",
    "ec2:ModifyInstanceAttribute",
    "ec2:ModifySubnetAttribute",
    "ec2:ReleaseAddress",
    "ec2:ReplaceRoute",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:RunInstances",
    "ec2:TerminateInstances",
)
IAM_ROLE_ACTIONS = (
    "iam:AttachRolePolicy",
    "iam:DeleteRole",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PassRole",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
)


def _bootstrap_default_tags() -> dict[str, str]:
    """The tags the bootstrap's provider puts on every resource it creates (versions.tf default_tags)."""
    default_tags = terraform()["provider"][0]["aws"]["default_tags"][0]["tags"]
    return dict(re.findall(r'"([^"]+)" = "([^"]+)"', default_tags))


def _runner_route_table(env: str) -> tuple[str, dict[str, str]]:
    """ARN and tags of the runner route table `env`'s stack routes back into
    (deploy_runners.<env>.private_route_table_id), as the bootstrap creates it: one table of its own per
    environment, or the one table every environment shares."""
    output = terraform()["output"]["deploy_runners"]["value"]
    found = re.search(r"private_route_table_id = aws_route_table\.(\w+)(\[env\])?\.id", output)
    assert found, output
    table = RESOURCES["aws_route_table"][found[1]]
    per_environment = bool(found[2])
    tags = {k: render(v, env if per_environment else None) for k, v in table.get("tags", {}).items()}
    rtb = f"rtb-runner-{env}" if per_environment else "rtb-runner"
    return _arn("ec2", f"route-table/{rtb}"), _bootstrap_default_tags() | tags


def _victim_resources(victim: str) -> list[tuple[str, tuple[str, ...], dict[str, str]]]:
    """(resource ARN, actions, resource tags) of one environment, as the program and AWS create them:
    what the program creates carries its environment tag; what EKS, Karpenter or the load balancer
    controller create carries only their own tags."""
    cluster = f"mlplat-{victim}"
    env_tag = {TAG: victim}
    ec2_tagged = [
        "vpc/vpc-1",
        "subnet/subnet-1",
        "security-group/sg-1",
        "route-table/rtb-1",
        "natgateway/nat-1",
    ]
    ec2_tagged += ["launch-template/lt-1", "elastic-ip/eipalloc-1", "internet-gateway/igw-1", "volume/vol-1"]
    table = [(_arn("ec2", r), EC2_ACTIONS, env_tag) for r in ec2_tagged]
    # Untagged by the program, so only the calls that act on an existing resource of their type apply.
    table += [
        (
            _arn("ec2", "security-group/sg-eks"),
            (
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:CreateTags",
                "ec2:DeleteSecurityGroup",
                "ec2:ModifySecurityGroupRules",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
            ),
            {"aws:eks:cluster-name": cluster},
        ),
        # The runner path (ADR 0003): the victim's own runner route table, peering and API rule.
        (
            _runner_route_table(victim)[0],
            ("ec2:CreateRoute", "ec2:DeleteRoute", "ec2:ReplaceRoute"),
            _runner_route_table(victim)[1],
        ),
        (
            _arn("ec2", "vpc-peering-connection/pcx-1"),
            (
                "ec2:AcceptVpcPeeringConnection",
                "ec2:DeleteVpcPeeringConnection",
                "ec2:ModifyVpcPeeringConnectionOptions",
            ),
            env_tag,
        ),
        (
            _arn("ec2", "security-group-rule/sgr-1"),
            ("ec2:CreateTags", "ec2:ModifySecurityGroupRules", "ec2:RevokeSecurityGroupIngress"),
            env_tag,
        ),
        (
            _arn("ec2", "instance/i-gpu"),
            ("ec2:AttachVolume", "ec2:CreateTags", "ec2:ModifyInstanceAttribute", "ec2:TerminateInstances"),
            {f"kubernetes.io/cluster/{cluster}": "owned"},
        ),
    ]
    eks_actions = (
        "eks:AssociateAccessPolicy",
        "eks:CreateAccessEntry",
        "eks:CreateAddon",
        "eks:CreateNodegroup",
        "eks:CreatePodIdentityAssociation",
        "eks:DeleteCluster",
        "eks:DeleteNodegroup",
        "eks:TagResource",
        "eks:UpdateAccessEntry",
        "eks:UpdateAddon",
        "eks:UpdateClusterConfig",
        "eks:UpdateNodegroupConfig",
    )
    for rest in (
        f"cluster/{cluster}",
        f"nodegroup/{cluster}/{cluster}-system/1a2b",
        f"addon/{cluster}/vpc-cni/1a2b",
        f"access-entry/{cluster}/role/{ACCOUNT}/mlplat-{victim}-admin/1a2b",
    ):
        table.append((_arn("eks", rest), eks_actions, env_tag))
    kms_actions = (
        "kms:CreateAlias",
        "kms:CreateGrant",
        "kms:Decrypt",
        "kms:DisableKey",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:PutKeyPolicy",
        "kms:ReEncryptFrom",
        "kms:ScheduleKeyDeletion",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:UpdateAlias",
    )
    for key in (f"pulumi-{victim}", f"eks-secrets-{victim}"):
        table.append((Scope(victim).key_arn(key), kms_actions, env_tag))
    table.append(
        (_arn("kms", f"alias/mlplat-{victim}-eks-secrets"), ("kms:DeleteAlias", "kms:UpdateAlias"), {})
    )
    state = Scope(victim).state_bucket_arn
    s3_actions = ("s3:DeleteObject", "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject")
    for key in (
        f".pulumi/stacks/mlplat/{victim}.json",
        f".pulumi/history/mlplat/{victim}/{victim}-1.history.json",
        f".pulumi/backups/mlplat/{victim}/{victim}.1.json",
        f".pulumi/locks/organization/mlplat/{victim}/5f0c.json",
    ):
        table.append((f"{state}/{key}", s3_actions, {}))
    table += [
        (f"arn:aws:s3:::mlplat-{victim}-models/model.bin", s3_actions, {}),
        (f"arn:aws:s3:::mlplat-{victim}-models", ("s3:DeleteBucket", "s3:PutBucketPolicy"), {}),
        (
            _arn("sqs", f"mlplat-{victim}-interruptions1a2b"),
            ("sqs:DeleteQueue", "sqs:ReceiveMessage", "sqs:SendMessage", "sqs:SetQueueAttributes"),
            env_tag,
        ),
        (
            _arn("events", f"rule/mlplat-{victim}-spot1a2b"),
            ("events:DeleteRule", "events:PutRule", "events:PutTargets", "events:RemoveTargets"),
            env_tag,
        ),
        (
            _arn("logs", f"log-group:/aws/eks/{cluster}/cluster:*"),
            ("logs:DeleteLogGroup", "logs:FilterLogEvents", "logs:GetLogEvents", "logs:PutRetentionPolicy"),
            env_tag,
        ),
        (f"arn:aws:iam::{ACCOUNT}:role/mlplat-{victim}-karpenter", IAM_ROLE_ACTIONS, env_tag),
        (role_arn("deploy", victim), IAM_ROLE_ACTIONS, env_tag),
        (role_arn("preview", victim), IAM_ROLE_ACTIONS, env_tag),
        (
            f"arn:aws:iam::{ACCOUNT}:policy/mlplat-{victim}-karpenter",
            ("iam:CreatePolicyVersion", "iam:DeletePolicy"),
            {},
        ),
        (boundary_arn(victim), ("iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"), {}),
        (
            f"arn:aws:iam::{ACCOUNT}:instance-profile/mlplat-{victim}-gpu",
            ("iam:AddRoleToInstanceProfile", "iam:DeleteInstanceProfile"),
            {},
        ),
        (
            _oidc_provider_arn(victim),
            (
                "iam:AddClientIDToOpenIDConnectProvider",
                "iam:DeleteOpenIDConnectProvider",
                "iam:TagOpenIDConnectProvider",
                "iam:UntagOpenIDConnectProvider",
                "iam:UpdateOpenIDConnectProviderThumbprint",
            ),
            env_tag,
        ),
        (
            _arn("autoscaling", f"autoScalingGroup:1a2b:autoScalingGroupName/eks-{cluster}-system-1a2b"),
            (
                "autoscaling:DeleteAutoScalingGroup",
                "autoscaling:SetDesiredCapacity",
                "autoscaling:UpdateAutoScalingGroup",
            ),
            {"eks:cluster-name": cluster},
        ),
        (
            _arn("elasticloadbalancing", f"loadbalancer/app/k8s-{victim}/1a2b"),
            ("elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:ModifyListener"),
            {"elbv2.k8s.aws/cluster": cluster},
        ),
    ]
    return table


def _attacker_contexts(
    attacker: str, victim: str, resource_tags: dict[str, str]
) -> list[dict[str, list[str]]]:
    """What a role of `attacker` controls in a request: the tags it sends, the boundary it names, the
    service it passes a role to. The resource's own tags it cannot choose."""
    base = {"aws:RequestedRegion": [REGION], "aws:SecureTransport": ["true"]}
    out = []
    for request_tags in ({}, {TAG: attacker}, {TAG: victim}):
        for boundary in (boundary_arn(attacker), boundary_arn(victim)):
            ctx = request(resource_tags=resource_tags, request_tags=request_tags)
            out.append(
                base
                | ctx
                | {"iam:PermissionsBoundary": [boundary], "iam:PassedToService": ["ec2.amazonaws.com"]}
            )
    return out


@pytest.mark.parametrize("kind", ["deploy", "preview"])
@pytest.mark.parametrize(
    ("attacker", "victim"), [(a, v) for a in ENVIRONMENTS for v in ENVIRONMENTS if a != v]
)
def test_no_role_of_one_environment_touches_another_environments_resources(
    kind: str, attacker: str, victim: str
) -> None:
    reached = _reached(kind, attacker, victim)
    assert not reached, f"{kind} role of {attacker} reaches {victim}:\n" + "\n".join(reached)


def _reached(kind: str, attacker: str, victim: str) -> list[str]:
    """What the `kind` role of `attacker` may do to `victim`'s resources, whatever it sends."""
    policy = role_policy(kind, attacker)
    reached = []
    for resource, actions, tags in _victim_resources(victim):
        for action in actions:
            for ctx in _attacker_contexts(attacker, victim, tags):
                allowed, why = decide(policy, action, resource, ctx)
                if allowed:
                    reached.append(f"{action} {resource} via {why}")
                    break
    return reached


def _oidc_provider_arn(env: str) -> str:
    """The IAM OIDC provider of `env`'s cluster: its ID is random, nothing in the ARN names the environment."""
    return f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.{REGION}.amazonaws.com/id/{env.upper()}1A2B"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_tag_of_an_existing_resource_cannot_be_changed(env: str) -> None:
    """Re-tagging is how a role would move a resource across the line (first its own into another
    environment, or an untagged one into its own): the environment tag is set at creation only."""
    deploy = role_policy("deploy", env)
    base = {"aws:RequestedRegion": [REGION]}
    own = {TAG: env}
    for other in ENVIRONMENTS:
        for action, resource in (
            ("ec2:CreateTags", _arn("ec2", "vpc/vpc-1")),
            ("ec2:DeleteTags", _arn("ec2", "vpc/vpc-1")),
            ("kms:TagResource", Scope(env).key_arn("eks-secrets")),
            ("kms:UntagResource", Scope(env).key_arn("eks-secrets")),
            ("iam:TagRole", f"arn:aws:iam::{ACCOUNT}:role/mlplat-{env}-karpenter"),
            ("iam:UntagRole", f"arn:aws:iam::{ACCOUNT}:role/mlplat-{env}-karpenter"),
            ("iam:TagOpenIDConnectProvider", _oidc_provider_arn(env)),
            ("iam:UntagOpenIDConnectProvider", _oidc_provider_arn(env)),
        ):
            ctx = base | request(resource_tags=own, request_tags={TAG: other})
            assert not decide(deploy, action, resource, ctx)[0], (
                f"{env} deploy {action} {TAG}={other} on {resource}"
            )
    # Other tags of its own resources stay manageable (cost centre, names).
    ctx = base | request(resource_tags=own, request_tags={"mlplat/cost-center": "ml-platform"})
    assert decide(deploy, "ec2:CreateTags", _arn("ec2", "vpc/vpc-1"), ctx)[0]
    assert decide(deploy, "kms:TagResource", Scope(env).key_arn("eks-secrets"), ctx)[0]
    # An untagged resource (EKS's cluster security group, a foreign VPC) cannot be pulled in.
    ctx = base | request(resource_tags={"aws:eks:cluster-name": f"mlplat-{env}"}, request_tags={TAG: env})
    assert not decide(deploy, "ec2:CreateTags", _arn("ec2", "security-group/sg-eks"), ctx)[0]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_environment_writes_another_clusters_discovery_tags_on_its_network(env: str) -> None:
    """Karpenter and the cloud integrations pick subnets by tag: dev's subnet tagged for prod's cluster
    would put prod nodes in dev's network."""
    deploy = role_policy("deploy", env)
    own = {TAG: env}
    for other in ENVIRONMENTS:
        for tags in (
            {"karpenter.sh/discovery": f"mlplat-{other}"},
            {f"kubernetes.io/cluster/mlplat-{other}": "shared"},
        ):
            existing = {"aws:RequestedRegion": [REGION]} | request(resource_tags=own, request_tags=tags)
            on_create = {"aws:RequestedRegion": [REGION], "ec2:CreateAction": ["CreateSubnet"]}
            on_create |= request(request_tags=own | tags)
            for ctx in (existing, on_create):
                assert decide(deploy, "ec2:CreateTags", _arn("ec2", "subnet/subnet-1"), ctx)[0] == (
                    other == env
                ), tags


def _own_stack_calls(env: str) -> list[tuple[str, str, dict[str, list[str]]]]:
    """Calls `pulumi up` makes for its own stack, on its own resources, with the tags it sets."""
    own = {TAG: env}
    base = {"aws:RequestedRegion": [REGION]}
    role = f"arn:aws:iam::{ACCOUNT}:role/mlplat-{env}-karpenter"
    cluster = f"mlplat-{env}"
    calls = [
        ("ec2:CreateVpc", _arn("ec2", "vpc/*"), request(request_tags=own)),
        (
            "ec2:CreateTags",
            _arn("ec2", "vpc/*"),
            request(request_tags=own) | {"ec2:CreateAction": ["CreateVpc"]},
        ),
        ("ec2:CreateSubnet", _arn("ec2", "subnet/*"), request(request_tags=own)),
        ("ec2:CreateSubnet", _arn("ec2", "vpc/vpc-1"), request(resource_tags=own, request_tags=own)),
        (
            "ec2:CreateNatGateway",
            _arn("ec2", "elastic-ip/eipalloc-1"),
            request(resource_tags=own, request_tags=own),
        ),
        ("ec2:CreateRoute", _arn("ec2", "route-table/rtb-1"), request(resource_tags=own)),
        ("ec2:DeleteSubnet", _arn("ec2", "subnet/subnet-1"), request(resource_tags=own)),
        ("ec2:DescribeVpcs", "*", {}),
        ("eks:CreateCluster", _arn("eks", f"cluster/{cluster}"), request(request_tags=own)),
        ("eks:CreateAccessEntry", _arn("eks", f"cluster/{cluster}"), {}),
        ("eks:AssociateAccessPolicy", _arn("eks", f"access-entry/{cluster}/role/{ACCOUNT}/x/1a2b"), {}),
        ("eks:CreateAddon", _arn("eks", f"cluster/{cluster}"), {}),
        ("kms:CreateKey", "*", request(request_tags=own)),
        ("kms:TagResource", "*", request(request_tags=own)),
        ("kms:PutKeyPolicy", Scope(env).key_arn("eks-secrets"), request(resource_tags=own)),
        ("kms:CreateAlias", _arn("kms", f"alias/mlplat-{env}-eks-secrets"), {}),
        ("kms:CreateAlias", Scope(env).key_arn("eks-secrets"), request(resource_tags=own)),
        (
            "iam:CreateRole",
            role,
            request(request_tags=own) | {"iam:PermissionsBoundary": [boundary_arn(env)]},
        ),
        ("iam:TagRole", role, request(request_tags=own)),
        ("iam:PutRolePolicy", role, {"iam:PermissionsBoundary": [boundary_arn(env)]}),
        ("iam:UpdateAssumeRolePolicy", role, request(resource_tags=own)),
        ("iam:PassRole", role, {"iam:PassedToService": ["eks.amazonaws.com"]}),
        ("iam:CreateOpenIDConnectProvider", _oidc_provider_arn(env), request(request_tags=own)),
        ("iam:TagOpenIDConnectProvider", _oidc_provider_arn(env), request(request_tags=own)),
        ("iam:UpdateOpenIDConnectProviderThumbprint", _oidc_provider_arn(env), request(resource_tags=own)),
        ("sqs:CreateQueue", _arn("sqs", f"mlplat-{env}-interruptions1a2b"), {}),
        ("events:PutTargets", _arn("events", f"rule/mlplat-{env}-spot1a2b"), {}),
        ("logs:CreateLogGroup", _arn("logs", f"log-group:/aws/eks/{cluster}/cluster"), {}),
        ("s3:PutObject", f"{Scope(env).state_bucket_arn}/.pulumi/stacks/mlplat/{env}.json", {}),
    ]
    return [(action, resource, base | ctx) for action, resource, ctx in calls]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_can_still_build_its_own_environment(env: str) -> None:
    """The other side of isolation: every call the program makes for its own stack stays allowed."""
    deploy = role_policy("deploy", env)
    for action, resource, ctx in _own_stack_calls(env):
        allowed, why = decide(deploy, action, resource, ctx)
        assert allowed, f"{env} deploy role cannot {action} on {resource} ({why or 'no statement'})"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_preview_role_cannot_change_what_the_deploy_role_builds(env: str) -> None:
    """The preview role runs pull-request code in dev: a policy of the deploy role attached to it (a table
    entry naming the wrong role) would let that code change the stack. It reads; it writes nothing but its
    lock."""
    preview = role_policy("preview", env)
    writes = [
        c for c in _own_stack_calls(env) if not c[0].split(":")[1].startswith(("Describe", "Get", "List"))
    ]
    assert len(writes) > 20, writes
    for action, resource, ctx in writes:
        allowed, why = decide(preview, action, resource, ctx)
        assert not allowed, f"{env} preview role may {action} on {resource} ({why})"


# --- The runner path (ADR 0003): the program peers its cluster VPC with the runner VPC, routes back in its
# runner route table and admits the runner on the cluster security group. Resources as AWS holds them: the
# runner VPC carries only the bootstrap's tags, the cluster security group only EKS's.


def _cluster_security_group(env: str) -> tuple[str, dict[str, str]]:
    cluster = f"mlplat-{env}"
    # https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html (tags EKS puts on it)
    return _arn("ec2", "security-group/sg-eks"), {
        "aws:eks:cluster-name": cluster,
        f"kubernetes.io/cluster/{cluster}": "owned",
    }


def _runner_vpc_tags() -> dict[str, str]:
    return _bootstrap_default_tags() | RESOURCES["aws_vpc"]["runner"].get("tags", {})


def _runner_path_calls(env: str) -> list[tuple[str, str, dict[str, list[str]]]]:
    """Every call the program's runner path makes for `env`, with its request context (the provider's
    default tags carry the environment tag on every create)."""
    own = {TAG: env, "Name": f"mlplat-{env}-to-github-runners"}
    cluster_vpc = _arn("ec2", "vpc/vpc-cluster")
    peering = {"ec2:AccepterVpc": [runner_vpc_arn(REGION)], "ec2:RequesterVpc": [cluster_vpc]}
    pcx = _arn("ec2", "vpc-peering-connection/pcx-1")
    table, table_tags = _runner_route_table(env)
    group, group_tags = _cluster_security_group(env)
    rule_tags = {TAG: env}
    return [
        ("ec2:CreateVpcPeeringConnection", cluster_vpc, request(resource_tags={TAG: env}, request_tags=own)),
        (
            "ec2:CreateVpcPeeringConnection",
            _arn("ec2", "vpc-peering-connection/*"),
            request(request_tags=own) | peering,
        ),
        (
            "ec2:CreateTags",
            _arn("ec2", "vpc-peering-connection/*"),
            request(request_tags=own) | {"ec2:CreateAction": ["CreateVpcPeeringConnection"]},
        ),
        ("ec2:AcceptVpcPeeringConnection", runner_vpc_arn(REGION), request(resource_tags=_runner_vpc_tags())),
        ("ec2:AcceptVpcPeeringConnection", pcx, request(resource_tags=own) | peering),
        ("ec2:ModifyVpcPeeringConnectionOptions", pcx, request(resource_tags=own) | peering),
        ("ec2:DeleteVpcPeeringConnection", pcx, request(resource_tags=own) | peering),
        ("ec2:CreateRoute", table, request(resource_tags=table_tags)),
        ("ec2:ReplaceRoute", table, request(resource_tags=table_tags)),
        ("ec2:DeleteRoute", table, request(resource_tags=table_tags)),
        (
            "ec2:AuthorizeSecurityGroupIngress",
            group,
            request(resource_tags=group_tags, request_tags=rule_tags),
        ),
        (
            "ec2:AuthorizeSecurityGroupIngress",
            _arn("ec2", "security-group-rule/*"),
            request(request_tags=rule_tags),
        ),
        (
            "ec2:CreateTags",
            _arn("ec2", "security-group-rule/*"),
            request(request_tags=rule_tags) | {"ec2:CreateAction": ["AuthorizeSecurityGroupIngress"]},
        ),
        ("ec2:ModifySecurityGroupRules", group, request(resource_tags=group_tags)),
        ("ec2:RevokeSecurityGroupIngress", group, request(resource_tags=group_tags)),
        (
            "ec2:RevokeSecurityGroupIngress",
            _arn("ec2", "security-group-rule/sgr-1"),
            request(resource_tags=rule_tags),
        ),
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_can_peer_its_cluster_with_its_runner(env: str) -> None:
    """Without these the first `pulumi up` of a stack stops at the peering, the route back or the API
    rule, and no deploy ever reaches the private endpoint."""
    deploy = role_policy("deploy", env)
    base = {"aws:RequestedRegion": [REGION]}
    denied = []
    for action, resource, ctx in _runner_path_calls(env):
        allowed, why = decide(deploy, action, resource, base | ctx)
        if not allowed:
            denied.append(f"{action} on {resource} ({why or 'no statement'})")
    assert not denied, f"{env} deploy role cannot open its runner path:\n" + "\n".join(denied)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_cannot_peer_its_vpc_with_any_vpc_but_the_runner_vpc(env: str) -> None:
    """A peering to another VPC (another environment's, or one outside the platform) would be a network
    path no one reviewed; the runner VPC is the only accepter, and it is never the requester."""
    deploy = role_policy("deploy", env)
    base = {"aws:RequestedRegion": [REGION]}
    own = {TAG: env}
    cluster_vpc = _arn("ec2", "vpc/vpc-cluster")
    for accepter in (_arn("ec2", "vpc/vpc-elsewhere"), _arn("ec2", "vpc/vpc-cluster-of-another-environment")):
        ctx = (
            base
            | request(request_tags=own)
            | {"ec2:AccepterVpc": [accepter], "ec2:RequesterVpc": [cluster_vpc]}
        )
        assert not decide(
            deploy, "ec2:CreateVpcPeeringConnection", _arn("ec2", "vpc-peering-connection/*"), ctx
        )[0]
    as_requester = base | request(resource_tags=_runner_vpc_tags(), request_tags=own)
    assert not decide(deploy, "ec2:CreateVpcPeeringConnection", runner_vpc_arn(REGION), as_requester)[0]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_cannot_build_its_own_network_inside_the_runner_vpc(env: str) -> None:
    """The runner VPC carries no environment tag, which the tag-on-create grants read as "new": a stack
    could otherwise add its own subnets, route tables (routed to another environment's peering) or groups
    to the network every environment's runners share."""
    deploy = role_policy("deploy", env)
    ctx = {"aws:RequestedRegion": [REGION]} | request(
        resource_tags=_runner_vpc_tags(), request_tags={TAG: env}
    )
    for action in (
        "ec2:CreateSubnet",
        "ec2:CreateRouteTable",
        "ec2:CreateSecurityGroup",
        "ec2:CreateNetworkAcl",
    ):
        assert not decide(deploy, action, runner_vpc_arn(REGION), ctx)[0], (
            f"{env} deploy {action} in the runner VPC"
        )


@pytest.mark.parametrize(
    ("attacker", "victim"), [(a, v) for a in ENVIRONMENTS for v in ENVIRONMENTS if a != v]
)
def test_deploy_role_cannot_change_another_environments_runner_route(attacker: str, victim: str) -> None:
    """With one runner route table for all, a stack allowed to route back could also delete another
    environment's route back (its deploys stop) or point it elsewhere."""
    own_table, own_tags = _runner_route_table(attacker)
    their_table, their_tags = _runner_route_table(victim)
    assert own_table != their_table, "environments share one runner route table"
    deploy = role_policy("deploy", attacker)
    for action in ("ec2:CreateRoute", "ec2:DeleteRoute", "ec2:ReplaceRoute"):
        for ctx in _attacker_contexts(attacker, victim, their_tags):
            assert not decide(deploy, action, their_table, ctx)[0], f"{attacker} {action} on {victim}'s table"
        ctx = {"aws:RequestedRegion": [REGION]} | request(resource_tags=own_tags)
        assert decide(deploy, action, own_table, ctx)[0], f"{attacker} cannot {action} on its own table"


# --- Issue 13.1: no path from code no reviewer approved to staging or prod secrets

# Events whose runs execute code (or act for) someone without write review: a pull request's head, or a
# workflow started on behalf of one.
UNREVIEWED_EVENTS = {
    "pull_request",
    "pull_request_target",
    "pull_request_review",
    "pull_request_review_comment",
    "issue_comment",
    "workflow_run",
}


def _job_environments(workflow_name: str, job_id: str, job: dict[str, object]) -> set[str]:
    """The GitHub environments a job enters, with `${{ matrix.X }}` expanded over the job's matrix (a
    literal list, or the list an earlier job writes: tests/support/workflow_steps.py runs it)."""
    env = job.get("environment")
    if env is None:
        return set()
    name = env["name"] if isinstance(env, dict) else env
    assert isinstance(name, str)
    found = re.search(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", name)
    if not found:
        return {name}
    return {name.replace(found[0], str(value)) for value in matrix_values(workflow_name, job_id, found[1])}


def _roles_trusting_pull_requests() -> set[str]:
    github_environments = set()
    for env in ENVIRONMENTS:
        for kind, github_env in ((k, github_environment(k, env)) for k in GITHUB_ROLE_KINDS):
            if _may_assume(kind, env, f"{REPO_SUBJECT}:environment:{github_env}:ref:refs/pull/42/merge"):
                github_environments.add(github_env)
    return github_environments


# A job condition that keeps a job off every event but a push: the event test first, in conjunction.
PUSH_ONLY = re.compile(r"\s*github\.event_name == 'push'(\s*&&[^|]*)?")


def test_pull_requests_enter_only_environments_whose_role_admits_pull_request_code() -> None:
    """preview.yml and the preview roles agree: a PR job only enters a GitHub environment whose role
    trusts pull-request refs, and that role (dev's) can decrypt no staging or prod secret."""
    admitted = _roles_trusting_pull_requests()
    assert admitted == {"dev-preview"}
    for path in workflow_files():
        triggers = set(workflow(path.name)["on"])
        if not triggers & UNREVIEWED_EVENTS:
            continue
        for job_id, job in workflow(path.name)["jobs"].items():
            if PUSH_ONLY.fullmatch(str(job.get("if", ""))):
                continue  # e.g. monitor-image.yml's publish: its workflow builds PRs, the job never runs on one
            entered = _job_environments(path.name, job_id, job)
            assert entered <= admitted, f"{path.name}/{job_id} runs PR code in {sorted(entered - admitted)}"
            if triggers & (UNREVIEWED_EVENTS - {"pull_request"}):
                # These run with the base branch's ref and secrets: no environment, no OIDC token at all.
                assert not entered and job.get("permissions", {}).get("id-token") != "write", (
                    f"{path.name}/{job_id}"
                )
    preview = workflow("preview.yml")["jobs"]["preview"]
    assert _job_environments("preview.yml", "preview", preview) == {"dev-preview"}
    # Forks get no OIDC token; the job is skipped instead of failing on them.
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"


@pytest.mark.parametrize("victim", ["staging", "prod"])
def test_the_pull_request_preview_role_cannot_decrypt_staging_or_prod_secrets(victim: str) -> None:
    (github_env,) = _roles_trusting_pull_requests()
    env = github_env.removesuffix("-preview")
    caller = role_arn("preview", env)
    scope = Scope(victim)
    key = scope.key_arn(f"pulumi-{victim}")
    for action in ("kms:Decrypt", "kms:ReEncryptFrom", "kms:CreateGrant"):
        assert not decide(role_policy("preview", env), action, key, {})[0]
        assert not decide(statements("pulumi_secrets_key", scope), action, key, {}, principal=caller)[0]
    state = f"{scope.state_bucket_arn}/.pulumi/stacks/mlplat/{victim}.json"
    assert not decide(role_policy("preview", env), "s3:GetObject", state, {})[0]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_drift_role_reads_what_a_preview_reads_and_decrypts_only_its_own_stack(env: str) -> None:
    """drift.yml's refreshed preview runs the program (decrypting the stack's config secrets) and reads
    its state, as the preview role does; nothing of another environment."""
    drift, preview = role_policy("drift", env), role_policy("preview", env)
    assert drift == preview
    caller = role_arn("drift", env)
    for stack in ENVIRONMENTS:
        scope = Scope(stack)
        key = scope.key_arn(f"pulumi-{stack}")
        key_policy = statements("pulumi_secrets_key", scope)
        own = stack == env
        assert decide(drift, "kms:Decrypt", key, {})[0] == own, (env, stack)
        assert decide(key_policy, "kms:Decrypt", key, {}, principal=caller)[0] == own, (env, stack)
        assert not decide(key_policy, "kms:Encrypt", key, {}, principal=caller)[0], (env, stack)
        state = f"{scope.state_bucket_arn}/.pulumi/stacks/mlplat/{stack}.json"
        assert decide(drift, "s3:GetObject", state, {})[0] == own, (env, stack)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_promote_role_reads_its_clusters_endpoint_and_nothing_else(env: str) -> None:
    """promote.yml holds `contents: write` and the registry's credentials; its AWS role only builds a
    kubeconfig for its own cluster (whose RBAC then allows a port-forward to MLflow only)."""
    promote = role_policy("promote", env)
    for stack in ENVIRONMENTS:
        scope = Scope(stack)
        cluster_arn = f"arn:aws:eks:{scope.region}:{ACCOUNT}:cluster/mlplat-{stack}"
        assert decide(promote, "eks:DescribeCluster", cluster_arn, {})[0] == (stack == env), (env, stack)
        for action, resource in (
            ("eks:ListClusters", "*"),
            ("kms:Decrypt", scope.key_arn(f"pulumi-{stack}")),
            ("s3:GetObject", f"{scope.state_bucket_arn}/.pulumi/stacks/mlplat/{stack}.json"),
            ("ec2:DescribeInstances", "*"),
        ):
            assert not decide(promote, action, resource, {})[0], (env, action, resource)


@pytest.mark.parametrize(("own", "other"), [(a, v) for a in ENVIRONMENTS for v in ENVIRONMENTS if a != v])
def test_workload_boundary_never_reaches_resources_tagged_for_another_environment(
    own: str, other: str
) -> None:
    """The boundary still allows EC2/ELB on "*" in the region (nodes, Karpenter, CSI create IDs at run
    time), so it refuses whatever carries another environment's tag: a dev workload role, whatever
    policy is attached to it, cannot terminate prod's nodes or open prod's security groups."""
    boundary = statements("workload_boundary", Scope(own))
    ctx = {"aws:RequestedRegion": [REGION]} | request(resource_tags={TAG: other})
    for action, resource in (
        ("ec2:TerminateInstances", _arn("ec2", "instance/i-gpu")),
        ("ec2:AuthorizeSecurityGroupIngress", _arn("ec2", "security-group/sg-1")),
        ("ec2:DeleteVolume", _arn("ec2", "volume/vol-1")),
        (
            "elasticloadbalancing:DeleteLoadBalancer",
            _arn("elasticloadbalancing", "loadbalancer/app/k8s/1a2b"),
        ),
        ("kms:Decrypt", Scope(other).key_arn("ebs")),
    ):
        assert not decide(boundary, action, resource, ctx)[0], (
            f"{own} boundary allows {action} on {other}'s {resource}"
        )
        own_ctx = {"aws:RequestedRegion": [REGION]} | request(resource_tags={TAG: own})
        assert decide(boundary, action, resource, own_ctx)[0], (
            f"{own} boundary blocks {action} on its own {resource}"
        )


# IAM refuses a managed policy over 6,144 characters (whitespace not counted):
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
MANAGED_POLICY_MAX_CHARS = 6144


def _longest_scope() -> Scope:
    """The longest names a bootstrap can render, an upper bound: the longest environment, the longest
    region and partition names AWS has (botocore's endpoint data), a name_prefix as long as variables.tf
    accepts (21) and KMS key IDs as long as AWS makes them (UUIDs)."""
    endpoints = json.loads(
        (Path(botocore.__file__).parent / "data" / "endpoints.json").read_text(encoding="utf-8")
    )
    partitions = endpoints["partitions"]
    assert re.search(r"\{1,20\}", terraform()["variable"]["name_prefix"]["validation"][0]["condition"])
    return Scope(
        env=max(ENVIRONMENTS, key=len),
        region=max((region for p in partitions for region in p["regions"]), key=len),
        name_prefix="p" * 21,
        partition=max((p["partition"] for p in partitions), key=len),
        key_ids="uuid",
    )


def _as_the_provider_writes(values: tuple[str, ...]) -> str | tuple[str, ...]:
    """A list of one is written as its string (terraform-provider-aws internal/service/iam/
    iam_policy_model.go iamPolicyDecodeConfigStringList, and a condition's values in
    policy_document_data_source.go dataSourcePolicyDocumentMakeConditions)."""
    return values[0] if len(values) == 1 else values


@pytest.mark.parametrize("doc", IDENTITY_DOCS)
def test_every_managed_policy_fits_iams_size_limit_with_the_longest_names(doc: str) -> None:
    """A policy that fits with the default prefix in eu-west-1 can be refused by IAM for an account
    bootstrapped with a longer prefix, in a longer region or partition: the apply fails half-way."""
    rendered = []
    for st in statements(doc, _longest_scope()):
        body: dict[str, object] = {
            "Sid": st.sid,
            "Effect": st.effect,
            "Action": _as_the_provider_writes(st.actions),
            "Resource": _as_the_provider_writes(st.resources),
        }
        conditions: dict[str, dict[str, object]] = {}
        for test, key, values in st.conditions:
            conditions.setdefault(test, {})[key] = _as_the_provider_writes(values)
        if conditions:
            body["Condition"] = conditions
        rendered.append(body)
    size = len(json.dumps({"Version": "2012-10-17", "Statement": rendered}, separators=(",", ":")))
    assert size <= MANAGED_POLICY_MAX_CHARS, f"{doc}: {size} characters"


@pytest.mark.parametrize("doc", sorted(POLICY_DOCS))
def test_no_statement_of_a_policy_is_silently_replaced_by_another_of_its_sid(doc: str) -> None:
    """The provider merges a document's own statements into its source documents', and its override
    documents' into both, replacing any statement of the same Sid without a word: an own statement named
    like a table's (ManageEnvironmentKeys) would leave the deploy role without the table's grants."""
    assert not shadowed_sids(doc), f"{doc}: replaced by a later statement of the same Sid"


# --- Issue 15: the bootstrap reads the contract (contract.tf.json) and has room for more environments


def _spelled(value: object) -> list[str]:
    """Every string of a python-hcl2 document, keys included (comments are not part of it)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() if k not in META_KEYS for s in (*_spelled(k), *_spelled(v))]
    if isinstance(value, list):
        return [s for item in value for s in _spelled(item)]
    return [value] if isinstance(value, str) else []


META_KEYS = {"__is_block__", "__comments__", "__inline_comments__"}


def test_no_bootstrap_file_spells_the_environments_or_the_environment_tag() -> None:
    """A copy of the environment list or of the tag in a .tf file is one more place to edit when an
    environment is added or the label renamed, and the one forgotten splits the isolation in two."""
    literals = {f'"{env}"' for env in ENVIRONMENTS}
    spelled = []
    for path in sorted(BOOTSTRAP.glob("*.tf")):
        with path.open(encoding="utf-8") as fh:
            for text in _spelled(hcl2.load(fh)):
                found = [lit for lit in literals if lit in text]
                if found or ENVIRONMENT_LABEL in text:
                    spelled.append(f"{path.name}: {text}")
    assert not spelled, "read them from contract.tf.json's locals:\n" + "\n".join(spelled)


def test_an_account_bootstrapped_with_the_defaults_holds_every_environment_of_the_contract() -> None:
    assert default_environments() == list(ENVIRONMENTS)
    contract = terraform()["locals"]
    assert contract["contract_environments"] == list(ENVIRONMENTS)
    assert contract["environment_tag"] == ENVIRONMENT_LABEL
    assert set(contract["runner_shares"]) == set(ENVIRONMENTS)


@pytest.mark.parametrize("added", range(1, 4))
def test_a_fourth_environment_gets_a_runner_share_that_collides_with_nothing(added: int) -> None:
    """With a quarter of the runner VPC each, a fourth environment's share was the NAT subnet's: up to
    six environments now get subnets that overlap nothing and stay inside the runner VPC."""
    shares = dict(terraform()["locals"]["runner_shares"])
    for i in range(added):
        shares[f"new{i}"] = min(set(range(8)) - set(shares.values()))
    layout = runner_layout(shares)
    assert max(shares.values()) < layout["limit"], shares
    blocks = [layout["nat"], *(s for subnets in layout["subnets"].values() for s in subnets)]
    for block in blocks:
        assert block.subnet_of(layout["vpc"]), block
    for a, b in itertools.combinations(blocks, 2):
        assert not a.overlaps(b), f"{a} overlaps {b} with shares {shares}"


def test_six_environments_fit_and_a_share_past_them_is_refused_with_the_reason() -> None:
    """Every share below the limit fits beside the NAT subnet; the first one past it does not, so the
    subnet's precondition refuses it (a share outside the VPC fails cidrsubnet itself)."""
    layout = runner_layout({f"env{n}": n for n in range(8)})
    fits = [n for n in range(8) if not layout["environments"][f"env{n}"].overlaps(layout["nat"])]
    assert fits == list(range(layout["limit"])) and layout["limit"] >= 6, fits
    preconditions = RESOURCES["aws_subnet"]["runner_private"]["lifecycle"][0]["precondition"]
    conditions = {p["condition"]: p["error_message"] for p in preconditions}
    refusal = conditions.get("${local.runner_shares[each.value.environment] < local.runner_share_limit}")
    assert refusal and "runner_shares" in refusal and "NAT" in refusal, conditions


def test_each_runner_subnet_keeps_room_for_the_runner_builds() -> None:
    """CodeBuild puts a network interface per build in the runner subnets; AWS's smallest subnet is a
    /28, of which it reserves five addresses (EC2 API Reference, CreateSubnet)."""
    for env, subnets in runner_layout()["subnets"].items():
        for subnet in subnets:
            assert subnet.prefixlen <= 28 and subnet.num_addresses - 5 >= 11, (env, subnet)


def _dynamic_items(for_each: Any) -> Any:
    """A dynamic block's items as written: a literal list or map, or the local holding one."""
    plain = re.fullmatch(r"\$\{local\.(\w+)\}", for_each) if isinstance(for_each, str) else None
    return terraform()["locals"][plain[1]] if plain else for_each


def test_every_statement_of_a_dynamic_block_reaches_the_policy_readers() -> None:
    """The tag-scoped statements are tables expanded by `dynamic "statement"`: a reader that saw only the
    written-out statements would check none of them, and every isolation test above would pass on
    less than the roles get. The deploy role's tables live in local.environment_scoped_statements and
    local.tag_held_statements (built from local.tag_held_kinds, its Sids templates of each kind's noun)
    and are rendered by one per-table document (environment_scoped/<table> to the readers)."""
    expanded = 0
    for path in sorted(BOOTSTRAP.glob("*.tf")):
        with path.open(encoding="utf-8") as fh:
            raw = hcl2.load(fh)
        for block in raw.get("data", []):
            for name, body in block.get('"aws_iam_policy_document"', {}).items():
                tables = [_dynamic_items(d['"statement"']["for_each"]) for d in body.get("dynamic", [])]
                if tables == ["${each.value}"]:
                    continue  # the per-table document: counted against its local below
                written = len(body.get("statement", []))
                # A per-entry document (github_trust) reaches the readers once per entry, <name>/<entry>.
                bare = name.strip('"')
                read_as = [doc for doc in POLICY_DOCS if doc == bare or doc.startswith(f"{bare}/")]
                assert read_as, f"{bare} reaches no reader"
                for doc in read_as:
                    assert len(POLICY_DOCS[doc]["statement"]) == written + sum(len(t) for t in tables), doc
                expanded += sum(len(t) for t in tables)
    text = (BOOTSTRAP / "deploy_roles.tf").read_text(encoding="utf-8")
    table_text = _top_level_block(text, "locals {\n  environment_scoped_statements")
    written_sids = re.findall(r'^ *sid *= "(\w+)"$', table_text, re.MULTILINE)
    held_text = _top_level_block(text, "locals {\n  tag_held_kinds")
    templates = re.findall(r'sid = "(\w*)\$\{held\.noun\}(\w*)"', held_text)
    nouns = [kind["noun"] for kind in terraform()["locals"]["tag_held_kinds"].values()]
    assert len(templates) == 4 and len(nouns) >= 2, (templates, nouns)
    written_sids += [f"{before}{noun}{after}" for noun in nouns for before, after in templates]
    read_sids = [
        st["sid"]
        for doc in POLICY_DOCS
        if doc.startswith("environment_scoped/")
        for st in policy_statements(doc)
    ]
    assert written_sids and sorted(read_sids) == sorted(written_sids), (written_sids, read_sids)
    assert expanded + len(read_sids), "no dynamic statement left: delivery_helpers' expansion can go"
    conditions = {st["sid"]: st["condition"] for st in policy_statements("environment_scoped/iam")}
    # As a written-out statement carries it: the tag key and the environment still to be resolved.
    assert conditions["TagEnvironmentRolesOnCreate"] == [
        {
            "test": "StringEquals",
            "variable": "aws:RequestTag/${local.environment_tag}",
            "values": ["${each.key}"],
        },
        {"test": "Null", "variable": "aws:ResourceTag/${local.environment_tag}", "values": ["true"]},
    ]


@pytest.mark.parametrize("env", default_environments())
def test_each_tag_scoped_table_reaches_only_its_own_managed_policy(env: str) -> None:
    """Each table of local.environment_scoped_statements and local.tag_held_statements goes to one
    managed policy of the deploy role (deploy_platform, deploy_iam: two policies because IAM caps one at
    6,144 characters): a table merged into the wrong policy, or into none, would leave the deploy role
    without its key or identity grants and re-tag denies, or push one policy over."""
    policy_of = {"platform": "platform", "keys": "platform", "iam": "iam", "oidc_provider": "iam"}
    tables = {doc.split("/", 1)[1] for doc in POLICY_DOCS if doc.startswith("environment_scoped/")}
    assert tables == set(policy_of), f"a table no managed policy was checked for: {sorted(tables)}"
    policies = {p: {st.sid for st in statements(f"deploy_{p}", Scope(env))} for p in set(policy_of.values())}
    for table, policy in policy_of.items():
        sids = {st.sid for st in statements(f"environment_scoped/{table}", Scope(env))}
        others = set().union(*(sids_ for name, sids_ in policies.items() if name != policy))
        assert sids and sids <= policies[policy] and not sids & others, (env, table, policies)


def _top_level_block(text: str, header: str) -> str:
    """The text of the top-level block of a .tf file that starts with `header` (braces matched)."""
    start = text.index(header)
    depth, i = 0, text.index("{", start)
    while True:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start : i + 1]
        i += 1


def test_the_runner_layout_the_tests_read_is_the_one_terraform_computes(tmp_path: Path) -> None:
    """runner_layout() reads runners.tf's expressions with a Python cidrsubnet; were it to read them
    wrong, every layout test above would hold a layout Terraform never builds. Terraform's console
    evaluates the same locals (no provider needed for variables and locals)."""
    terraform_bin = shutil.which("terraform")
    if terraform_bin is None:
        pytest.skip("terraform is not on PATH (scripts/ensure-tools lists how to install it)")
    runners = (BOOTSTRAP / "runners.tf").read_text(encoding="utf-8")
    blocks = [_top_level_block(runners, h) for h in ('variable "runner_vpc_cidr" {', "locals {")]
    for name in ("contract.tf.json", "variables.tf"):
        shutil.copy(BOOTSTRAP / name, tmp_path / name)
    (tmp_path / "runners.tf").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    expression = (
        "jsonencode({ nat = local.runner_nat_cidr, shares = local.runner_environment_cidr,"
        " subnets = local.runner_private_subnets, limit = local.runner_share_limit })"
    )
    result = subprocess.run(
        [terraform_bin, "console"],
        input=expression,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    computed = json.loads(json.loads(result.stdout))
    layout = runner_layout()
    assert computed["nat"] == str(layout["nat"])
    assert computed["shares"] == {env: str(block) for env, block in layout["environments"].items()}
    assert computed["limit"] == layout["limit"]
    by_environment: dict[str, list[str]] = {}
    for subnet in sorted(computed["subnets"].values(), key=lambda s: IPv4Network(s["cidr"])):
        by_environment.setdefault(subnet["environment"], []).append(subnet["cidr"])
    assert by_environment == {env: [str(s) for s in subs] for env, subs in layout["subnets"].items()}


@pytest.fixture
def bootstrap_with_qa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A copy of the bootstrap whose contract.tf.json holds `qa` too (second in promotion order, the
    lowest free runner share), as `make generate` writes it; nothing else in the copy is edited."""
    copy = tmp_path / "bootstrap"
    shutil.copytree(BOOTSTRAP, copy)
    contract = json.loads((copy / "contract.tf.json").read_text(encoding="utf-8"))
    generated = contract["locals"]
    generated["contract_environments"].insert(1, "qa")
    generated["runner_shares"]["qa"] = min(set(range(8)) - set(generated["runner_shares"].values()))
    (copy / "contract.tf.json").write_text(json.dumps(contract), encoding="utf-8")
    terraform.cache_clear()
    monkeypatch.setattr(delivery_helpers, "BOOTSTRAP", copy)
    yield
    monkeypatch.undo()
    terraform.cache_clear()


@pytest.mark.usefixtures("bootstrap_with_qa")
def test_an_environment_added_to_the_contract_gets_roles_runners_and_isolation_with_no_bootstrap_edit() -> (
    None
):
    """Adding an environment used to mean editing the variable's default and allowed list, the other-
    environments map and the runner index by hand; now the regenerated contract.tf.json is the edit."""
    assert default_environments() == ["dev", "qa", "staging", "prod"]
    layout = runner_layout()
    assert layout["environments"]["qa"] == IPv4Network("10.255.0.96/27")
    blocks = [layout["nat"], *(s for subnets in layout["subnets"].values() for s in subnets)]
    assert not [(a, b) for a, b in itertools.combinations(blocks, 2) if a.overlaps(b)]
    assert _may_assume("deploy", "qa", f"{REPO_SUBJECT}:environment:qa:ref:refs/heads/main")
    for other in ENVIRONMENTS:
        for kind in ("deploy", "preview"):
            assert not _reached(kind, "qa", other), f"qa {kind} reaches {other}"
            assert not _reached(kind, other, "qa"), f"{other} {kind} reaches qa"


@pytest.mark.parametrize(
    ("given", "accepted"),
    [(None, list(ENVIRONMENTS)), ('["prod"]', ["prod"]), ('["qa"]', None), ("[]", None)],
)
def test_environments_outside_the_contract_are_refused_naming_the_contract(
    tmp_path: Path, given: str | None, accepted: list[str] | None
) -> None:
    """The variable's validation reads the contract's list (Terraform >= 1.9): an account bootstrapped
    for a stack the program does not know would get roles no workflow uses, and none for its own."""
    terraform_bin = shutil.which("terraform")
    if terraform_bin is None:
        pytest.skip("terraform is not on PATH (scripts/ensure-tools lists how to install it)")
    for name in ("contract.tf.json", "variables.tf"):
        shutil.copy(BOOTSTRAP / name, tmp_path / name)
    argv = [terraform_bin, "console", *(["-var", f"environments={given}"] if given else [])]
    result = subprocess.run(
        argv,
        input="jsonencode(local.environments)",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    if accepted is None:
        assert result.returncode != 0, result.stdout
        # The message as Terraform wraps it in its diagnostic box (colour codes and box edges dropped).
        message = " ".join(re.sub(r"\x1b\[[0-9;]*m|│", " ", result.stderr).split())
        assert "subset of contract_environments in contract.tf.json" in message, result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert sorted(json.loads(json.loads(result.stdout))) == sorted(accepted)


def test_no_local_value_is_defined_in_two_files_of_the_bootstrap() -> None:
    """Terraform reads `contract.tf.json` with the `.tf` files as one module and refuses a local defined
    twice ("Duplicate local value definition", hashicorp/terraform internal/configs/module.go): a name the
    generator writes must not also be written by hand, or the bootstrap no longer loads."""
    defined: dict[str, list[str]] = {}
    for path in sorted(BOOTSTRAP.glob("*.tf")):
        with path.open(encoding="utf-8") as fh:
            for block in hcl2.load(fh).get("locals", []):
                for name in block:
                    if not name.startswith("__"):
                        defined.setdefault(name, []).append(path.name)
    for path in sorted(BOOTSTRAP.glob("*.tf.json")):
        for name in json.loads(path.read_text(encoding="utf-8")).get("locals", {}):
            defined.setdefault(name, []).append(path.name)
    assert {name: files for name, files in defined.items() if len(files) > 1} == {}


# --- Moves: addresses an existing account holds, moved instead of destroyed and re-created --------------

_ADDRESS = re.compile(r'^(\w+)\.(\w+)\["([^"]+)"\]$')


def _moves() -> list[tuple[tuple[str, str, str], tuple[str, str, str]]]:
    """moved.tf.json's (from, to) pairs as (type, name, instance key) each."""
    pairs = []
    for move in terraform()["moved"]:
        found = [_ADDRESS.match(move[end]) for end in ("from", "to")]
        assert all(found), f"not a resource instance address: {move}"
        pairs.append(tuple(m.groups() for m in found if m))
    return pairs  # type: ignore[return-value]


# The environments an account could hold when the tables came (the contract's then): an environment
# added since never had the old addresses, so it needs no move.
TABLED_AT = ("dev", "staging", "prod")
# The tables one resource iterates (deploy_roles.tf), by the local each is built from, with the entries
# they had when they came: an entry added since never had an old address either (the drift and promote
# roles came with the role table and were never applied as a resource of their own).
TABLED_ENTRIES = {
    "github_roles": ("deploy", "preview"),
    "github_role_policies": ("deploy_state", "deploy_platform", "deploy_iam", "preview"),
    "deploy_inline_policies": ("keep-runner-network", "open-runner-path", "preflight-reads"),
}


def _table_resources() -> dict[tuple[str, str], set[str]]:
    """The resources iterating a table, with the instance keys (`<env>/<entry>`) an account held when
    the tables came. A resource iterating one of the tables without saying which is refused."""
    out = {}
    for rtype, named in RESOURCES.items():
        for name, body in named.items():
            for_each = str(body.get("for_each", ""))
            instances = re.fullmatch(r"\$\{local\.(\w+)\}", for_each)
            flat = delivery_helpers.flattened(terraform()["locals"].get(instances[1])) if instances else None
            if flat:
                for_each = f"local.{flat.table}"
            table = next((t for t in TABLED_ENTRIES if f"local.{t}" in for_each), None)
            if table:
                assert set(TABLED_ENTRIES[table]) <= set(delivery_helpers.per_environment_local(table)), table
                out[(rtype, name)] = {
                    f"{env}/{entry}" for env in TABLED_AT for entry in TABLED_ENTRIES[table]
                }
    return out


def test_every_move_lands_on_an_instance_of_the_config_and_leaves_an_address_it_no_longer_has() -> None:
    """A `to` that is not in the config destroys what was moved; a `from` still in the config is an
    error ("Moved object still exists", hashicorp/terraform internal/refactoring/move_validate.go)."""
    table = _table_resources()
    assert set(table) == {
        ("aws_iam_role", "github"),
        ("aws_iam_policy", "github_role"),
        ("aws_iam_role_policy_attachment", "github_role"),
        ("aws_iam_role_policy", "deploy"),
    }, table
    for (from_type, from_name, _), (to_type, to_name, to_key) in _moves():
        assert from_name not in RESOURCES.get(from_type, {}), (
            f"{from_type}.{from_name} is still in the config"
        )
        assert to_key in table.get((to_type, to_name), set()), (
            f"{to_type}.{to_name}[{to_key!r}] is not in the config"
        )


def test_every_role_policy_and_attachment_of_an_existing_account_is_moved_not_re_created() -> None:
    """An account bootstrapped before the tables holds one instance per policy resource and environment;
    an instance of a table that no move reaches would be created beside the old one, which is destroyed
    (for an inline policy, after the new one wrote the same role and name: the role loses it)."""
    moved_to = {(t, n, k) for _, (t, n, k) in _moves()}
    missing = [
        (t, n, k) for (t, n), keys in _table_resources().items() for k in keys if (t, n, k) not in moved_to
    ]
    assert not missing, f"instances no move reaches: {missing}"


# What AWS knew each former inline policy of the deploy role by (its `name` before the table, d9373b0).
FORMER_INLINE_NAMES = {
    "deploy_keeps_runners": "keep-runner-network",
    "deploy_runner_path": "open-runner-path",
    "deploy_preflight": "preflight-reads",
}


def test_a_moved_inline_policy_keeps_its_name_and_role() -> None:
    """An inline policy is its role's and name's: a move to an entry of another name would leave the old
    policy on the role and write a second one."""
    resource = RESOURCES["aws_iam_role_policy"]["deploy"]
    assert resource["name"] == "${each.value.name}", resource
    assert resource["role"] == '${aws_iam_role.github["${each.value.environment}/deploy"].id}', resource
    inline = [(f, t) for f, t in _moves() if f[0] == "aws_iam_role_policy"]
    assert {f[1] for f, _ in inline} == set(FORMER_INLINE_NAMES)
    for (_, from_name, env), (_, _, to_key) in inline:
        assert to_key == f"{env}/{FORMER_INLINE_NAMES[from_name]}", (from_name, env, to_key)


# The descriptions the managed policies had before the table (d9373b0): `description` forces a new
# aws_iam_policy (terraform-provider-aws docs, r/iam_policy: "Forces new resource"), so a changed text
# would destroy and re-create a moved policy, its role without it in between.
FORMER_DESCRIPTIONS = {
    "deploy_state": "Read and write the {env} stack's Pulumi state and secrets",
    "deploy_platform": "Provision the {env} network, EKS cluster and named platform resources",
    "deploy_iam": "Manage the {env} stack's IAM roles inside their permissions boundary",
    "preview": "Read-only preview and drift detection of the {env} stack",
}


def test_a_moved_policy_keeps_the_name_and_description_it_had() -> None:
    """An IAM policy's name and description cannot change in place (the provider replaces it): each moved
    policy renders the name its former resource gave, <prefix>-github-<role>-<env>[-<part>] (deploy_state:
    -state), and its former description."""
    policies = delivery_helpers.per_environment_local("github_role_policies")
    resource = RESOURCES["aws_iam_policy"]["github_role"]
    assert resource["description"] == "${each.value.description}", resource
    moved = [(f, t) for f, t in _moves() if f[0] == "aws_iam_policy"]
    assert {f[1] for f, _ in moved} == set(FORMER_DESCRIPTIONS)
    for (_, from_name, env), (_, _, to_key) in moved:
        role, *part = from_name.split("_")
        former = "-".join(["mlplat", "github", role, env, *part])
        entry = policies[to_key.split("/")[1]]
        assert resolve(resource["name"].replace("${each.value.name}", entry["name"]), Scope(env)) == former
        assert resolve(entry["description"], Scope(env)) == FORMER_DESCRIPTIONS[from_name].format(env=env)


# The descriptions the deploy and preview roles had as one resource each (before the role table).
FORMER_ROLE_DESCRIPTIONS = {
    "deploy": "GitHub Actions (environment {env}, main): pulumi up of the {env} stack",
    "preview": "GitHub Actions (environment {env}-preview): read-only pulumi preview",
}


def test_a_moved_role_keeps_its_name_description_session_and_tags() -> None:
    """A role's name cannot change in place (the provider replaces it, and every stack file and GitHub
    environment naming its ARN goes stale): each moved role renders the name and description its former
    resource gave, the session length (deploy: var.deploy_session_seconds, 7200 by default; preview: 3600)
    and the environment tag."""
    moved = [(f, t) for f, t in _moves() if f[0] == "aws_iam_role"]
    assert {f[1] for f, _ in moved} == set(FORMER_ROLE_DESCRIPTIONS)
    for (_, kind, env), (_, _, to_key) in moved:
        assert to_key == f"{env}/{kind}", (kind, env, to_key)
        assert github_role(kind, env) == {
            "name": f"mlplat-github-{kind}-{env}",
            "description": FORMER_ROLE_DESCRIPTIONS[kind].format(env=env),
            "max_session_duration": {"deploy": 7200, "preview": 3600}[kind],
            "tags": {ENVIRONMENT_LABEL: env},
        }, (kind, env)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("kind", GITHUB_ROLE_KINDS)
def test_every_github_role_is_named_as_the_stack_files_and_policies_name_it(env: str, kind: str) -> None:
    """The roles' ARNs the evaluator grants (role_arn) and the stack files list (environments/, e.g.
    cluster.drift_role_arns) are `<prefix>-github-<kind>-<env>`: the table's name must render it."""
    assert github_role(kind, env)["name"] == role_arn(kind, env).rsplit("/", 1)[1]
