"""infra/bootstrap: the state bucket, KMS keys, GitHub OIDC trust and deploy roles have the properties
the platform's delivery relies on, read from the Terraform source with python-hcl2."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from typing import Any

import pytest
from delivery_helpers import BOOTSTRAP, ENVIRONMENTS, policy_statements, render, statement, terraform

RESOURCES = terraform()["resource"]
POLICY_DOCS = terraform()["data"]["aws_iam_policy_document"]
KEY_POLICY_DOCS = {"state_key", "pulumi_secrets_key"}

# Allow statements whose resource is "*", each with the reason it cannot be narrower. A new one fails
# test_star_resources_are_listed until it is reasoned here (and, for checkov, in iac-skips.yaml).
STAR_RESOURCE_ALLOWED = {
    ("deploy_platform", "ProvisionNetworkAndCluster"): "EC2/EKS IDs exist only after creation; region-bound",
    ("deploy_platform", "ReadOnlyLookups"): "List/Describe/GetCallerIdentity accept only *",
    ("deploy_platform", "CreateEnvironmentKeys"): "kms:CreateKey has no resource; request tag required",
    ("deploy_platform", "ManageEnvironmentKeys"): "key IDs are random; resource tag required",
    ("deploy_iam", "ReadIam"): "read-only IAM Get/List",
    ("deploy_iam", "DenyLongLivedCredentials"): "a Deny",
    ("workload_boundary", "ClusterWorkloads"): "boundary ceiling for nodes/Karpenter/CSI; region-bound",
    ("workload_boundary", "EnvironmentKeysByTag"): "EBS/EKS keys are random IDs; resource tag required",
    ("preview", "DescribeUnscopable"): "read-only Describe/List that accept only *",
    ("runner", "VpcNetworkInterfaces"): "CodeBuild's ENI and Describe calls accept only *; region-bound",
    ("deploy_keeps_runners", "NoChangesToRunnerNetwork"): "a Deny, held to the bootstrap's resource tag",
    ("runner_logs_key", "KeyAdministration"): "key policy: * is the key itself",
    ("runner_logs_key", "CloudWatchLogsUse"): "key policy: * is the key itself; this account's log groups",
}


def _blocks(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key, [])
    return value if isinstance(value, list) else [value]


def test_one_concern_per_file() -> None:
    names = {p.name for p in BOOTSTRAP.glob("*.tf")}
    assert names == {
        "versions.tf",
        "variables.tf",
        "state.tf",
        "kms.tf",
        "github_oidc.tf",
        "deploy_roles.tf",
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
    # key_admin_arns is the one input without a safe default: a wrong guess locks the keys.
    assert {n for n, v in variables.items() if "default" not in v} == {"key_admin_arns"}
    assert set(variables["environments"]["default"]) == set(ENVIRONMENTS)


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
    assert keys["pulumi_secrets"]["for_each"] == "${var.environments}"


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


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(("role", "doc", "sid", "github_env"), [
    ("deploy", "deploy_trust", "GitHubEnvironmentOnly", "{env}"),
    ("preview", "preview_trust", "GitHubPreviewEnvironmentOnly", "{env}-preview"),
])  # fmt: skip
def test_role_trust_is_one_repository_and_one_github_environment(
    env: str, role: str, doc: str, sid: str, github_env: str
) -> None:
    (only,) = policy_statements(doc)
    assert only["sid"] == sid and only["effect"] == "Allow"
    assert only["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert only["principals"] == [{"type": "Federated", "identifiers": ["${local.github_oidc_provider_arn}"]}]
    conditions = {c["variable"]: c for c in only["condition"]}
    assert set(conditions) == {
        "token.actions.githubusercontent.com:aud",
        "token.actions.githubusercontent.com:sub",
    }
    for c in conditions.values():
        assert c["test"] == "StringEquals", c  # never StringLike: no wildcard can widen the match
        assert len(c["values"]) == 1
    assert conditions["token.actions.githubusercontent.com:aud"]["values"] == ["sts.amazonaws.com"]
    subject = render(conditions["token.actions.githubusercontent.com:sub"]["values"][0], env)
    assert subject == f"repo:example-org/mlplat:environment:{github_env.format(env=env)}"
    assert "*" not in subject and "?" not in subject
    role_body = RESOURCES["aws_iam_role"][role]
    assert role_body["assume_role_policy"] == f"${{data.aws_iam_policy_document.{doc}[each.key].json}}"
    assert role_body["for_each"] == "${var.environments}"


def test_github_identifiers_cannot_carry_wildcards() -> None:
    for name in ("github_org", "github_repo"):
        (validation,) = terraform()["variable"][name]["validation"]
        pattern = re.search(r'regex\("(.+?)",', validation["condition"])
        assert pattern, validation
        regex = pattern[1].replace("\\\\", "\\")
        assert re.fullmatch(regex, "example-org")
        assert not re.fullmatch(regex, "*"), f"{name} accepts a wildcard"


def test_no_statement_allows_every_action() -> None:
    for doc in POLICY_DOCS:
        for st in policy_statements(doc):
            if st["effect"] == "Allow":
                assert not {"*", "*:*"} & set(st.get("actions", [])), f"{doc}/{st.get('sid')}"
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
    roles = statement("deploy_iam", "RolesWithinBoundary")
    assert "iam:CreateRole" in roles["actions"] and "iam:PutRolePolicy" in roles["actions"]
    (boundary,) = roles["condition"]
    assert (boundary["test"], boundary["variable"]) == ("StringEquals", "iam:PermissionsBoundary")
    assert boundary["values"] == ["${aws_iam_policy.workload_boundary[each.key].arn}"]
    (pattern,) = [render(r, env).rsplit(":role/", 1)[1] for r in roles["resources"]]
    assert pattern == f"mlplat-{env}-*"
    # The bootstrap's own identities are named outside every stack's pattern.
    own_names = [
        render(RESOURCES["aws_iam_role"]["deploy"]["name"], env),
        render(RESOURCES["aws_iam_role"]["preview"]["name"], env),
        render(RESOURCES["aws_iam_policy"]["workload_boundary"]["name"], env),
    ]
    for other in ENVIRONMENTS:
        for own in own_names:
            assert not fnmatch.fnmatch(own, f"mlplat-{other}-*"), f"{own} is reachable by the {other} stack"
    denied = statement("deploy_iam", "DenyBootstrapIdentityChanges")
    assert denied["effect"] == "Deny" and denied["actions"] == ["iam:*"]
    passrole = statement("deploy_iam", "PassEnvironmentRolesToEksAndEc2")
    assert passrole["condition"][0]["variable"] == "iam:PassedToService"


def test_deploy_and_preview_roles_only_touch_their_own_stack_state() -> None:
    objects = terraform()["locals"]["state_objects"]
    assert "/.pulumi/stacks/${var.pulumi_project}/${env}.json*" in objects
    for doc in ("deploy_state", "preview"):
        reads = statement(doc, "ReadOwnStackState")
        assert reads["resources"] == "${local.state_objects[each.key].read}"
    assert (
        statement("deploy_state", "WriteOwnStackState")["resources"]
        == "${local.state_objects[each.key].write}"
    )
    # A preview writes nothing but its lock.
    preview_writes = [
        s for s in policy_statements("preview") if {"s3:PutObject", "s3:DeleteObject"} & set(s["actions"])
    ]
    assert [s["resources"] for s in preview_writes] == ["${local.state_objects[each.key].locks}"]
    assert not any(
        a.startswith(("ec2:Create", "ec2:Delete", "eks:Create", "iam:Create", "iam:Put", "iam:Attach"))
        for st in policy_statements("preview")
        for a in st["actions"]
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
    assert "aws_iam_role.deploy" in outputs["deploy_role_arns"]["value"]
    assert "aws_iam_role.preview" in outputs["preview_role_arns"]["value"]
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
