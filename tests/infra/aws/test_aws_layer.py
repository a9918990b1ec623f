"""The AWS layer on the resource graph of every environment's offline plan.

Each assertion names the URN it is about. Inputs are what the provider would receive.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra import versions
from infra.config import ENVIRONMENTS, load_environment
from tests.support.aws_helpers import as_list, of_type, one, statements

PlanFor = Callable[[str], dict[str, Any]]
STATEFUL_TYPES = {"aws:kms/key:Key", "aws:eks/cluster:Cluster", "aws:cloudwatch/logGroup:LogGroup"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_network_spans_three_zones_with_discovery_tags(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    subnets = of_type(plan, "aws:ec2/subnet:Subnet")
    public = [s for s in subnets if s["inputs"]["tags"].get("kubernetes.io/role/elb") == "1"]
    private = [s for s in subnets if s["inputs"]["tags"].get("kubernetes.io/role/internal-elb") == "1"]
    assert len(public) == 3 and len(private) == 3, [s["urn"] for s in subnets]
    assert len({s["inputs"]["availabilityZone"] for s in private}) == 3
    for subnet in private:
        assert subnet["inputs"]["tags"]["karpenter.sh/discovery"] == f"mlplat-{env}", subnet["urn"]
    for subnet in public:
        assert subnet["inputs"]["mapPublicIpOnLaunch"] is False, subnet["urn"]
    nats = of_type(plan, "aws:ec2/natGateway:NatGateway")
    expected = 3 if load_environment(env).network.nat_gateways == "per_az" else 1
    assert len(nats) == expected, [n["urn"] for n in nats]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cluster_encrypts_secrets_logs_audit_and_pins_version(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    cluster = one(plan, "aws:eks/cluster:Cluster")
    inputs, urn = cluster["inputs"], cluster["urn"]
    assert inputs["version"] == load_environment(env).cluster.kubernetes_version, urn
    assert inputs["encryptionConfig"]["resources"] == ["secrets"], urn
    assert inputs["encryptionConfig"]["provider"]["keyArn"].startswith("arn:aws:kms:"), urn
    assert "audit" in inputs["enabledClusterLogTypes"], urn
    assert inputs["accessConfig"]["authenticationMode"] == "API", urn
    assert inputs["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is False, urn
    for key in of_type(plan, "aws:kms/key:Key"):
        assert key["inputs"]["enableKeyRotation"] is True, key["urn"]
    for alias in of_type(plan, "aws:kms/alias:Alias"):
        assert alias["inputs"]["name"].startswith(f"alias/mlplat-{env}-"), alias["urn"]


def test_prod_api_is_private_and_dev_public_only_with_allowlist(offline_plan: PlanFor) -> None:
    prod = one(offline_plan("prod"), "aws:eks/cluster:Cluster")
    assert prod["inputs"]["vpcConfig"]["endpointPublicAccess"] is False, prod["urn"]
    assert prod["inputs"]["vpcConfig"]["endpointPrivateAccess"] is True, prod["urn"]
    dev = one(offline_plan("dev"), "aws:eks/cluster:Cluster")
    endpoint = load_environment("dev").cluster.endpoint
    assert dev["inputs"]["vpcConfig"]["endpointPublicAccess"] is endpoint.public, dev["urn"]
    if endpoint.public:
        assert dev["inputs"]["vpcConfig"]["publicAccessCidrs"] == [
            str(c) for c in endpoint.public_access_cidrs
        ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_admin_access_entries_and_pinned_addons(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    config = load_environment(env)
    admins = {
        a["inputs"]["principalArn"]
        for a in of_type(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if a["inputs"]["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
    }
    assert admins == set(config.cluster.admin_role_arns)
    viewers = {
        a["inputs"]["principalArn"]
        for a in of_type(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if a["inputs"]["policyArn"].endswith("/AmazonEKSViewPolicy")
    }
    assert viewers == set(config.cluster.viewer_role_arns) and viewers
    addons = {a["inputs"]["addonName"]: a for a in of_type(plan, "aws:eks/addon:Addon")}
    pins = versions.EKS_ADDONS[config.cluster.kubernetes_version]
    assert set(addons) == set(pins) == {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"}
    for name, addon in addons.items():
        assert addon["inputs"]["addonVersion"] == pins[name], addon["urn"]
    assert addons["aws-ebs-csi-driver"]["inputs"]["serviceAccountRoleArn"].startswith("arn:aws:iam::")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_node_requires_imdsv2(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    for template in of_type(plan, "aws:ec2/launchTemplate:LaunchTemplate"):
        assert template["inputs"]["metadataOptions"]["httpTokens"] == "required", template["urn"]
        assert template["inputs"]["metadataOptions"]["httpPutResponseHopLimit"] == 1, template["urn"]
    group = one(plan, "aws:eks/nodeGroup:NodeGroup")
    assert group["inputs"]["capacityType"] == "ON_DEMAND", group["urn"]
    assert "launchTemplate" in group["inputs"], group["urn"]
    node_classes = of_type(plan, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    assert len(node_classes) == 2  # GPU nodes and CPU model nodes
    for node_class in node_classes:
        spec, urn = node_class["inputs"]["spec"], node_class["urn"]
        assert spec["metadataOptions"]["httpTokens"] == "required", urn
        assert spec["amiSelectorTerms"] == [{"alias": versions.KARPENTER_GPU_AMI_ALIAS}], urn


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_gpu_pools_are_tainted_labelled_and_capped(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    config = load_environment(env)
    pools = {
        p["inputs"]["metadata"]["name"]: p
        for p in of_type(plan, "kubernetes:karpenter.sh/v1:NodePool")
        if "mlplat/gpu-pool" in p["inputs"]["spec"]["template"]["metadata"]["labels"]
    }
    assert set(pools) == {p.name for p in config.gpu.pools} and len(pools) >= 2
    total = 0
    for pool in config.gpu.pools:
        resource = pools[pool.name]
        spec, urn = resource["inputs"]["spec"], resource["urn"]
        template = spec["template"]
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in template["spec"][
            "taints"
        ], urn
        assert template["metadata"]["labels"]["mlplat/gpu-pool"] == pool.name, urn
        requirements = {r["key"]: r["values"] for r in template["spec"]["requirements"]}
        assert requirements["node.kubernetes.io/instance-type"] == pool.instance_types, urn
        assert requirements["karpenter.sh/capacity-type"] == [pool.capacity_type], urn
        assert spec["disruption"]["consolidationPolicy"] == pool.consolidation, urn
        # Physical GPUs the pool can reach: the node limit binds; a time-sliced pool's GPU limit is in slices.
        nodes, slices = int(spec["limits"]["nodes"]), pool.time_slicing_replicas or 1
        assert nodes == pool.max_size, urn
        assert int(spec["limits"]["nvidia.com/gpu"]) == nodes * pool.gpus_per_node * slices, urn
        total += nodes * pool.gpus_per_node
    assert total <= config.gpu.max_total_gpus


def _crd_schema(reference: Path, file: str) -> dict[str, Any]:
    crd = yaml.safe_load((reference / "crds" / "karpenter" / file).read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_karpenter_resources_match_the_upstream_crds(
    offline_plan: PlanFor, reference: Path, env: str
) -> None:
    plan = offline_plan(env)
    schemas = {
        "kubernetes:karpenter.sh/v1:NodePool": _crd_schema(reference, "karpenter.sh_nodepools.yaml"),
        "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass": _crd_schema(
            reference, "karpenter.k8s.aws_ec2nodeclasses.yaml"
        ),
    }
    for typ, schema in schemas.items():
        for resource in of_type(plan, typ):
            errors = [
                e.message for e in jsonschema.Draft7Validator(schema).iter_errors(resource["inputs"]["spec"])
            ]
            assert not errors, f"{resource['urn']}: {errors}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_iam_has_no_wildcard_action_on_every_resource(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    policies = of_type(plan, "aws:iam/rolePolicy:RolePolicy")
    assert policies
    for policy in policies:
        for statement in statements(policy["inputs"]["policy"]):
            if "*" in as_list(statement["Resource"]):
                wild = [a for a in as_list(statement["Action"]) if "*" in a]
                assert not wild, f"{policy['urn']}: {statement['Sid']} allows {wild} on *"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_irsa_roles_trust_exactly_one_service_account(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    federated = [
        r
        for r in of_type(plan, "aws:iam/role:Role")
        if "Federated" in json.dumps(json.loads(r["inputs"]["assumeRolePolicy"]))
    ]
    subjects = set()
    for role in federated:
        (statement,) = list(statements(role["inputs"]["assumeRolePolicy"]))
        condition = statement["Condition"]["StringEquals"]
        sub = next(v for k, v in condition.items() if k.endswith(":sub"))
        aud = next(v for k, v in condition.items() if k.endswith(":aud"))
        assert aud == "sts.amazonaws.com" and "*" not in sub, role["urn"]
        assert role["inputs"]["namePrefix"] == f"mlplat-{env}-", role["urn"]
        assert role["inputs"]["permissionsBoundary"].endswith(f":policy/mlplat-boundary-{env}"), role["urn"]
        subjects.add(sub)
    assert {
        "system:serviceaccount:kube-system:aws-node",
        "system:serviceaccount:kube-system:ebs-csi-controller-sa",
        "system:serviceaccount:karpenter:karpenter",
    } <= subjects


def test_prod_protects_stateful_resources_and_dev_does_not(offline_plan: PlanFor) -> None:
    for resource in offline_plan("prod")["resources"]:
        if resource["type"] in STATEFUL_TYPES:
            assert resource["protect"] or resource["retainOnDelete"], f"{resource['urn']} is not protected"
    assert not any(r["protect"] for r in offline_plan("dev")["resources"] if r["type"] in STATEFUL_TYPES)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_storage_classes_are_encrypted_default_and_retain(offline_plan: PlanFor, env: str) -> None:
    classes = {
        c["inputs"]["metadata"]["name"]: c
        for c in of_type(offline_plan(env), "kubernetes:storage.k8s.io/v1:StorageClass")
    }
    default, retain = classes["gp3-encrypted"], classes["gp3-retain"]
    annotation = "storageclass.kubernetes.io/is-default-class"
    assert default["inputs"]["metadata"]["annotations"][annotation] == "true", default["urn"]
    assert retain["inputs"]["reclaimPolicy"] == "Retain", retain["urn"]
    for sc in classes.values():
        assert sc["inputs"]["parameters"]["type"] == "gp3", sc["urn"]
        assert sc["inputs"]["parameters"]["encrypted"] == "true", sc["urn"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_kubernetes_resource_names_its_provider(offline_plan: PlanFor, env: str) -> None:
    for resource in offline_plan(env)["resources"]:
        if resource["type"].startswith("kubernetes:"):
            assert resource["provider"] and "pulumi:providers:kubernetes::k8s" in resource["provider"], (
                resource["urn"]
            )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_components_use_mlplat_type_tokens_and_outputs(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    # A provider's own component (the rendered Gateway API CRD chart, infra/services/gateway.py) keeps
    # the provider's type token; every component of ours is `mlplat:`.
    components = [
        r for r in plan["resources"] if not r["custom"] and r["type"] != "kubernetes:helm.sh/v4:Chart"
    ]
    assert all(c["type"].startswith("mlplat:") for c in components), [c["type"] for c in components]
    outputs = plan["outputs"]
    assert outputs["clusterName"] == f"mlplat-{env}"
    assert outputs["oidcIssuer"].startswith("https://oidc.eks.")
    assert outputs["gpuPoolNames"] == [p.name for p in load_environment(env).gpu.pools]
    assert outputs["systemPoolName"] == f"mlplat-{env}-system"


# IAM refuses a role whose inline policies together exceed 10,240 characters, whitespace not counted
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html, "Role policy size").
ROLE_INLINE_POLICY_LIMIT = 10_240


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_inline_role_policies_fit_iams_size_limit(offline_plan: PlanFor, env: str) -> None:
    sizes: dict[str, int] = {}
    for policy in of_type(offline_plan(env), "aws:iam/rolePolicy:RolePolicy"):
        document = json.dumps(json.loads(policy["inputs"]["policy"]), separators=(",", ":"))
        sizes[policy["parent"]] = sizes.get(policy["parent"], 0) + len(document)
    for role, size in sizes.items():
        assert size <= ROLE_INLINE_POLICY_LIMIT, f"{role}: inline policies of {size} characters"
