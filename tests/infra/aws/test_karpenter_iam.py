"""Karpenter's controller permissions against the CloudFormation policy Karpenter ships (v1.14.1),
and as IAM would decide them: what the controller may launch, tag, terminate and delete.

The upstream template is read in place from ../shared/reference/iam/karpenter/cloudformation.yaml.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import load_environment
from mlplat.mocks import ACCOUNT
from tests.support.aws_helpers import allows, as_list, of_type, one, statements
from tests.support.iam_eval import ACCOUNT as BOOTSTRAP_ACCOUNT
from tests.support.iam_eval import Scope, decide, request
from tests.support.iam_eval import statements as boundary_statements

Plan = dict[str, Any]
CONTROLLER_SUBJECT = "system:serviceaccount:karpenter:karpenter"
# Ours beyond upstream's template: the EBS key of GPU nodes' volumes (issue 12, item 8).
OWN_STATEMENTS = {"UseNodeVolumeKey", "GrantNodeVolumeKeyToEc2"}


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads `!Sub`, `!GetAtt` and `!Ref` as the plain scalar or list they wrap."""


for _tag in ("!Sub", "!GetAtt", "!Ref"):
    _CloudFormationLoader.add_constructor(
        _tag,
        lambda loader, node: (
            loader.construct_scalar(node)
            if isinstance(node, yaml.ScalarNode)
            else loader.construct_sequence(node)
        ),
    )


def upstream_template(reference: Path) -> dict[str, Any]:
    path = reference / "iam" / "karpenter" / "cloudformation.yaml"
    template: dict[str, Any] = yaml.load(path.read_text(), Loader=_CloudFormationLoader)
    return template


def upstream_controller_statements(reference: Path, values: dict[str, str]) -> list[dict[str, Any]]:
    """Every statement of the template's controller policies, with `${…}` substituted from `values`."""
    found: list[dict[str, Any]] = []
    for resource in upstream_template(reference)["Resources"].values():
        if resource["Type"] != "AWS::IAM::ManagedPolicy":
            continue
        text = re.sub(
            r"\$\{([^}]+)\}", lambda m: values[m.group(1)], resource["Properties"]["PolicyDocument"]
        )
        found += as_list(json.loads(text)["Statement"])
    return found


def controller_policy(plan: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """(URN, statements) of the inline policy of the role Karpenter's service account assumes."""
    roles = [
        r["urn"]
        for r in of_type(plan, "aws:iam/role:Role")
        if CONTROLLER_SUBJECT in r["inputs"]["assumeRolePolicy"]
    ]
    assert len(roles) == 1, roles
    (policy,) = [r for r in of_type(plan, "aws:iam/rolePolicy:RolePolicy") if r["parent"] == roles[0]]
    return policy["urn"], list(statements(policy["inputs"]["policy"]))


def node_classes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The GPU and the CPU model node classes; both name the one Karpenter node role."""
    classes = of_type(plan, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    assert len(classes) == 2, [c["urn"] for c in classes]
    return classes


def karpenter_node_role(plan: dict[str, Any]) -> str:
    (role,) = {c["inputs"]["spec"]["role"] for c in node_classes(plan)}
    return str(role)


def _normalized(statement: dict[str, Any]) -> dict[str, Any]:
    condition = {
        operator: {key: sorted(as_list(value)) for key, value in pairs.items()}
        for operator, pairs in (statement.get("Condition") or {}).items()
    }
    return {
        "Effect": statement["Effect"],
        "Action": sorted(as_list(statement["Action"])),
        "Resource": sorted(as_list(statement["Resource"])),
        "Condition": condition,
    }


def test_karpenter_controller_policy_is_upstreams_statement_for_statement(
    plan: Plan, reference: Path, env: str
) -> None:
    region = load_environment(env).aws.region
    queue = one(plan, "aws:sqs/queue:Queue")
    values = {
        "ClusterName": f"mlplat-{env}",
        "AWS::Partition": "aws",
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT,
        # The mocks name an ARN after the resource; the node class names the node role.
        "KarpenterNodeRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/{karpenter_node_role(plan)}",
        "KarpenterInterruptionQueue.Arn": f"arn:aws:sqs:{region}:{ACCOUNT}:{queue['name']}",
    }
    upstream = {s["Sid"]: _normalized(s) for s in upstream_controller_statements(reference, values)}
    urn, ours_list = controller_policy(plan)
    ours = {s["Sid"]: _normalized(s) for s in ours_list}

    missing = sorted(set(upstream) - set(ours))
    assert not missing, f"{urn}: upstream statements missing: {missing}"
    for sid, statement in upstream.items():
        assert ours[sid] == statement, (
            f"{urn}: {sid} drifted from upstream:\nours     {ours[sid]}\nupstream {statement}"
        )
    extra = set(ours) - set(upstream)
    assert extra <= OWN_STATEMENTS, (
        f"{urn}: statements neither upstream nor ours by design: {extra - OWN_STATEMENTS}"
    )
    for sid in extra:
        assert all(r.startswith("arn:aws:kms:") for r in ours[sid]["Resource"]), (
            f"{urn}: {sid} beyond the key"
        )


def test_karpenter_interruption_rules_match_upstream(plan: Plan, reference: Path) -> None:
    upstream = [
        resource["Properties"]["EventPattern"]
        for resource in upstream_template(reference)["Resources"].values()
        if resource["Type"] == "AWS::Events::Rule"
    ]
    rules = of_type(plan, "aws:cloudwatch/eventRule:EventRule")
    ours = [json.loads(rule["inputs"]["eventPattern"]) for rule in rules]
    missing = [pattern for pattern in upstream if pattern not in ours]
    assert not missing, f"{[r['urn'] for r in rules]}: no rule for {missing}"


def _owned_by(cluster: str) -> dict[str, str | list[str]]:
    return {
        f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned",
        "aws:ResourceTag/karpenter.sh/nodepool": "gpu-small",
        "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "gpu",
        "aws:ResourceTag/topology.kubernetes.io/region": "eu-west-1",
    }


def test_karpenter_cannot_tag_terminate_or_delete_what_another_cluster_owns(plan: Plan, env: str) -> None:
    urn, policy = controller_policy(plan)
    region = load_environment(env).aws.region
    instance = f"arn:aws:ec2:{region}:{ACCOUNT}:instance/i-0123456789abcdef0"
    template = f"arn:aws:ec2:{region}:{ACCOUNT}:launch-template/lt-0123456789abcdef0"
    profile = f"arn:aws:iam::{ACCOUNT}:instance-profile/mlplat_other_profile"
    own = {**_owned_by(f"mlplat-{env}"), "aws:ResourceTag/topology.kubernetes.io/region": region}
    other = {**_owned_by("prod-payments"), "aws:ResourceTag/topology.kubernetes.io/region": region}
    retag = {"aws:TagKeys": ["Name"]}

    for action, resource in (
        ("ec2:TerminateInstances", instance),
        ("ec2:DeleteLaunchTemplate", template),
        ("iam:DeleteInstanceProfile", profile),
        ("iam:RemoveRoleFromInstanceProfile", profile),
        ("iam:AddRoleToInstanceProfile", profile),
    ):
        assert allows(policy, action, resource, own), f"{urn}: cannot {action} its own {resource}"
        assert not allows(policy, action, resource, other), (
            f"{urn}: may {action} another cluster's {resource}"
        )
        assert not allows(policy, action, resource, {}), f"{urn}: may {action} an untagged {resource}"
    assert allows(policy, "ec2:CreateTags", instance, {**own, **retag}), f"{urn}: cannot name its nodes"
    assert not allows(policy, "ec2:CreateTags", instance, {**other, **retag}), (
        f"{urn}: may tag others' instances"
    )
    # Tagging an instance into our cluster would make it ours to terminate: never on an untagged one.
    claim = {"aws:TagKeys": [f"kubernetes.io/cluster/mlplat-{env}", "karpenter.sh/nodepool"]}
    assert not allows(policy, "ec2:CreateTags", instance, claim), (
        f"{urn}: may claim any instance by tagging it"
    )
    assert not allows(policy, "ec2:RunInstances", instance, {}), (
        f"{urn}: may launch instances it does not tag"
    )


def test_karpenter_can_use_the_key_its_node_volumes_are_encrypted_with(plan: Plan, env: str) -> None:
    volumes = [c["inputs"]["spec"]["blockDeviceMappings"][0]["ebs"] for c in node_classes(plan)]
    if not all(v["encrypted"] for v in volumes):
        pytest.skip(f"{env} does not encrypt node volumes")
    (key,) = {v["kmsKeyID"] for v in volumes}  # GPU and CPU model nodes: one key
    urn, policy = controller_policy(plan)
    for action in (
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom",
    ):
        assert allows(policy, action, key), f"{urn}: cannot {action} on {key}: GPU nodes die at launch"
    assert allows(policy, "kms:CreateGrant", key, {"kms:GrantIsForAWSResource": "true"}), urn
    assert not allows(policy, "kms:CreateGrant", key, {"kms:GrantIsForAWSResource": "false"}), (
        f"{urn}: may grant {key} to principals that are not AWS services"
    )
    other = f"arn:aws:kms:{load_environment(env).aws.region}:{ACCOUNT}:key/other"
    assert not allows(policy, "kms:Decrypt", other), f"{urn}: may use keys other than its nodes' key"


def test_karpenter_pricing_calls_are_not_bound_to_the_stack_region(plan: Plan) -> None:
    """Karpenter v1.14.1 calls the Pricing API in eu-central-1 for eu-* regions (pricing.go `NewAPI`)."""
    urn, policy = controller_policy(plan)
    for pricing_region in ("us-east-1", "eu-central-1", "ap-south-1"):
        assert allows(policy, "pricing:GetProducts", "*", {"aws:RequestedRegion": pricing_region}), urn


def test_karpenter_node_role_has_upstreams_managed_policies(plan: Plan, reference: Path) -> None:
    node_role = upstream_template(reference)["Resources"]["KarpenterNodeRole"]["Properties"]
    upstream = {arn.replace("${AWS::Partition}", "aws") for arn in node_role["ManagedPolicyArns"]}
    role_name = karpenter_node_role(plan)
    attached = [
        a
        for a in of_type(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a["inputs"]["role"] == role_name
    ]
    ours = {a["inputs"]["policyArn"] for a in attached}
    assert ours == upstream, f"{[a['urn'] for a in attached]}: {sorted(ours ^ upstream)}"


def test_the_permissions_boundary_admits_what_the_karpenter_controller_does(env: str) -> None:
    """A grant beyond the role's permissions boundary fails at run time. Karpenter v1.14.1 lists the
    instance profiles before an EC2NodeClass's finalizer lets go (pkg/controllers/nodeclass/controller.go
    cleanupInstanceProfiles) and in its profile garbage collector (nodeclass/garbagecollection): refused,
    deleting a node class or destroying the stack hangs on the finalizer. Each call below is one the
    controller makes (upstream's policy names it: ../shared/reference/iam/karpenter/cloudformation.yaml),
    on resources named as the program names them (IamScope prefix mlplat-<env>-)."""
    region = load_environment(env).aws.region
    boundary = boundary_statements("workload_boundary", Scope(env, region))
    iam = f"arn:aws:iam::{BOOTSTRAP_ACCOUNT}"
    profile = f"{iam}:instance-profile/mlplat-{env}_1234567890"
    own = {f"kubernetes.io/cluster/mlplat-{env}": "owned", "mlplat/environment": env}
    in_region = request(aws__RequestedRegion=region)
    # IAM is a global service: its calls are requested in us-east-1 whatever the stack's region.
    global_call = request(aws__RequestedRegion="us-east-1")
    calls = [
        ("iam:ListInstanceProfiles", "*", global_call),
        ("iam:GetInstanceProfile", profile, global_call),
        ("iam:CreateInstanceProfile", profile, request(aws__RequestedRegion="us-east-1", request_tags=own)),
        ("iam:TagInstanceProfile", profile, request(aws__RequestedRegion="us-east-1", request_tags=own)),
        ("iam:AddRoleToInstanceProfile", profile, global_call),
        ("iam:RemoveRoleFromInstanceProfile", profile, global_call),
        ("iam:DeleteInstanceProfile", profile, global_call),
        ("iam:PassRole", f"{iam}:role/mlplat-{env}-gpu-node-1a2b3c", global_call),
        ("ec2:DescribeInstanceTypes", "*", in_region),
        ("ec2:CreateFleet", f"arn:aws:ec2:{region}:{BOOTSTRAP_ACCOUNT}:fleet/fleet-1", in_region),
        ("eks:DescribeCluster", f"arn:aws:eks:{region}:{BOOTSTRAP_ACCOUNT}:cluster/mlplat-{env}", in_region),
        ("sqs:ReceiveMessage", f"arn:aws:sqs:{region}:{BOOTSTRAP_ACCOUNT}:mlplat-{env}-gpu-1a2b", in_region),
        ("ssm:GetParameter", f"arn:aws:ssm:{region}::parameter/aws/service/eks/optimized-ami/x", in_region),
    ]
    for action, resource, context in calls:
        allowed, why = decide(boundary, action, resource, context)
        assert allowed, f"the {env} boundary refuses Karpenter's {action} on {resource} ({why})"
