"""infra/bootstrap/runners.tf: the in-VPC GitHub runners that are the only path to the clusters' private
API endpoints (docs/adr/0003-deploy-path-to-private-endpoints.md), read from the Terraform source."""

from __future__ import annotations

import re
from ipaddress import IPv4Network

import pytest

from infra.config import load_environment
from tests.support.delivery_helpers import (
    ENVIRONMENTS,
    policy_statements,
    render,
    runner_layout,
    statement,
    terraform,
)
from tests.support.iam_eval import inline_documents

RESOURCES = terraform()["resource"]


def test_runner_vpc_does_not_overlap_any_environment_vpc() -> None:
    """Peering refuses overlapping ranges: an overlap would leave that stack with no deploy path."""
    runner = IPv4Network(terraform()["variable"]["runner_vpc_cidr"]["default"])
    for env in ENVIRONMENTS:
        cluster = load_environment(env).network.vpc_cidr
        assert not runner.overlaps(cluster), f"runner VPC {runner} overlaps {env}'s {cluster}"


def test_prod_endpoint_stays_private_so_prod_is_deployed_only_through_its_runner() -> None:
    endpoint = load_environment("prod").cluster.endpoint
    assert endpoint.public is False and endpoint.public_access_cidrs == []


def test_runner_security_groups_admit_nothing_inbound() -> None:
    """The runner starts every connection; nothing may connect to it (it holds deploy credentials)."""
    for group in RESOURCES["aws_security_group"].values():
        assert "ingress" not in group
    assert "aws_vpc_security_group_ingress_rule" not in RESOURCES
    assert "aws_security_group_rule" not in RESOURCES
    (default,) = RESOURCES["aws_default_security_group"].values()
    assert "ingress" not in default and "egress" not in default


def test_runner_egress_is_https_only() -> None:
    rules = RESOURCES["aws_vpc_security_group_egress_rule"]
    assert set(rules) == {"runner_https"}
    rule = rules["runner_https"]
    assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 443, 443)
    assert rule["security_group_id"] == "${aws_security_group.runner[each.key].id}"


def test_each_environment_has_its_own_runner_group_so_one_cluster_admits_only_its_runner() -> None:
    group = RESOURCES["aws_security_group"]["runner"]
    project = RESOURCES["aws_codebuild_project"]["runner"]
    assert group["for_each"] == project["for_each"] == "${local.environments}"
    (vpc,) = project["vpc_config"]
    assert vpc["security_group_ids"] == ["${aws_security_group.runner[each.key].id}"]
    assert vpc["vpc_id"] == "${aws_vpc.runner.id}"


# --- Which route table each environment's runners use, and which one its stack routes back into ----------
# The only routes from the runner VPC to a cluster VPC are the ones each stack adds to
# `deploy_runners.<env>.private_route_table_id` (infra/aws/network.py, tests/infra/aws/test_runner_path.py).
# Read symbolically from the Terraform: runner subnets -> their association -> the table.


def _route_tables_of_runners(env: str) -> set[str]:
    """The route tables the subnets of `env`'s CodeBuild project are associated with."""
    (vpc,) = RESOURCES["aws_codebuild_project"]["runner"]["vpc_config"]
    subnets = RESOURCES["aws_subnet"]["runner_private"]
    association = RESOURCES["aws_route_table_association"]["runner_private"]
    # Every runner subnet has exactly one association, keyed like the subnet itself.
    assert association["for_each"] == subnets["for_each"]
    assert association["subnet_id"] in (
        "${aws_subnet.runner_private[each.key].id}",
        "${aws_subnet.runner_private[count.index].id}",
    )
    # A project started in only its own environment's subnets filters the subnet map on it; anything else
    # (e.g. `aws_subnet.runner_private[*].id`) puts every environment's subnets in every project.
    filtered = re.fullmatch(
        r"\$\{\[for (\w+), (\w+) in (local\.\w+) : aws_subnet\.runner_private\[\1\]\.id if \2\.environment == each\.key\]\}",
        vpc["subnets"],
    )
    runner_envs = {env} if filtered and f"${{{filtered[3]}}}" == subnets["for_each"] else set(ENVIRONMENTS)
    table = association["route_table_id"]
    return {table.replace("each.value.environment", e) for e in runner_envs}


def _route_table_a_stack_routes_back_into(env: str) -> str:
    output = terraform()["output"]["deploy_runners"]["value"]
    found = re.search(r"private_route_table_id = (aws_route_table\.runner_private(?:\[env\])?)\.id", output)
    assert found, output
    return "${" + found[1].replace("[env]", f"[{env}]") + ".id}"


@pytest.mark.parametrize("other", ["staging", "prod"])
def test_dev_runner_has_no_route_to_other_environments(other: str) -> None:
    """Dev's runner runs pull-request code (dev previews): sharing a route table with staging's or prod's
    runner gives it their route to the staging or prod VPC, reaching whatever there admits by address."""
    assert _route_table_a_stack_routes_back_into(other) not in _route_tables_of_runners("dev")
    assert _route_table_a_stack_routes_back_into("dev") in _route_tables_of_runners("dev")


def test_each_runner_route_table_and_subnet_is_tagged_with_its_environment() -> None:
    """The environment tag is what lets exactly one deploy role route back into a runner table
    (deploy_roles.tf ChangeEnvironmentNetwork) and keeps every other one out (DenyOtherEnvironments)."""
    table = RESOURCES["aws_route_table"]["runner_private"]
    subnet = RESOURCES["aws_subnet"]["runner_private"]
    assert table["for_each"] == "${local.environments}"
    assert table["tags"]["mlplat/environment"] == "${each.key}"
    assert subnet["tags"]["mlplat/environment"] == "${each.value.environment}"
    association = RESOURCES["aws_route_table_association"]["runner_private"]
    assert association["route_table_id"] == "${aws_route_table.runner_private[each.value.environment].id}"


def test_runner_subnets_route_out_through_nat_and_keep_routes_the_program_adds() -> None:
    """CodeBuild in a VPC gets no public IP (private subnets + NAT); inline routes in a Terraform
    route table would delete the peering routes the Pulumi program adds on the next apply."""
    private = RESOURCES["aws_route_table"]["runner_private"]
    assert "route" not in private
    egress = RESOURCES["aws_route"]["runner_private_egress"]
    assert egress["nat_gateway_id"] == "${aws_nat_gateway.runner.id}"
    assert egress["route_table_id"] == "${aws_route_table.runner_private[each.key].id}"
    assert egress["for_each"] == private["for_each"]
    assert RESOURCES["aws_subnet"]["runner_public"]["map_public_ip_on_launch"] is False
    outputs = terraform()["output"]["deploy_runners"]["value"]
    assert "private_route_table_id" in outputs and "security_group_id" in outputs


def test_runner_webhook_starts_runners_for_queued_jobs_of_the_delivery_workflows_only() -> None:
    webhook = RESOURCES["aws_codebuild_webhook"]["runner"]
    (group,) = webhook["filter_group"]
    filters = {f["type"]: f["pattern"] for f in group["filter"]}
    assert filters["EVENT"] == "WORKFLOW_JOB_QUEUED"
    assert render(filters["WORKFLOW_NAME"]) == terraform()["locals"]["runner_workflows"]
    assert re.fullmatch(terraform()["locals"]["runner_workflows"], "pr") is None


def test_runner_role_holds_no_platform_permission() -> None:
    """Code in a job can use the CodeBuild role: it may only run the build (ENIs, logs, the connection);
    platform access comes from the environment's deploy or preview role through GitHub OIDC."""
    allowed = re.compile(
        r"^(logs:(CreateLogStream|PutLogEvents)|ec2:(Describe\w+|\w*NetworkInterface\w*)|codeconnections:\w+)$"
    )
    for st in policy_statements("runner"):
        assert st["effect"] == "Allow"
        assert all(allowed.match(a) for a in st["actions"]), f"{st['sid']}: {st['actions']}"


def test_runner_role_is_assumable_only_by_its_own_codebuild_project() -> None:
    (trust,) = policy_statements("runner_trust")
    (principal,) = trust["principals"]
    assert (principal["type"], principal["identifiers"]) == ("Service", ["codebuild.amazonaws.com"])
    (source,) = trust["condition"]
    assert source["variable"] == "aws:SourceArn"
    # The project's own name, the same one the runner project is created with.
    assert source["values"][0].endswith(":project/${local.runner_name[each.key]}")
    assert RESOURCES["aws_codebuild_project"]["runner"]["name"] == "${local.runner_name[each.key]}"


def test_deploy_roles_cannot_reshape_the_runner_network() -> None:
    """deploy_platform grants ec2:* in the region; the deny keeps a stack from opening runner groups or
    removing runner egress. It keys on the tag the provider puts on every bootstrap resource."""
    deny = statement("deploy_keeps_runners", "NoChangesToRunnerNetwork")
    assert deny["effect"] == "Deny"
    assert {"ec2:RevokeSecurityGroupEgress", "ec2:DeleteVpc", "ec2:DeleteTags", "ec2:CreateTags"} <= set(
        deny["actions"]
    )
    # What the program does must stay possible: peering, its routes, and the cluster group's ingress
    # rule that references the runner group.
    allowed = {
        "ec2:CreateRoute",
        "ec2:DeleteRoute",
        "ec2:CreateVpcPeeringConnection",
        "ec2:AcceptVpcPeeringConnection",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:ModifySecurityGroupRules",
    }
    assert not allowed & set(deny["actions"])
    (condition,) = deny["condition"]
    default_tags = terraform()["provider"][0]["aws"]["default_tags"][0]["tags"]
    tag = condition["variable"].removeprefix("aws:ResourceTag/")
    assert f'"{tag}" = "{condition["values"][0]}"' in default_tags
    assert "deploy_keeps_runners" in inline_documents("deploy")


def test_deploy_role_may_read_the_vcpu_quotas_preflight_checks() -> None:
    """Without it every deploy's preflight fails its quota checks with AccessDenied."""
    (read,) = policy_statements("deploy_preflight")
    assert read["actions"] == ["servicequotas:GetServiceQuota"]
    assert render(read["resources"][0]).endswith(":ec2/*")
    assert "deploy_preflight" in inline_documents("deploy")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_cluster_routes_back_only_to_its_own_runners(env: str) -> None:
    # The bootstrap gives each environment its share of the runner VPC (runners.tf
    # `runner_environment_cidr`, numbered by contract.tf.json `runner_shares`); a stack routing back to
    # the whole VPC would reach every runner.
    share = runner_layout()["environments"][env]
    assert load_environment(env).cluster.endpoint.runner.vpc_cidr == share, env
