"""`mlplat preflight` against a stubbed AWS account (botocore's Stubber: real clients, real request and
response validation, no network). Each check has a passing account and the failing account it exists
to catch; the command's exit codes are 0 (all pass), 1 (a check failed), 2 (credentials or input)."""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Callable, Iterator
from ipaddress import IPv4Network
from typing import Any

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber

from infra import versions
from infra.config import ENVIRONMENTS, ConfigError, GpuConfig, GpuPoolConfig, StackConfig, load_environment
from infra.contract import ENVIRONMENT_LABEL
from mlplat import preflight
from mlplat.cli import main
from tests.support import iam_eval
from tests.support.clock import either_side_of_utc_midnight, stopped_clock

ACCOUNT = "111111111111"
REGION = "eu-west-1"
K8S = "1.34"
BUCKET = "mlplat-pulumi-state-111111111111-eu-west-1"
BACKEND_URL = f"s3://{BUCKET}?region={REGION}&awssdk=v2"
SECRETS_URL = f"awskms://alias/mlplat-pulumi-dev?region={REGION}"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlplat-github-deploy-dev"
VCPUS = {
    "g5.xlarge": 4,
    "g6.xlarge": 4,
    "g5.12xlarge": 48,
    "p4d.24xlarge": 96,
    "m6i.large": 2,
    "g5g.xlarge": 4,
    "m6i.xlarge": 4,
    "m6i.2xlarge": 8,
}
ARCH = {"g5g.xlarge": "arm64"}
QUOTA_NAMES = {
    "L-DB2E81BA": "Running On-Demand G and VT instances",
    "L-3819A6DF": "All G and VT Spot Instance Requests",
    "L-417A185B": "Running On-Demand P instances",
    "L-7212CCBC": "All P Spot Instance Requests",
    "L-1216C47A": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
    "L-34B43A08": "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
}
NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
# dev's runner (environments/Pulumi.dev.yaml) and the runner VPC's block that holds its range.
RUNNER = load_environment("dev").cluster.endpoint.runner
assert RUNNER is not None
# The bootstrap's runner_vpc_cidr is any /24 or larger that holds every environment's share.
RUNNER_VPC_BLOCK = str(RUNNER.vpc_cidr.supernet(new_prefix=24))


def pool(name: str, types: list[str], capacity: str, max_size: int) -> GpuPoolConfig:
    return GpuPoolConfig(
        name=name,
        instance_types=types,
        capacity_type=capacity,  # type: ignore[arg-type]
        min_size=0,
        max_size=max_size,
        gpus_per_node=1,
        gpu_memory_gib=24,
    )


# Spot G: 2 x 4 + 1 x 48 = 56 vCPUs; on-demand P: 96; system pool (on-demand Standard): 4 x 2 = 8;
# CPU model pool (spot Standard): its NodePool limit, 16.
POOLS = [
    pool("small", ["g5.xlarge", "g6.xlarge"], "spot", 2),
    pool("multi", ["g5.12xlarge"], "spot", 1),
    pool("train", ["p4d.24xlarge"], "on-demand", 1),
]


def stack(
    pools: list[GpuPoolConfig] = POOLS, admins: list[str] | None = None, cpu_capacity: str = "spot"
) -> StackConfig:
    """dev's stack file with the account, version, pools, system pool and CPU model pool these tests
    reason about."""
    dev = load_environment("dev")
    cluster = dev.cluster.model_copy(
        update={
            "kubernetes_version": K8S,
            "admin_role_arns": admins or [f"arn:aws:iam::{ACCOUNT}:role/mlplat-platform-admin", DEPLOY_ROLE],
        }
    )
    system = dev.system_pool.model_copy(update={"instance_types": ["m6i.large"], "max_size": 4})
    cpu = dev.cpu_pool.model_copy(
        update={
            "instance_types": ["m6i.xlarge", "m6i.2xlarge"],
            "capacity_type": cpu_capacity,
            "max_vcpus": 16,
        }
    )
    gpu = GpuConfig.model_construct(max_total_gpus=99, pools=pools)
    aws = dev.aws.model_copy(update={"region": REGION})
    return dev.model_copy(
        update={"cluster": cluster, "system_pool": system, "cpu_pool": cpu, "gpu": gpu, "aws": aws}
    )


class Account:
    """Real boto3 clients with a Stubber each; the factory `run_checks` takes."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.stubs: dict[str, Stubber] = {}

    def __call__(self, service: str) -> Any:
        return self.client(service)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            client = boto3.client(
                service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
            )
            self.clients[service], self.stubs[service] = client, Stubber(client)
            self.stubs[service].activate()
        return self.clients[service]

    def add(
        self, service: str, method: str, response: dict[str, Any], params: dict[str, Any] | None = None
    ) -> None:
        self.client(service)
        self.stubs[service].add_response(method, response, params)

    def fail(self, service: str, method: str, code: str, message: str = "", status: int = 400) -> None:
        self.client(service)
        self.stubs[service].add_client_error(method, code, message, http_status_code=status)

    def done(self) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()

    # --- passing answers, one per call, in the order run_checks asks ---------------------------------

    def caller(
        self, arn: str = f"arn:aws:sts::{ACCOUNT}:assumed-role/mlplat-github-deploy-dev/deploy-dev-1"
    ) -> None:
        self.add(
            "sts",
            "get_caller_identity",
            {"Account": arn.split(":")[4], "Arn": arn, "UserId": "AROAEXAMPLE:s"},
        )

    def objects(self, count: int = 1) -> None:
        self.add("s3", "list_objects_v2", {"KeyCount": count, "IsTruncated": False})

    def key(self, state: str = "Enabled") -> None:
        meta = {"KeyId": "k-1", "Arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1", "KeyState": state}
        self.add("kms", "describe_key", {"KeyMetadata": meta}, {"KeyId": "alias/mlplat-pulumi-dev"})

    def role(self, name: str, path: str = "/") -> None:
        role = {"Path": path, "RoleName": name, "RoleId": "AROAEXAMPLE0000000000", "CreateDate": NOW}
        role["Arn"] = f"arn:aws:iam::{ACCOUNT}:role{path}{name}"
        self.add("iam", "get_role", {"Role": role}, {"RoleName": name})

    def roles(self, *names: str) -> None:
        """ListRoles answering with these bootstrap roles (default: dev's deploy and preview) and another."""
        names = names or ("mlplat-github-deploy-dev", "mlplat-github-preview-dev")
        roles = [
            {
                "Path": "/",
                "RoleName": name,
                "RoleId": "AROAEXAMPLE0000000000",
                "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
                "CreateDate": NOW,
            }
            for name in ("someone-else", *names)
        ]
        self.add("iam", "list_roles", {"Roles": roles, "IsTruncated": False}, {})

    def boundary(self, name: str = "mlplat-boundary-dev") -> None:
        policies = [{"PolicyName": n, "Arn": f"arn:aws:iam::{ACCOUNT}:policy/{n}"} for n in ("other", name)]
        self.add("iam", "list_policies", {"Policies": policies, "IsTruncated": False}, {"Scope": "Local"})

    def bootstrap(self) -> None:
        self.objects()
        self.objects()
        self.key()
        self.roles()
        self.boundary()

    def runner_vpc(self, *blocks: str) -> None:
        """DescribeVpcs by filter: the runner VPC with these blocks, or nothing when none are given."""
        associations = [
            {
                "AssociationId": f"vpc-cidr-assoc-{i}",
                "CidrBlock": b,
                "CidrBlockState": {"State": "associated"},
            }
            for i, b in enumerate(blocks)
        ]
        vpcs = [
            {"VpcId": RUNNER.vpc_id, "CidrBlock": b, "CidrBlockAssociationSet": associations}
            for b in blocks[:1]
        ]
        filters = [{"Name": "vpc-id", "Values": [RUNNER.vpc_id]}]
        self.add("ec2", "describe_vpcs", {"Vpcs": vpcs}, {"Filters": filters})

    def runner_group(self, vpc_id: str | None = RUNNER.vpc_id, environment: str = "dev") -> None:
        group = {
            "GroupId": RUNNER.security_group_id,
            "GroupName": "runners",
            "VpcId": vpc_id,
            "Tags": [{"Key": ENVIRONMENT_LABEL, "Value": environment}],
        }
        filters = [{"Name": "group-id", "Values": [RUNNER.security_group_id]}]
        found = [group] if vpc_id else []
        self.add("ec2", "describe_security_groups", {"SecurityGroups": found}, {"Filters": filters})

    def runner_route_table(self, vpc_id: str | None = RUNNER.vpc_id, environment: str = "dev") -> None:
        table = {
            "RouteTableId": RUNNER.private_route_table_id,
            "VpcId": vpc_id,
            "Tags": [{"Key": ENVIRONMENT_LABEL, "Value": environment}],
        }
        filters = [{"Name": "route-table-id", "Values": [RUNNER.private_route_table_id]}]
        found = [table] if vpc_id else []
        self.add("ec2", "describe_route_tables", {"RouteTables": found}, {"Filters": filters})

    def runner(self) -> None:
        self.runner_vpc(RUNNER_VPC_BLOCK)
        self.runner_group()
        self.runner_route_table()

    def spot_role(self) -> None:
        self.role(preflight.SPOT_ROLE, "/aws-service-role/spot.amazonaws.com/")

    def addons(self, missing: str | None = None) -> None:
        for addon, version in sorted(versions.EKS_ADDONS[K8S].items()):
            offered = ["v0.0.1-eksbuild.1"] + ([] if addon == missing else [version])
            entry = {"addonName": addon, "addonVersions": [{"addonVersion": v} for v in offered]}
            self.add(
                "eks",
                "describe_addon_versions",
                {"addons": [entry]},
                {"addonName": addon, "kubernetesVersion": K8S},
            )

    def instance_types(self, names: list[str]) -> None:
        types = [
            {
                "InstanceType": name,
                "VCpuInfo": {"DefaultVCpus": VCPUS[name]},
                "ProcessorInfo": {"SupportedArchitectures": [ARCH.get(name, "x86_64")]},
            }
            for name in names
        ]
        self.add("ec2", "describe_instance_types", {"InstanceTypes": types}, {"InstanceTypes": sorted(names)})

    def ami(self, arch: str = "x86_64") -> None:
        name = ami_parameter(arch)
        self.add(
            "ssm",
            "get_parameter",
            {"Parameter": {"Name": name, "Value": "ami-0123456789abcdef0"}},
            {"Name": name},
        )

    def quota(self, code: str, value: float, name: str | None = None) -> None:
        quota = {
            "QuotaCode": code,
            "QuotaName": name or QUOTA_NAMES[code],
            "Value": value,
            "ServiceCode": "ec2",
        }
        self.add(
            "service-quotas", "get_service_quota", {"Quota": quota}, {"ServiceCode": "ec2", "QuotaCode": code}
        )


def ami_parameter(arch: str) -> str:
    release = versions.KARPENTER_GPU_AMI_ALIAS.split("@")[1]
    return f"/aws/service/eks/optimized-ami/{K8S}/amazon-linux-2023/{arch}/nvidia/amazon-eks-node-al2023-{arch}-nvidia-{K8S}-{release}/image_id"


def types_of(config: StackConfig) -> dict[str, dict[str, Any]]:
    names = {t for p in preflight.pools(config) for t in p.instance_types}
    return {n: {"vcpus": VCPUS[n], "architectures": [ARCH.get(n, "x86_64")]} for n in names}


BOOTSTRAP = preflight.Bootstrap.from_urls(BACKEND_URL, SECRETS_URL, "mlplat")


@pytest.fixture
def account() -> Iterator[Account]:
    fake = Account()
    yield fake
    fake.done()


def failed(results: list[preflight.Result]) -> dict[str, str]:
    return {r.check: r.detail for r in results if not r.ok}


# --- caller --------------------------------------------------------------------------------------------


def test_caller_in_the_stack_account_and_a_cluster_admin_passes(account: Account) -> None:
    account.caller()
    assert failed(preflight.check_caller(stack(), account)) == {}


def test_caller_in_another_account_fails(account: Account) -> None:
    account.caller("arn:aws:sts::999999999999:assumed-role/mlplat-github-deploy-dev/s")
    problems = failed(preflight.check_caller(stack(), account))
    assert "the stack expects 111111111111" in problems["caller account"]


def test_caller_that_the_cluster_would_refuse_fails_before_pulumi_up(account: Account) -> None:
    account.caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/someone-else/s")
    problems = failed(preflight.check_caller(stack(), account))
    assert set(problems) == {"caller is a cluster admin"}
    assert "someone-else is not in mlplat:cluster.admin_role_arns" in problems["caller is a cluster admin"]


def test_admin_roles_of_two_accounts_are_a_config_error() -> None:
    admins = [DEPLOY_ROLE, "arn:aws:iam::222222222222:role/admin"]
    with pytest.raises(ConfigError, match="exactly one account"):
        preflight.expected_account(stack(admins=admins))


# --- bootstrap outputs ---------------------------------------------------------------------------------


def test_bootstrap_outputs_present_pass_with_calls_the_deploy_role_may_make(account: Account) -> None:
    """deploy_roles.tf denies the deploy roles every iam:* call on `mlplat-github-*` roles and
    `mlplat-boundary-*` policies: GetRole/GetPolicy would fail in CI, so the stub answers List calls only."""
    account.bootstrap()
    assert failed(preflight.check_bootstrap(stack(), BOOTSTRAP, account)) == {}


def test_uninitialised_state_backend_fails(account: Account) -> None:
    account.objects(0)
    account.objects(0)
    account.key()
    account.roles()
    account.boundary()
    problems = failed(preflight.check_bootstrap(stack(), BOOTSTRAP, account))
    assert "not initialised (run `pulumi login` once)" in problems["state backend"]
    assert "run `pulumi stack init dev` once" in problems["stack dev"]


def test_missing_state_bucket_fails(account: Account) -> None:
    account.fail("s3", "list_objects_v2", "NoSuchBucket", "The specified bucket does not exist", 404)
    account.fail("s3", "list_objects_v2", "NoSuchBucket", "The specified bucket does not exist", 404)
    account.key()
    account.roles()
    account.boundary()
    problems = failed(preflight.check_bootstrap(stack(), BOOTSTRAP, account))
    assert problems["state backend"].startswith("NoSuchBucket")


def test_disabled_secrets_provider_key_fails(account: Account) -> None:
    account.objects()
    account.objects()
    account.key("PendingDeletion")
    account.roles()
    account.boundary()
    problems = failed(preflight.check_bootstrap(stack(), BOOTSTRAP, account))
    assert set(problems) == {"secrets provider key"}
    assert "is PendingDeletion" in problems["secrets provider key"]


def test_missing_preview_role_and_boundary_fail(account: Account) -> None:
    account.objects()
    account.objects()
    account.key()
    account.roles("mlplat-github-deploy-dev")
    account.boundary("mlplat-boundary-staging")
    problems = failed(preflight.check_bootstrap(stack(), BOOTSTRAP, account))
    assert problems == {
        "role mlplat-github-preview-dev": "missing",
        "permissions boundary": "mlplat-boundary-dev is missing",
    }


# --- the in-VPC runner --------------------------------------------------------------------------------


def test_runner_the_bootstrap_made_passes(account: Account) -> None:
    account.runner()
    results = preflight.check_runner(stack(), account)
    assert failed(results) == {}
    assert [r.check for r in results] == [
        "runner vpc",
        "runner range",
        "runner security group",
        "runner route table",
    ]


def test_placeholder_runner_fails_before_pulumi_up(account: Account) -> None:
    """The committed stack files name vpc-00000000000000000: without preflight only the peering in
    `pulumi up` found it, after the cluster VPC was created."""
    account.runner_vpc()
    account.runner_group(vpc_id=None)
    account.runner_route_table(vpc_id=None)
    problems = failed(preflight.check_runner(stack(), account))
    assert problems == {
        "runner vpc": f"mlplat:cluster.endpoint.runner.vpc_id: {RUNNER.vpc_id} is not a VPC of this account "
        f"in {REGION}; set it from `terraform output -json deploy_runners` (docs/adr/0003)",
        "runner security group": f"mlplat:cluster.endpoint.runner.security_group_id: {RUNNER.security_group_id} "
        f"does not exist in {REGION}; set it from `terraform output -json deploy_runners` (docs/adr/0003)",
        "runner route table": f"mlplat:cluster.endpoint.runner.private_route_table_id: "
        f"{RUNNER.private_route_table_id} does not exist in {REGION}; set it from "
        "`terraform output -json deploy_runners` (docs/adr/0003)",
    }


def test_runner_group_and_route_table_of_another_vpc_fail(account: Account) -> None:
    """A group of another VPC admits no runner; a route table of another VPC routes none back."""
    account.runner_vpc(RUNNER_VPC_BLOCK)
    account.runner_group(vpc_id="vpc-0123456789abcdef0")
    account.runner_route_table(vpc_id="vpc-0123456789abcdef0")
    problems = failed(preflight.check_runner(stack(), account))
    assert set(problems) == {"runner security group", "runner route table"}
    assert (
        f"is in vpc-0123456789abcdef0, not the runner VPC {RUNNER.vpc_id}" in problems["runner route table"]
    )


def test_runner_group_and_route_table_of_another_environment_fail(account: Account) -> None:
    """One account, three environments, one runner VPC: staging's group and route table lie beside dev's.
    Dev's route table is refused only inside `pulumi up`; dev's group would admit dev's runner, which
    runs pull-request previews, to this cluster."""
    account.runner_vpc(RUNNER_VPC_BLOCK)
    account.runner_group(environment="staging")
    account.runner_route_table(environment="staging")
    problems = failed(preflight.check_runner(stack(), account))
    assert set(problems) == {"runner security group", "runner route table"}
    assert f"has {ENVIRONMENT_LABEL}=staging, not dev's runner" in problems["runner security group"]


def test_runner_range_outside_the_runner_vpc_fails(account: Account) -> None:
    """The cluster would route back to a range no runner is in."""
    block = IPv4Network(RUNNER_VPC_BLOCK)
    outside = next(n for n in block.supernet(new_prefix=23).subnets(new_prefix=24) if n != block)
    account.runner_vpc(str(outside))
    account.runner_group()
    account.runner_route_table()
    problems = failed(preflight.check_runner(stack(), account))
    assert set(problems) == {"runner range"}
    assert f"{RUNNER.vpc_cidr} is outside {RUNNER.vpc_id} ({outside})" in problems["runner range"]


def test_runner_vpc_overlapping_the_cluster_vpc_fails(account: Account) -> None:
    """The stack's share does not overlap the cluster VPC (config), but the runner VPC's second block does."""
    config = stack()
    account.runner_vpc(RUNNER_VPC_BLOCK, str(config.network.vpc_cidr))
    account.runner_group()
    account.runner_route_table()
    problems = failed(preflight.check_runner(config, account))
    assert set(problems) == {"runner vpc"}
    assert "AWS refuses to peer the two" in problems["runner vpc"]


def test_public_endpoint_has_no_runner_to_check(account: Account) -> None:
    config = stack()
    endpoint = config.cluster.endpoint.model_copy(
        update={"public": True, "runner": None, "public_access_cidrs": [IPv4Network("8.8.8.0/24")]}
    )
    public = config.model_copy(update={"cluster": config.cluster.model_copy(update={"endpoint": endpoint})})
    assert failed(preflight.check_runner(public, account)) == {}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_ec2_read_of_a_preflight_run_is_granted_to_the_deploy_role(account: Account, env: str) -> None:
    """deploy.yml runs preflight with the deploy role: an EC2 read it lacks fails its check on every
    deploy. EC2's Describe calls accept only resource "*"."""
    calls: set[str] = set()
    account.client("ec2").meta.events.register(
        "before-parameter-build.ec2", lambda model, **_: calls.add(f"ec2:{model.name}")
    )
    full_account(account)
    preflight.run_checks(stack(), BOOTSTRAP, account, NOW.date())
    deploy = iam_eval.role_policy("deploy", env)
    context = iam_eval.request(aws__RequestedRegion=REGION)
    assert {"ec2:DescribeVpcs", "ec2:DescribeSecurityGroups", "ec2:DescribeRouteTables"} <= calls
    assert [a for a in sorted(calls) if not iam_eval.decide(deploy, a, "*", context)[0]] == []


# --- Spot service-linked role --------------------------------------------------------------------------


def test_spot_service_linked_role_present_passes(account: Account) -> None:
    account.spot_role()
    assert failed(preflight.check_spot_role(stack(), account)) == {}


def test_account_that_never_used_spot_fails(account: Account) -> None:
    """IAM answers NoSuchEntity for a role that does not exist: that is this check's failure, and every
    other check still runs."""

    def never_used_spot(account: Account) -> None:
        message = f"The role with name {preflight.SPOT_ROLE} cannot be found."
        account.fail("iam", "get_role", "NoSuchEntity", message, 404)

    full_account(account, spot_role=never_used_spot)
    problems = failed(preflight.run_checks(stack(), BOOTSTRAP, account, NOW.date()))
    assert list(problems) == ["spot service-linked role"], problems
    assert problems["spot service-linked role"].startswith("NoSuchEntity"), problems


ON_DEMAND_GPU = [pool("train", ["p4d.24xlarge"], "on-demand", 1)]


def test_stack_without_spot_pools_does_not_need_the_role(account: Account) -> None:
    config = stack(ON_DEMAND_GPU, cpu_capacity="on-demand")
    assert failed(preflight.check_spot_role(config, account)) == {}


def test_spot_cpu_pool_needs_the_spot_role_though_every_gpu_pool_is_on_demand(account: Account) -> None:
    """On-demand GPU pools beside a spot CPU model pool, whose first launch needs the role: IAM is asked."""
    account.spot_role()
    (result,) = preflight.check_spot_role(stack(ON_DEMAND_GPU), account)
    assert result.ok and result.detail.endswith(f"/{preflight.SPOT_ROLE} exists"), result


# --- add-on versions -----------------------------------------------------------------------------------


def test_pinned_addon_versions_offered_pass(account: Account) -> None:
    account.addons()
    assert failed(preflight.check_addons(stack(), account)) == {}


def test_addon_pin_not_offered_for_the_kubernetes_version_fails(account: Account) -> None:
    account.addons(missing="coredns")
    problems = failed(preflight.check_addons(stack(), account))
    (check,) = problems
    assert check.startswith("add-on coredns ") and "not offered for Kubernetes 1.34" in problems[check]


# --- GPU AMI alias -------------------------------------------------------------------------------------


def test_gpu_ami_alias_resolving_passes(account: Account) -> None:
    account.ami("x86_64")
    config = stack()
    assert failed(preflight.check_gpu_ami(config, types_of(config), account)) == {}


def test_gpu_ami_alias_missing_for_the_kubernetes_version_fails(account: Account) -> None:
    account.fail("ssm", "get_parameter", "ParameterNotFound", "", 400)
    config = stack()
    problems = failed(preflight.check_gpu_ami(config, types_of(config), account))
    (detail,) = problems.values()
    assert ami_parameter("x86_64") in detail and "no GPU AMI" in detail


# --- quotas --------------------------------------------------------------------------------------------


def quotas_ok(account: Account, spot_g: float = 56, spot_standard: float = 16) -> None:
    # Sorted by (group, capacity): G and VT spot, then the rest (quotas_after_gpu_spot).
    account.quota("L-3819A6DF", spot_g)
    quotas_after_gpu_spot(account, spot_standard)


def quotas_after_gpu_spot(account: Account, spot_standard: float = 16) -> None:
    """The quotas a stack() run asks after G and VT spot, each enough: P on-demand, Standard on-demand,
    Standard spot."""
    account.quota("L-417A185B", 96)
    account.quota("L-1216C47A", 8)
    account.quota("L-34B43A08", spot_standard)


def test_quotas_holding_every_pool_at_its_maximum_pass(account: Account) -> None:
    quotas_ok(account)
    config = stack()
    assert failed(preflight.check_quotas(config, types_of(config), account)) == {}


def test_spot_cpu_pool_beyond_the_standard_spot_quota_fails(account: Account) -> None:
    """The CPU model pool at its NodePool limit (16 vCPUs of spot m6i) against a Standard Spot quota of 5,
    AWS's default (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html)."""
    quotas_ok(account, spot_standard=5)
    config = stack()
    problems = failed(preflight.check_quotas(config, types_of(config), account))
    assert problems == {
        "quota Standard spot": "L-34B43A08 'All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests': "
        "5 vCPUs, pools need 16"
    }


def test_on_demand_cpu_pool_adds_its_limit_to_the_standard_on_demand_quota(account: Account) -> None:
    """System pool 4 x 2 vCPUs plus the CPU model pool's 16: a quota that holds the system pool alone fails."""
    account.quota("L-3819A6DF", 56)
    account.quota("L-417A185B", 96)
    account.quota("L-1216C47A", 8)
    config = stack(cpu_capacity="on-demand")
    problems = failed(preflight.check_quotas(config, types_of(config), account))
    assert problems == {
        "quota Standard on-demand": "L-1216C47A 'Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) "
        "instances': 8 vCPUs, pools need 24"
    }


def test_gpu_quota_below_the_pools_maximum_fails(account: Account) -> None:
    quotas_ok(account, spot_g=32)
    config = stack()
    problems = failed(preflight.check_quotas(config, types_of(config), account))
    assert problems == {
        "quota G and VT spot": "L-3819A6DF 'All G and VT Spot Instance Requests': 32 vCPUs, pools need 56"
    }


def test_quota_code_that_names_another_quota_in_the_account_fails(account: Account) -> None:
    account.quota("L-3819A6DF", 500, name="All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests")
    quotas_after_gpu_spot(account)
    config = stack()
    problems = failed(preflight.check_quotas(config, types_of(config), account))
    assert "not a quota G and VT spot quota" in problems["quota G and VT spot"]


def test_instance_family_without_a_known_quota_fails(account: Account) -> None:
    # GPU pools only admit NVIDIA families (config), but the system pool takes any instance type.
    base = stack([])
    config = base.model_copy(
        update={"system_pool": base.system_pool.model_copy(update={"instance_types": ["inf2.xlarge"]})}
    )
    account.quota("L-34B43A08", 16)
    types = types_of(base) | {"inf2.xlarge": {"vcpus": 4, "architectures": ["x86_64"]}}
    problems = failed(preflight.check_quotas(config, types, account))
    assert problems == {"quota": "no quota check for instance type inf2.xlarge (on-demand)"}


def test_p5_spot_pool_has_no_check_rather_than_the_p4_quotas(account: Account) -> None:
    config = stack([pool("h100", ["p5.48xlarge"], "spot", 1)])
    account.quota("L-1216C47A", 8)
    account.quota("L-34B43A08", 16)
    types = types_of(stack()) | {"p5.48xlarge": {"vcpus": 192, "architectures": ["x86_64"]}}
    problems = failed(preflight.check_quotas(config, types, account))
    assert problems == {"quota": "no quota check for instance type p5.48xlarge (spot)"}


@pytest.mark.parametrize(
    ("instance_type", "group"),
    [
        ("g5.xlarge", "G and VT"),
        ("g5g.xlarge", "G and VT"),
        ("vt1.3xlarge", "G and VT"),
        ("p4d.24xlarge", "P"),
        ("p5.48xlarge", "P5+"),
        ("m6i.large", "Standard"),
        ("inf2.xlarge", None),
        ("trn1.2xlarge", None),
    ],
)
def test_instance_types_map_to_their_quota_group(instance_type: str, group: str | None) -> None:
    assert preflight.family_group(instance_type) == group


def test_access_denied_is_a_failed_check_that_says_a_permission_is_missing(account: Account) -> None:
    account.fail("service-quotas", "get_service_quota", "AccessDeniedException", "not authorized", 400)
    quotas_after_gpu_spot(account)
    config = stack()
    problems = failed(preflight.check_quotas(config, types_of(config), account))
    assert "the caller lacks this read permission" in problems["quota G and VT spot"]


# --- the command ---------------------------------------------------------------------------------------


def full_account(
    account: Account, spot_g: float = 56, spot_role: Callable[[Account], None] = Account.spot_role
) -> None:
    account.caller()
    account.bootstrap()
    account.runner()
    spot_role(account)
    account.addons()
    account.instance_types(
        ["g5.12xlarge", "g5.xlarge", "g6.xlarge", "m6i.2xlarge", "m6i.large", "m6i.xlarge", "p4d.24xlarge"]
    )
    account.ami("x86_64")
    quotas_ok(account, spot_g)


def args(**overrides: Any) -> argparse.Namespace:
    values = {
        "env": "dev",
        "backend_url": BACKEND_URL,
        "secrets_provider": SECRETS_URL,
        "name_prefix": "mlplat",
    }
    return argparse.Namespace(**(values | overrides))


@pytest.fixture
def dev_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "load_environment", lambda env: stack())


def test_every_check_passing_exits_0(account: Account, dev_stack: None, capsys: Any) -> None:
    full_account(account)
    assert preflight.run(args(), clients=lambda region: account, today=NOW.date) == 0
    out = capsys.readouterr().out
    assert out.startswith("mlplat preflight dev (eu-west-1)\n") and "FAIL" not in out
    assert out.rstrip().endswith("checks passed")


def test_one_failed_check_exits_1_and_the_report_names_it(
    account: Account, dev_stack: None, capsys: Any
) -> None:
    full_account(account, spot_g=0)
    assert preflight.run(args(), clients=lambda region: account, today=NOW.date) == 1
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if "FAIL" in x]
    assert "quota G and VT spot" in line and "0 vCPUs, pools need 56" in line
    assert out.rstrip().endswith("1 of 24 checks failed")


def test_unknown_instance_type_fails_and_skips_what_needs_it(
    account: Account, dev_stack: None, capsys: Any
) -> None:
    account.caller()
    account.bootstrap()
    account.runner()
    account.spot_role()
    account.addons()
    account.fail(
        "ec2",
        "describe_instance_types",
        "InvalidInstanceType",
        "The following supplied instance types do not exist: [g5.xlarge]",
    )
    assert preflight.run(args(), clients=lambda region: account, today=NOW.date) == 1
    out = capsys.readouterr().out
    assert "FAIL  instance types" in out and "InvalidInstanceType" in out and "quota" not in out


# --- the EKS support calendar (no account needed) -------------------------------------------------------


def test_kubernetes_version_in_standard_support_passes_quietly() -> None:
    result = preflight.check_kubernetes_support(stack(), NOW.date())
    assert result.ok and not result.warning, result


def test_kubernetes_version_in_extended_support_warns_and_passes(
    account: Account, dev_stack: None, capsys: Any
) -> None:
    """Six times the control plane's price: said on every deploy, without stopping the deploy."""
    first_extended_day = versions.EKS_SUPPORT_CALENDAR[K8S].standard_ends
    full_account(account)
    assert preflight.run(args(), clients=lambda region: account, today=lambda: first_extended_day) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if "WARN" in x]
    assert f"kubernetes {K8S} support" in line and "EXTENDED support since 2026-12-02" in line, line
    assert out.rstrip().endswith("all 24 checks passed, 1 with a warning")


def test_kubernetes_version_past_extended_support_fails() -> None:
    """AWS upgrades such a cluster itself, away from the version its add-on pins were chosen for."""
    ended = versions.EKS_SUPPORT_CALENDAR[K8S].extended_ends
    result = preflight.check_kubernetes_support(stack(), ended)
    assert not result.ok and "extended support ended 2027-12-02" in result.detail, result


class NoCredentials:
    def __call__(self, service: str) -> Any:
        return self

    def get_caller_identity(self) -> Any:
        raise NoCredentialsError()


def test_missing_credentials_exit_2_without_a_traceback(dev_stack: None, capsys: Any) -> None:
    assert preflight.run(args(), clients=lambda region: NoCredentials()) == 2
    err = capsys.readouterr().err
    assert "no usable AWS credentials" in err and "Traceback" not in err


def test_unknown_aws_profile_exits_2_without_a_traceback(
    dev_stack: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: Any
) -> None:
    """The real client factory: boto3 raises ProfileNotFound when the session is made."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    assert preflight.run(args()) == 2
    err = capsys.readouterr().err
    assert "no usable AWS credentials" in err and "no-such-profile" in err


def test_expired_credentials_exit_2(account: Account, dev_stack: None, capsys: Any) -> None:
    account.fail(
        "sts",
        "get_caller_identity",
        "ExpiredToken",
        "The security token included in the request is expired",
        403,
    )
    assert preflight.run(args(), clients=lambda region: account) == 2
    assert "ExpiredToken" in capsys.readouterr().err


def test_missing_bootstrap_urls_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    monkeypatch.delenv("PULUMI_SECRETS_PROVIDER", raising=False)
    assert main(["preflight", "--env", "dev"]) == 2
    assert "--backend-url and --secrets-provider not given" in capsys.readouterr().err


def test_backend_url_of_another_kind_exits_2(capsys: Any) -> None:
    code = main(
        ["preflight", "--env", "dev", "--backend-url", "gs://bucket", "--secrets-provider", SECRETS_URL]
    )
    assert code == 2
    assert "PULUMI_BACKEND_URL: 'gs://bucket' is not an s3://<bucket> URL" in capsys.readouterr().err


def test_bad_stack_config_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    def broken(env: str) -> StackConfig:
        raise ConfigError("environments/Pulumi.dev.yaml", [("mlplat:gpu.pools", "unknown key")])

    monkeypatch.setattr(preflight, "load_environment", broken)
    assert preflight.run(args(), clients=lambda region: Account()) == 2
    assert "mlplat:gpu.pools: unknown key" in capsys.readouterr().err


@pytest.mark.parametrize("minute", [0, 1], ids=["before-utc-midnight", "after-utc-midnight"])
def test_preflight_reads_the_support_calendar_on_the_utc_day(
    account: Account, dev_stack: None, capsys: Any, monkeypatch: pytest.MonkeyPatch, minute: int
) -> None:
    """Preflight read the local day: ahead of UTC it warned of extended support a day early."""
    instant = either_side_of_utc_midnight(versions.EKS_SUPPORT_CALENDAR[K8S].standard_ends)[minute]
    full_account(account)
    with stopped_clock(monkeypatch, instant):
        assert preflight.run(args(), clients=lambda region: account) == 0
    warned = "EXTENDED support since" in capsys.readouterr().out
    assert warned == (minute == 1), instant
