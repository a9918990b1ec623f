"""What must exist before what at the cluster boundary, and what the key and access grants admit.

Each test reads the order the engine would follow (`waits_for`: dependencies, providers, parents)
or a policy document on the offline plan, and names the URN it judges.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.config import ENVIRONMENTS, load_environment
from mlplat.mocks import ACCOUNT
from tests.support.aws_helpers import allows, of_type, one, statements, waits_for

PlanFor = Callable[[str], dict[str, Any]]
CNI_POLICY = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
AUTO_SCALING_ROLE = (
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
)
KARPENTER_TYPES = {"kubernetes:karpenter.sh/v1:NodePool", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"}
# EKS access policies that can read Secrets: AmazonEKSAdminViewPolicy gets/lists every resource
# ("includes Kubernetes Secrets"), AmazonEKSSecretAdminPolicy, the admin and edit policies too;
# AmazonEKSViewPolicy cannot (https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html).
READS_SECRETS = {
    "AmazonEKSAdminViewPolicy",
    "AmazonEKSSecretAdminPolicy",
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSAdminPolicy",
    "AmazonEKSEditPolicy",
}


def addons(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["inputs"]["addonName"]: a for a in of_type(plan, "aws:eks/addon:Addon")}


def karpenter_release(plan: dict[str, Any]) -> dict[str, Any]:
    (release,) = [
        r for r in of_type(plan, "kubernetes:helm.sh/v3:Release") if r["inputs"]["name"] == "karpenter"
    ]
    return release


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_nodes_get_cni_permissions_before_they_join(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    group = one(plan, "aws:eks/nodeGroup:NodeGroup")
    before = waits_for(plan, group["urn"])
    found = addons(plan)
    for name in ("vpc-cni", "kube-proxy"):
        assert found[name]["urn"] in before, f"{group['urn']} starts before the {name} add-on"
    cni_role = found["vpc-cni"]["inputs"]["serviceAccountRoleArn"]
    assert cni_role.startswith("arn:aws:iam::"), found["vpc-cni"]["urn"]
    # The node role itself holds the CNI policy, attached before the group (aws-node's first start).
    node_role = group["inputs"]["nodeRoleArn"].rsplit("/", 1)[1]
    attached = [
        a
        for a in of_type(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a["inputs"]["role"] == node_role and a["inputs"]["policyArn"] == CNI_POLICY
    ]
    assert attached and all(a["urn"] in before for a in attached), (
        f"{group['urn']}: node role without CNI policy"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_system_pool_volume_key_admits_ec2_auto_scaling(offline_plan: PlanFor, env: str) -> None:
    """Auto Scaling launches the pool with its service-linked role; the key must let it through EC2."""
    plan = offline_plan(env)
    region = load_environment(env).aws.region
    template = one(plan, "aws:ec2/launchTemplate:LaunchTemplate")
    assert template["inputs"]["blockDeviceMappings"][0]["ebs"]["kmsKeyId"].startswith("arn:aws:kms:")
    (key,) = [r for r in of_type(plan, "aws:kms/key:Key") if r["urn"] in template["dependsOn"]]
    assert "policy" in key["inputs"], f"{key['urn']}: default key policy does not admit Auto Scaling"
    policy = list(statements(key["inputs"]["policy"]))
    via_ec2 = {"kms:ViaService": f"ec2.{region}.amazonaws.com", "kms:CallerAccount": ACCOUNT}
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKeyWithoutPlaintext"):
        assert allows(policy, action, "*", via_ec2, AUTO_SCALING_ROLE), f"{key['urn']}: {action} refused"
    assert allows(
        policy, "kms:CreateGrant", "*", via_ec2 | {"kms:GrantIsForAWSResource": "true"}, AUTO_SCALING_ROLE
    )
    # Only through EC2, only for this account.
    assert not allows(policy, "kms:Decrypt", "*", {"kms:CallerAccount": ACCOUNT}, AUTO_SCALING_ROLE), key[
        "urn"
    ]
    elsewhere = via_ec2 | {"kms:CallerAccount": "999999999999"}
    assert not allows(policy, "kms:Decrypt", "*", elsewhere, "arn:aws:iam::999999999999:root"), key["urn"]
    # The account keeps administering the key through IAM (no lock-out).
    assert allows(policy, "kms:PutKeyPolicy", "*", {}, f"arn:aws:iam::{ACCOUNT}:root"), key["urn"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_karpenter_chart_is_fetched_as_an_oci_chart_with_a_timeout(offline_plan: PlanFor, env: str) -> None:
    release = karpenter_release(offline_plan(env))
    inputs, urn = release["inputs"], release["urn"]
    assert inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter", f"{urn}: chart {inputs['chart']}"
    repo = (inputs.get("repositoryOpts") or {}).get("repo", "")
    assert not repo.startswith("oci://"), f"{urn}: an OCI repository makes Helm look for index.yaml"
    assert inputs.get("timeout", 0) > 0 and inputs.get("atomic") is True, urn


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_karpenter_node_access_entry_waits_for_the_cluster(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    cluster = one(plan, "aws:eks/cluster:Cluster")
    for entry in of_type(plan, "aws:eks/accessEntry:AccessEntry"):
        assert cluster["urn"] in waits_for(plan, entry["urn"]), f"{entry['urn']} races the cluster's creation"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kubernetes_calls_wait_for_the_deploy_roles_cluster_access(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    admins = set(load_environment(env).cluster.admin_role_arns)
    deploy = {arn for arn in admins if ":role/mlplat-github-deploy-" in arn}
    assert deploy, f"no deploy role among {admins}"
    grants = [
        r
        for typ in (
            "aws:eks/accessEntry:AccessEntry",
            "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        )
        for r in of_type(plan, typ)
        if r["inputs"]["principalArn"] in deploy
    ]
    assert len(grants) == 2 * len(deploy), [g["urn"] for g in grants]
    for resource in plan["resources"]:
        if resource["type"].startswith("kubernetes:"):
            before = waits_for(plan, resource["urn"])
            late = [g["urn"] for g in grants if g["urn"] not in before]
            assert not late, f"{resource['urn']} may call the API before {late} (401/403)"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_karpenter_waits_for_the_system_pool_and_core_addons(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    release = karpenter_release(plan)
    before = waits_for(plan, release["urn"])
    needed = [one(plan, "aws:eks/nodeGroup:NodeGroup"), *addons(plan).values()]
    late = [r["urn"] for r in needed if r["urn"] not in before]
    assert not late, f"{release['urn']} installs before {late}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_platform_services_do_not_wait_for_gpu_pools(offline_plan: PlanFor, env: str) -> None:
    """A Karpenter failure must not hold back every platform service; they wait for what they use."""
    plan = offline_plan(env)
    karpenter = {karpenter_release(plan)["urn"]} | {
        r["urn"] for r in plan["resources"] if r["type"] in KARPENTER_TYPES
    }
    nodes = {one(plan, "aws:eks/nodeGroup:NodeGroup")["urn"]} | {a["urn"] for a in addons(plan).values()}
    storage = {r["urn"] for r in of_type(plan, "kubernetes:storage.k8s.io/v1:StorageClass")}
    services = [r for r in of_type(plan, "kubernetes:helm.sh/v3:Release") if "mlplat:services:" in r["urn"]]
    assert services
    for release in services:
        before = waits_for(plan, release["urn"])
        assert not before & karpenter, f"{release['urn']} waits for {sorted(before & karpenter)}"
        assert nodes <= before, f"{release['urn']} may install before {sorted(nodes - before)}"
        assert storage <= before, f"{release['urn']} may claim volumes before the storage classes"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_preview_viewer_cannot_read_cluster_secrets(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    config = load_environment(env).cluster
    viewers = set(config.viewer_role_arns) - set(config.admin_role_arns)
    assert viewers
    for association in of_type(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        if association["inputs"]["principalArn"] in viewers:
            policy = association["inputs"]["policyArn"].rsplit("/", 1)[1]
            assert policy not in READS_SECRETS, f"{association['urn']}: {policy} reads Secrets"
            assert association["inputs"]["accessScope"]["type"] == "cluster", association["urn"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_drift_refresh_can_read_helm_release_secrets_and_only_admins_and_drift_can(
    offline_plan: PlanFor, env: str
) -> None:
    """drift.yml's `pulumi preview --refresh` reads every Helm release from Helm's Secrets: with only
    the preview role's AmazonEKSViewPolicy it failed on every stack, every run. Its own role reads them;
    no other principal but the admins does (the dev preview role runs pull-request code)."""
    plan = offline_plan(env)
    config = load_environment(env).cluster
    assert config.drift_role_arns
    readers: dict[str, set[str]] = {}
    for association in of_type(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        policy = association["inputs"]["policyArn"].rsplit("/", 1)[1]
        if policy in READS_SECRETS:
            assert association["inputs"]["accessScope"]["type"] == "cluster", association["urn"]
            readers.setdefault(association["inputs"]["principalArn"], set()).add(policy)
    for role in config.drift_role_arns:
        assert readers.get(role) == {"AmazonEKSAdminViewPolicy"}, (
            f"{env}: drift role {role} gets {readers.get(role)}"
        )
    assert set(readers) == set(config.admin_role_arns) | set(config.drift_role_arns), readers


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_promote_role_reaches_the_registry_by_port_forward_and_nothing_else(
    offline_plan: PlanFor, env: str
) -> None:
    """promote.yml's registry gate could not reach a private cluster's MLflow. Its role gets in through
    the cluster API (the runner's only path) as a Kubernetes group that may get MLflow's Service, find
    and get its pods and open a port-forward to them, in the mlflow namespace only: no access policy,
    no Secret, nothing elsewhere."""
    plan = offline_plan(env)
    promote = set(load_environment(env).cluster.promote_role_arns)
    entries = [
        e for e in of_type(plan, "aws:eks/accessEntry:AccessEntry") if e["inputs"]["principalArn"] in promote
    ]
    assert len(entries) == len(promote)
    groups = {g for e in entries for g in e["inputs"]["kubernetesGroups"]}
    assert len(groups) == (1 if promote else 0), groups
    associations = of_type(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert not [a["urn"] for a in associations if a["inputs"]["principalArn"] in promote]
    bindings = [
        b
        for kind in ("RoleBinding", "ClusterRoleBinding")
        for b in of_type(plan, f"kubernetes:rbac.authorization.k8s.io/v1:{kind}")
        if {s["name"] for s in b["inputs"]["subjects"] if s["kind"] == "Group"} & groups
    ]
    assert len(bindings) == len(groups), [b["urn"] for b in bindings]
    for binding in bindings:
        assert binding["type"].endswith(":RoleBinding"), binding["urn"]
        namespace = binding["inputs"]["metadata"]["namespace"]
        (role,) = [
            r
            for r in of_type(plan, "kubernetes:rbac.authorization.k8s.io/v1:Role")
            if r["inputs"]["metadata"]["name"] == binding["inputs"]["roleRef"]["name"]
            and r["inputs"]["metadata"]["namespace"] == namespace
        ]
        rules = {
            (resource, verb)
            for rule in role["inputs"]["rules"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
            if rule["apiGroups"] == [""]
        }
        assert sum(len(r["resources"]) * len(r["verbs"]) for r in role["inputs"]["rules"]) == len(rules)
        assert (namespace, rules) == (
            "mlflow",
            {("services", "get"), ("pods", "get"), ("pods", "list"), ("pods/portforward", "create")},
        ), role["urn"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_service_accounts_get_their_role_only_once_its_permissions_exist(
    offline_plan: PlanFor, env: str
) -> None:
    """aws-node, the EBS CSI driver, Karpenter and Vault must not start on a role without its policies."""
    plan = offline_plan(env)
    federated = [
        r
        for r in of_type(plan, "aws:iam/role:Role")
        if "sts:AssumeRoleWithWebIdentity" in r["inputs"]["assumeRolePolicy"]
    ]
    assert federated
    for role in federated:
        arn = f"arn:aws:iam::{ACCOUNT}:role/{role['name']}"  # the mocks' ARN for this role
        policies = [
            r["urn"]
            for r in plan["resources"]
            if r["parent"] == role["urn"] and r["type"].startswith("aws:iam/rolePolicy")
        ]
        consumers = [
            r for r in plan["resources"] if r["parent"] != role["urn"] and arn in json.dumps(r["inputs"])
        ]
        assert policies and consumers, f"{role['urn']}: {policies} {[c['urn'] for c in consumers]}"
        for consumer in consumers:
            early = [p for p in policies if p not in waits_for(plan, consumer["urn"])]
            assert not early, f"{consumer['urn']} hands out {role['urn']} before {early}"
