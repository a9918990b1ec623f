"""The deploy path to a private API endpoint (docs/adr/0003) and the environment tag the deploy role's
isolation keys on, read from the offline plan of each environment.

Every environment's endpoint is private, so every plan must peer the cluster VPC with the bootstrap's
runner VPC, route both ways, admit the runner's security group (and nothing by address) on 443, and
hold the Kubernetes provider back until all of it exists. Destroy deletes in the reverse order (a
resource goes once nothing depending on it is left: pulumi/pulumi pkg/resource/deploy/step_generator.go
ScheduleDeletes), so what the provider waits for stays until every Kubernetes resource is gone.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from infra.config import ENVIRONMENTS, RunnerConfig, StackConfig, load_environment
from tests.support.aws_helpers import of_type, one, waits_for

PlanFor = Callable[[str], dict[str, Any]]
TAG = "mlplat/environment"
PEERING = "aws:ec2/vpcPeeringConnection:VpcPeeringConnection"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
INGRESS_TYPES = {
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:ec2/securityGroupRule:SecurityGroupRule",
    "aws:ec2/securityGroup:SecurityGroup",
}


def runner_of(config: StackConfig) -> RunnerConfig:
    runner = config.cluster.endpoint.runner
    assert runner is not None, f"{config.environment}: private endpoint without a runner"
    return runner


def private_route_tables(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The route tables whose default route leaves through a NAT gateway: the private subnets'."""
    return [
        table
        for table in of_type(plan, ROUTE_TABLE)
        if any(route.get("natGatewayId") for route in table["inputs"].get("routes", []))
    ]


def ingress_rules_on_443(plan: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every ingress rule of the plan (standalone or inline) whose port range includes 443."""
    found = []
    for resource in plan["resources"]:
        if resource["type"] not in INGRESS_TYPES:
            continue
        inputs = resource["inputs"]
        rules = inputs.get("ingress", []) if resource["type"].endswith(":SecurityGroup") else [inputs]
        for rule in rules:
            if rule.get("type", "ingress") != "ingress":
                continue
            low, high = rule.get("fromPort", 0), rule.get("toPort", 65535)
            if rule.get("ipProtocol", rule.get("protocol")) in ("-1", "all") or low <= 443 <= high:
                found.append((resource["urn"], rule))
    return found


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_private_cluster_vpc_is_peered_with_its_runner_vpc(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    runner = runner_of(load_environment(env))
    peering = one(plan, PEERING)
    vpc = one(plan, "aws:ec2/vpc:Vpc")
    inputs = peering["inputs"]
    assert vpc["urn"] in peering["dependsOn"] and inputs["vpcId"] != runner.vpc_id, peering["urn"]
    assert inputs["peerVpcId"] == runner.vpc_id, peering["urn"]
    # Same account and region: accepted in the same call, so routes and rules find it active.
    assert inputs.get("autoAccept") is True, f"{peering['urn']}: never accepted, traffic never flows"
    assert "peerRegion" not in inputs and "peerOwnerId" not in inputs, peering["urn"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_private_subnet_routes_to_the_runner_and_the_runner_routes_back(
    offline_plan: PlanFor, env: str
) -> None:
    """The endpoint's network interfaces may sit in any cluster subnet: answers to the runner must be
    routable from each of them, and the runner's packets must find the cluster VPC."""
    plan = offline_plan(env)
    config = load_environment(env)
    runner = runner_of(config)
    peering = one(plan, PEERING)
    tables = private_route_tables(plan)
    assert len(tables) == len(config.network.availability_zones)
    via: set[str] = set()
    for table in tables:
        to_runner = [r for r in table["inputs"]["routes"] if r.get("cidrBlock") == str(runner.vpc_cidr)]
        assert len(to_runner) == 1 and to_runner[0].get("vpcPeeringConnectionId"), (
            f"{table['urn']}: no route to the runner VPC {runner.vpc_cidr}"
        )
        assert peering["urn"] in table["dependsOn"], table["urn"]
        via.add(to_runner[0]["vpcPeeringConnectionId"])
    (back,) = [
        r for r in of_type(plan, ROUTE) if r["inputs"]["routeTableId"] == runner.private_route_table_id
    ]
    assert back["inputs"]["destinationCidrBlock"] == str(config.network.vpc_cidr), back["urn"]
    assert peering["urn"] in back["dependsOn"], back["urn"]
    assert via == {back["inputs"]["vpcPeeringConnectionId"]}, "routes go through different peerings"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_api_admits_only_the_runner_group_on_443_once_peered(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    runner = runner_of(load_environment(env))
    rules = ingress_rules_on_443(plan)
    assert len(rules) == 1, f"expected one rule admitting 443, found {[urn for urn, _ in rules]}"
    ((urn, rule),) = rules
    assert rule.get("referencedSecurityGroupId") == runner.security_group_id, urn
    address_keys = {"cidrIpv4", "cidrIpv6", "prefixListId", "cidrBlocks", "ipv6CidrBlocks"}
    assert not address_keys & set(rule), f"{urn}: admits an address range, not only the runner group"
    assert (rule["ipProtocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 443, 443), urn
    # On the group EKS puts on the endpoint's interfaces (reported by the cluster), after the peering.
    cluster = one(plan, "aws:eks/cluster:Cluster")
    rule_resource = next(r for r in plan["resources"] if r["urn"] == urn)
    assert cluster["urn"] in rule_resource["dependsOn"] and rule["securityGroupId"].startswith("sg-"), urn
    assert one(plan, PEERING)["urn"] in waits_for(plan, urn), f"{urn}: references a peer group before peering"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kubernetes_provider_waits_until_the_runner_can_reach_the_api(
    offline_plan: PlanFor, env: str
) -> None:
    plan = offline_plan(env)
    provider = one(plan, "pulumi:providers:kubernetes")
    before = waits_for(plan, provider["urn"])
    runner = runner_of(load_environment(env))
    path = [one(plan, PEERING), *private_route_tables(plan), *of_type(plan, ASSOCIATION)]
    path += [r for r in of_type(plan, ROUTE) if r["inputs"]["routeTableId"] == runner.private_route_table_id]
    path += [next(r for r in plan["resources"] if r["urn"] == urn) for urn, _ in ingress_rules_on_443(plan)]
    missing = [r["urn"] for r in path if r["urn"] not in before]
    assert len(path) >= 5 and not missing, f"{provider['urn']} starts before {missing}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_destroy_keeps_every_subnet_on_its_route_table_until_no_kubernetes_resource_is_left(
    offline_plan: PlanFor, env: str
) -> None:
    """An association nothing depends on goes in destroy's first wave: its subnet falls back to the
    VPC's main route table (no NAT, no route to the runner), the API's interfaces stop answering the
    runner and every Kubernetes delete after it times out. Each subnet, private and public (the NAT
    gateways' and load balancers'), must stay routed until everything on the cluster is deleted."""
    plan = offline_plan(env)
    zones = load_environment(env).network.availability_zones
    associations = {r["urn"] for r in of_type(plan, ASSOCIATION)}
    subnets = {r["inputs"]["subnetId"] for r in of_type(plan, ASSOCIATION)}
    assert len(subnets) == len(associations) == 2 * len(zones), (
        f"not every subnet is associated: {associations}"
    )
    on_cluster = [
        r
        for r in plan["resources"]
        if r["type"].startswith("kubernetes:") or r["type"] == "pulumi:providers:kubernetes"
    ]
    assert len(on_cluster) > 50
    unheld = [r["urn"] for r in on_cluster if not associations <= waits_for(plan, r["urn"])]
    assert not unheld, (
        f"destroy removes routes while {len(unheld)} Kubernetes resources are left: {unheld[:3]}"
    )


@cache
def takes_tags(typ: str) -> bool:
    """Whether the Pulumi AWS resource of a type token (aws:ec2/vpc:Vpc) has a `tags` argument."""
    module, _, name = typ.removeprefix("aws:").partition(":")
    cls = getattr(importlib.import_module(f"pulumi_aws.{module.split('/')[0]}"), name)
    return "tags" in inspect.signature(cls._internal_init).parameters


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_taggable_aws_resource_carries_its_environment_tag(offline_plan: PlanFor, env: str) -> None:
    """The deploy role creates EC2, KMS and IAM resources only with `mlplat/environment=<env>`
    (infra/bootstrap/deploy_roles.tf): a resource without it fails with AccessDenied mid-deploy."""
    plan = offline_plan(env)
    providers = {
        r["urn"]: json.loads(r["inputs"].get("defaultTags") or "{}").get("tags", {})
        for r in of_type(plan, "pulumi:providers:aws")
    }
    taggable = [
        r for r in plan["resources"] if r["custom"] and r["type"].startswith("aws:") and takes_tags(r["type"])
    ]
    assert len(taggable) > 20
    untagged = []
    for resource in taggable:
        defaults = providers[resource["provider"].rsplit("::", 1)[0]]
        own = resource["inputs"].get("tags") or {}
        if {**defaults, **own}.get(TAG) != env:
            untagged.append(resource["urn"])
    assert not untagged, f"not tagged {TAG}={env}: {untagged}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_instances_and_volumes_controllers_create_carry_the_environment_tag(
    offline_plan: PlanFor, env: str
) -> None:
    """Karpenter's GPU nodes and the EBS CSI driver's claim volumes are created by controllers, not by
    the program: they get the tag only if the node class and the add-on pass it on."""
    plan = offline_plan(env)
    node_classes = of_type(plan, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    assert len(node_classes) == 2  # GPU nodes and CPU model nodes
    for node_class in node_classes:
        assert node_class["inputs"]["spec"]["tags"].get(TAG) == env, node_class["urn"]
    (ebs,) = [
        a for a in of_type(plan, "aws:eks/addon:Addon") if a["inputs"]["addonName"] == "aws-ebs-csi-driver"
    ]
    settings = json.loads(ebs["inputs"].get("configurationValues") or "{}")
    assert settings.get("controller", {}).get("extraVolumeTags", {}).get(TAG) == env, ebs["urn"]
