"""`mlplat preflight --env ENV`: read-only questions only the live AWS account can answer, asked before
`pulumi up` (by a person on a first bring-up, and by deploy.yml on every deploy).

The offline plan proves what the program declares; it cannot prove that the account will accept it.
Each check here is a first `pulumi up` failure seen from the account's side: the AMI alias Karpenter
resolves does not exist for the Kubernetes version, an add-on pin is not offered, the vCPU quotas cannot
hold the pools (GPU, system, CPU model) at their maxima, Spot was never used in the account (no
service-linked role), the bootstrap's bucket, stack, key or roles are missing, the runner the stack
names (its VPC, security group, route table) is not there, or the caller is in the wrong account or is
not a cluster admin (the Kubernetes provider would get 401 after the AWS half was created).

One check needs no account: the EKS support window of the stack's Kubernetes version today
(infra/versions.py `EKS_SUPPORT_CALENDAR`). In extended support it warns and passes: the cluster still
runs and gets patches, only its control plane costs six times as much (infra/cost_prices.yaml), and
failing would stop every deploy, fixes included, until a newer version's add-on pins are checked against
the EKS API. Past extended support it fails: AWS then upgrades the control plane itself, to a version the
stack's add-on pins were not chosen for.

Nothing is created or changed. Exit 0 when every check passes, 1 when one fails, 2 when credentials are
missing or expired or the configuration is bad.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from ipaddress import IPv4Network
from typing import Any
from urllib.parse import urlparse

from infra import versions
from infra.config import ENVIRONMENTS, ConfigError, StackConfig, load_environment
from infra.contract import ENVIRONMENT_LABEL
from mlplat import checkout

PULUMI_PROJECT = "mlplat"
# Karpenter v1.14.1 resolves `al2023@<version>` to this SSM public parameter per architecture and
# variant (aws/karpenter-provider-aws pkg/providers/amifamily/al2023.go resolvePath, tag v1.14.1,
# commit bde00654cd316fddb3dccfba3f5ac07039865429); GPU instance types use the `nvidia` variant.
AMI_PARAMETER = (
    "/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2023/{arch}/nvidia/"
    "amazon-eks-node-al2023-{arch}-nvidia-{k8s}-{release}/image_id"
)
# The Spot service-linked role Karpenter needs before its first Spot launch
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html).
SPOT_ROLE = "AWSServiceRoleForEC2Spot"
# Credential problems are a usage error (exit 2), not a failed check.
CREDENTIAL_ERRORS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
}


@dataclass(frozen=True)
class Quota:
    """An EC2 vCPU quota: its Service Quotas code and words its name must contain in the account.

    The codes are the ones the Service Quotas console shows for the quota names AWS documents
    (https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html,
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html); the name check makes
    the account itself confirm each code, so a wrong code fails loudly instead of checking another quota.
    """

    code: str
    name_words: tuple[str, ...]


# (instance family group, capacity type) -> quota. Families not listed here have no check and fail.
# AWS lists P5 Spot as a quota of its own ("All P5 Spot Instance Requests" beside "All P4, P3 and P2
# Spot Instance Requests", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html),
# whose code is not confirmed here: Spot pools of P5 and later have no check rather than a wrong one.
_P_ON_DEMAND = Quota("L-417A185B", ("Running On-Demand P ",))
QUOTAS: dict[tuple[str, str], Quota] = {
    ("G and VT", "on-demand"): Quota("L-DB2E81BA", ("On-Demand", "G and VT")),
    ("G and VT", "spot"): Quota("L-3819A6DF", ("Spot", "G and VT")),
    ("P", "on-demand"): _P_ON_DEMAND,
    ("P", "spot"): Quota("L-7212CCBC", ("Spot", "All P")),
    ("P5+", "on-demand"): _P_ON_DEMAND,
    ("Standard", "on-demand"): Quota("L-1216C47A", ("On-Demand", "Standard")),
    # "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests" (using-spot-limits.html above),
    # which the spot CPU model pools of dev and staging draw on. AWS's pages name the quota, not its
    # code: as for the others, the name check makes the account confirm it.
    ("Standard", "spot"): Quota("L-34B43A08", ("Spot", "Standard")),
}
STANDARD_FAMILIES = tuple("acdhimrtz")


class CredentialsProblem(Exception):
    """No usable AWS credentials: nothing can be checked."""


def _credential_provider_errors() -> tuple[type[Exception], ...]:
    """botocore's errors for credentials it cannot find or load (missing, unknown profile, expired SSO)."""
    from botocore import exceptions as e

    return (
        e.NoCredentialsError,
        e.PartialCredentialsError,
        e.ProfileNotFound,
        e.CredentialRetrievalError,
        e.SSOTokenLoadError,
        e.TokenRetrievalError,
        e.UnauthorizedSSOTokenError,
    )


class BootstrapUrlError(Exception):
    """A bootstrap output given to preflight is not the URL form Pulumi uses."""


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    detail: str
    warning: bool = False  # passes, but someone should act on `detail`


@dataclass(frozen=True)
class Bootstrap:
    """Where the bootstrap's outputs are expected, read from the deploy job's variables or flags."""

    state_bucket: str
    secrets_key: str  # a key id, ARN or alias/<name>
    name_prefix: str

    @classmethod
    def from_urls(cls, backend_url: str, secrets_provider: str, name_prefix: str) -> Bootstrap:
        """From `pulumi login`'s s3://<bucket>?... and the stack's awskms://<key>?region=... URLs."""
        backend, secrets = urlparse(backend_url), urlparse(secrets_provider)
        problems = []
        if backend.scheme != "s3" or not backend.netloc:
            problems.append(("PULUMI_BACKEND_URL", f"{backend_url!r} is not an s3://<bucket> URL"))
        key = (secrets.netloc + secrets.path).strip("/")
        if secrets.scheme != "awskms" or not key:
            problems.append(("PULUMI_SECRETS_PROVIDER", f"{secrets_provider!r} is not an awskms://<key> URL"))
        if problems:
            raise BootstrapUrlError("; ".join(f"{name}: {why}" for name, why in problems))
        return cls(backend.netloc, key, name_prefix)


ClientFactory = Callable[[str], Any]


def _error(err: Exception) -> tuple[str, str]:
    from botocore.exceptions import ClientError

    if isinstance(err, ClientError):
        info = err.response.get("Error", {})
        return str(info.get("Code", "")), str(info.get("Message", ""))
    return type(err).__name__, str(err)


def _guard(check: str, call: Callable[[], list[Result]]) -> list[Result]:
    """Run one check; an AWS error becomes that check's failure, a credentials error stops everything."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except _credential_provider_errors() as err:
        raise CredentialsProblem(str(err)) from None
    except ClientError as err:
        code, message = _error(err)
        if code in CREDENTIAL_ERRORS:
            raise CredentialsProblem(f"{code}: {message}") from None
        hint = " (the caller lacks this read permission)" if "AccessDenied" in code else ""
        return [Result(check, False, f"{code}: {message}{hint}")]
    except BotoCoreError as err:
        return [Result(check, False, f"{type(err).__name__}: {err}")]


# --- the checks ----------------------------------------------------------------------------------------


def expected_account(config: StackConfig) -> str:
    """The account the stack lives in: the one its cluster admin roles belong to."""
    accounts = {arn.split(":")[4] for arn in config.cluster.admin_role_arns}
    if len(accounts) != 1:
        found = ", ".join(sorted(accounts)) or "none"
        raise ConfigError(
            f"stack {config.environment}",
            [("mlplat:cluster.admin_role_arns", f"must name roles of exactly one account (found: {found})")],
        )
    return accounts.pop()


def check_caller(config: StackConfig, clients: ClientFactory) -> list[Result]:
    """Right account, and a role the cluster admits as admin: otherwise the AWS half of `pulumi up`
    succeeds and every Kubernetes resource after it fails with 401."""
    identity = clients("sts").get_caller_identity()
    account, arn = identity["Account"], identity["Arn"]
    want = expected_account(config)
    results = [
        Result("caller account", account == want, f"{arn} is in account {account}, the stack expects {want}")
    ]
    # arn:aws:sts::<account>:assumed-role/<role>/<session> -> <role>; IAM role paths are not in it.
    parts = arn.split(":", 5)[-1].split("/")
    role = parts[1] if parts[0] == "assumed-role" and len(parts) > 1 else None
    admins = {a.rsplit("/", 1)[-1] for a in config.cluster.admin_role_arns}
    if role in admins:
        results.append(
            Result("caller is a cluster admin", True, f"role {role} is in mlplat:cluster.admin_role_arns")
        )
    else:
        who = f"role {role}" if role else arn
        results.append(
            Result(
                "caller is a cluster admin",
                False,
                f"{who} is not in mlplat:cluster.admin_role_arns: the Kubernetes half of `pulumi up` would be refused",
            )
        )
    return results


@dataclass(frozen=True)
class Pool:
    """Capacity the stack may launch: its capacity type, the instance types it may choose, and the
    vCPUs it may hold at its maximum given one node's vCPUs."""

    capacity_type: str
    instance_types: list[str]
    vcpus_at_most: Callable[[int], int]


def pools(config: StackConfig) -> list[Pool]:
    """Every pool of the stack: the GPU pools and the system node group (at most `max_size` nodes), and
    the CPU model pool, which Karpenter stops launching into once its NodePool limit `cpu`
    (`cpu_pool.max_vcpus`, infra/aws/karpenter.py) is reached (aws/karpenter-provider-aws
    website/content/en/docs/concepts/nodepools.md, tag v1.14.1: "Limits prevent Karpenter from creating
    new instances once the limit is exceeded")."""

    def nodes(count: int) -> Callable[[int], int]:
        return lambda vcpus: vcpus * count

    system, cpu = config.system_pool, config.cpu_pool
    return [
        *(Pool(p.capacity_type, p.instance_types, nodes(p.max_size)) for p in config.gpu.pools),
        Pool("on-demand", system.instance_types, nodes(system.max_size)),
        Pool(cpu.capacity_type, cpu.instance_types, lambda vcpus: cpu.max_vcpus),
    ]


def instance_types(config: StackConfig, clients: ClientFactory) -> dict[str, dict[str, Any]]:
    """vCPUs and architectures of every instance type the stack may launch, as the region reports them."""
    wanted = sorted({t for p in pools(config) for t in p.instance_types})
    found: dict[str, dict[str, Any]] = {}
    paginator = clients("ec2").get_paginator("describe_instance_types")
    for page in paginator.paginate(InstanceTypes=wanted):
        for info in page["InstanceTypes"]:
            found[info["InstanceType"]] = {
                "vcpus": int(info["VCpuInfo"]["DefaultVCpus"]),
                "architectures": list(info["ProcessorInfo"]["SupportedArchitectures"]),
            }
    return found


def check_gpu_ami(
    config: StackConfig, types: dict[str, dict[str, Any]], clients: ClientFactory
) -> list[Result]:
    """The pinned alias resolves for this Kubernetes version on every architecture the GPU pools use;
    if it does not, Karpenter finds no AMI and no GPU node ever launches."""
    family, _, release = versions.KARPENTER_GPU_AMI_ALIAS.partition("@")
    if family != "al2023":
        return [
            Result(
                "gpu ami alias", False, f"{versions.KARPENTER_GPU_AMI_ALIAS}: only al2023 aliases are checked"
            )
        ]
    architectures = sorted(
        {
            a
            for p in config.gpu.pools
            for t in p.instance_types
            for a in types.get(t, {}).get("architectures", [])
        }
        & {"x86_64", "arm64"}
    )
    from botocore.exceptions import ClientError

    ssm = clients("ssm")
    results = []
    for arch in architectures:
        name = AMI_PARAMETER.format(k8s=config.cluster.kubernetes_version, arch=arch, release=release)
        check = f"gpu ami {versions.KARPENTER_GPU_AMI_ALIAS} ({arch})"

        def lookup(name: str = name, check: str = check) -> list[Result]:
            try:
                value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
            except ClientError as err:
                if _error(err)[0] != "ParameterNotFound":
                    raise
                return [Result(check, False, f"{name} does not exist: Karpenter would find no GPU AMI")]
            return [Result(check, value.startswith("ami-"), f"{name} = {value}")]

        results += _guard(check, lookup)
    return results


def check_addons(config: StackConfig, clients: ClientFactory) -> list[Result]:
    """Every pinned add-on version is offered for the cluster's Kubernetes version."""
    k8s = config.cluster.kubernetes_version
    eks = clients("eks")
    results = []
    for addon, version in sorted(versions.EKS_ADDONS[k8s].items()):
        check = f"add-on {addon} {version}"

        def lookup(addon: str = addon, version: str = version, check: str = check) -> list[Result]:
            offered: set[str] = set()
            for page in eks.get_paginator("describe_addon_versions").paginate(
                addonName=addon, kubernetesVersion=k8s
            ):
                for entry in page.get("addons", []):
                    offered |= {v["addonVersion"] for v in entry.get("addonVersions", [])}
            if version in offered:
                return [Result(check, True, f"offered for Kubernetes {k8s}")]
            newest = ", ".join(sorted(offered, reverse=True)[:3]) or "none"
            return [Result(check, False, f"not offered for Kubernetes {k8s} (offered: {newest})")]

        results += _guard(check, lookup)
    return results


def family_group(instance_type: str) -> str | None:
    """The quota group of an instance type, from its family letters and generation (`g5g` -> g, 5)."""
    match = re.match(r"([a-z-]+?)(\d+)", instance_type)
    if not match:
        return None
    letters, generation = match[1], int(match[2])
    if letters in ("g", "vt"):
        return "G and VT"
    if letters == "p":
        return "P5+" if generation >= 5 else "P"
    if letters in STANDARD_FAMILIES:
        return "Standard"
    return None


def vcpu_demand(
    config: StackConfig, types: dict[str, dict[str, Any]]
) -> tuple[dict[tuple[str, str], int], list[str]]:
    """vCPUs each quota must hold with every pool at its maximum, each node the pool's largest type
    (Karpenter may choose any listed type); plus the types no quota group is known for."""
    demand: dict[tuple[str, str], int] = {}
    unknown: list[str] = []
    for pool in pools(config):
        capacity = pool.capacity_type
        by_group: dict[str, int] = {}
        for name in pool.instance_types:
            group = family_group(name)
            if group is None or (group, capacity) not in QUOTAS:
                unknown.append(f"{name} ({capacity})")
                continue
            by_group[group] = max(by_group.get(group, 0), pool.vcpus_at_most(types[name]["vcpus"]))
        for group, vcpus in by_group.items():
            demand[(group, capacity)] = demand.get((group, capacity), 0) + vcpus
    return demand, unknown


def check_quotas(
    config: StackConfig, types: dict[str, dict[str, Any]], clients: ClientFactory
) -> list[Result]:
    """Each vCPU quota holds every pool that draws on it at its maximum (new accounts start GPU quotas
    at 0, so a pool that can never launch is otherwise only found when a model waits forever)."""
    demand, unknown = vcpu_demand(config, types)
    results = [Result("quota", False, f"no quota check for instance type {u}") for u in unknown]
    quotas = clients("service-quotas")
    for (group, capacity), need in sorted(demand.items()):
        quota = QUOTAS[(group, capacity)]
        check = f"quota {group} {capacity}"

        def lookup(quota: Quota = quota, need: int = need, check: str = check) -> list[Result]:
            found = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=quota.code)["Quota"]
            name = str(found.get("QuotaName", ""))
            if not all(word in name for word in quota.name_words):
                return [
                    Result(check, False, f"{quota.code} is {name!r} in this account, not a {check} quota")
                ]
            value = float(found["Value"])
            return [
                Result(check, value >= need, f"{quota.code} {name!r}: {value:g} vCPUs, pools need {need}")
            ]

        results += _guard(check, lookup)
    return results


def check_spot_role(config: StackConfig, clients: ClientFactory) -> list[Result]:
    """Karpenter cannot create the Spot service-linked role (its boundary forbids it); it must exist."""
    if not any(p.capacity_type == "spot" for p in pools(config)):
        return [Result("spot service-linked role", True, "no spot pool in this stack")]
    role = clients("iam").get_role(RoleName=SPOT_ROLE)["Role"]
    return [Result("spot service-linked role", True, f"{role['Arn']} exists")]


def check_bootstrap(config: StackConfig, bootstrap: Bootstrap, clients: ClientFactory) -> list[Result]:
    """The bootstrap's outputs this stack uses exist: the initialised backend and this stack in it, the
    stack's secrets key (enabled), its deploy and preview roles and the boundary its roles must carry."""
    env, prefix = config.environment, bootstrap.name_prefix
    bucket, key_id = bootstrap.state_bucket, bootstrap.secrets_key
    s3, kms, iam = clients("s3"), clients("kms"), clients("iam")

    def objects(check: str, prefix_key: str, missing: str) -> Callable[[], list[Result]]:
        def call() -> list[Result]:
            count = s3.list_objects_v2(Bucket=bucket, Prefix=prefix_key, MaxKeys=1).get("KeyCount", 0)
            return [
                Result(check, count > 0, f"s3://{bucket}/{prefix_key}" + ("" if count else f": {missing}"))
            ]

        return call

    def key() -> list[Result]:
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        state = meta.get("KeyState", "?")
        return [Result("secrets provider key", state == "Enabled", f"{key_id} ({meta['Arn']}) is {state}")]

    # Listed, not read: the deploy roles are denied every iam:* call on `<prefix>-github-*` roles and
    # `<prefix>-boundary-*` policies (deploy_roles.tf), but List* calls have no such resource.
    def roles() -> list[Result]:
        found = {r["RoleName"] for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]}
        wanted = [f"{prefix}-github-deploy-{env}", f"{prefix}-github-preview-{env}"]
        return [
            Result(f"role {name}", name in found, "exists" if name in found else "missing") for name in wanted
        ]

    def boundary() -> list[Result]:
        name = f"{prefix}-boundary-{env}"
        pages = iam.get_paginator("list_policies").paginate(Scope="Local")
        found = {p["PolicyName"] for page in pages for p in page["Policies"]}
        return [
            Result("permissions boundary", name in found, name + ("" if name in found else " is missing"))
        ]

    calls: list[tuple[str, Callable[[], list[Result]]]] = [
        (
            "state backend",
            objects("state backend", ".pulumi/meta.yaml", "not initialised (run `pulumi login` once)"),
        ),
        (
            f"stack {env}",
            objects(
                f"stack {env}",
                f".pulumi/stacks/{PULUMI_PROJECT}/{env}.json",
                f"no such stack (run `pulumi stack init {env}` once)",
            ),
        ),
        ("secrets provider key", key),
        ("deploy and preview roles", roles),
        ("permissions boundary", boundary),
    ]
    results: list[Result] = []
    for check, call in calls:
        results += _guard(check, call)
    return results


# The runner fields' key path, as config errors name it.
RUNNER_KEY = "mlplat:cluster.endpoint.runner"


def check_runner(config: StackConfig, clients: ClientFactory) -> list[Result]:
    """The runner `cluster.endpoint.runner` names is there as the program uses it (infra/aws/network.py
    peers with its VPC and routes back to its range through its route table; infra/aws/cluster.py admits
    its security group): otherwise a placeholder or another environment's ID fails only inside
    `pulumi up`, after the cluster VPC was created.

    The VPC must be in this account and region (the peering is auto-accepted, network.py `_peering`),
    hold the runner range (the bootstrap's `deploy_runners.<env>.vpc_cidr` is a share of it,
    infra/bootstrap/runners.tf) and overlap no range of the cluster VPC ("The requester VPC and
    accepter VPC cannot have overlapping CIDR blocks": EC2 API reference, CreateVpcPeeringConnection,
    as botocore 1.44.8 ships it); the group and the route table must be that VPC's. IDs are looked up
    by filter, so an ID that names nothing is an empty answer rather than an error code.

    The group and the route table must also carry this environment's tag (the bootstrap tags each
    environment's own: infra/bootstrap/runners.tf `aws_security_group.runner`,
    `aws_route_table.runner_private`). Another environment's pair lies in the same VPC: its route table
    is refused only inside `pulumi up` (deploy_roles.tf DenyOtherEnvironments), and its group would let
    that environment's runner (dev's runs pull-request previews) reach this cluster.
    """
    runner = config.cluster.endpoint.runner
    if runner is None:
        return [Result("runner", True, "public endpoint: no runner to peer with")]
    ec2 = clients("ec2")
    fix = "set it from `terraform output -json deploy_runners` (docs/adr/0003)"

    def by_id(name: str, value: str) -> list[dict[str, Any]]:
        return [{"Name": name, "Values": [value]}]

    def vpc() -> list[Result]:
        found = ec2.describe_vpcs(Filters=by_id("vpc-id", runner.vpc_id))["Vpcs"]
        if not found:
            where = f"this account in {config.aws.region}"
            return [
                Result(
                    "runner vpc",
                    False,
                    f"{RUNNER_KEY}.vpc_id: {runner.vpc_id} is not a VPC of {where}; {fix}",
                )
            ]
        blocks = [
            IPv4Network(a["CidrBlock"])
            for a in found[0].get("CidrBlockAssociationSet", [])
            if a["CidrBlockState"]["State"] == "associated"
        ]
        described = f"{runner.vpc_id} ({', '.join(map(str, blocks))})"
        cluster = config.network.vpc_cidr
        overlapping = any(b.overlaps(cluster) for b in blocks)
        clash = f" overlaps network.vpc_cidr {cluster}: AWS refuses to peer the two" if overlapping else ""
        inside = any(runner.vpc_cidr.subnet_of(b) for b in blocks)
        return [
            Result("runner vpc", not overlapping, described + clash),
            Result(
                "runner range",
                inside,
                f"{RUNNER_KEY}.vpc_cidr {runner.vpc_cidr} is "
                + (f"within {described}" if inside else f"outside {described}; {fix}"),
            ),
        ]

    def in_runner_vpc(check: str, field: str, value: str, found: list[dict[str, Any]]) -> list[Result]:
        key = f"{RUNNER_KEY}.{field}"
        if not found:
            return [Result(check, False, f"{key}: {value} does not exist in {config.aws.region}; {fix}")]
        if found[0]["VpcId"] != runner.vpc_id:
            return [
                Result(
                    check,
                    False,
                    f"{key}: {value} is in {found[0]['VpcId']}, not the runner VPC {runner.vpc_id}",
                )
            ]
        tags = {tag["Key"]: tag["Value"] for tag in found[0].get("Tags", [])}
        tagged = tags.get(ENVIRONMENT_LABEL)
        if tagged != config.environment:
            whose = f"{ENVIRONMENT_LABEL}={tagged}" if tagged else f"no {ENVIRONMENT_LABEL} tag"
            return [
                Result(
                    check,
                    False,
                    f"{key}: {value} has {whose}, not {config.environment}'s runner; {fix}",
                )
            ]
        return [Result(check, True, f"{value} in {runner.vpc_id}, {config.environment}'s")]

    def group() -> list[Result]:
        found = ec2.describe_security_groups(Filters=by_id("group-id", runner.security_group_id))
        return in_runner_vpc(
            "runner security group", "security_group_id", runner.security_group_id, found["SecurityGroups"]
        )

    def route_table() -> list[Result]:
        found = ec2.describe_route_tables(Filters=by_id("route-table-id", runner.private_route_table_id))
        return in_runner_vpc(
            "runner route table",
            "private_route_table_id",
            runner.private_route_table_id,
            found["RouteTables"],
        )

    return (
        _guard("runner vpc", vpc)
        + _guard("runner security group", group)
        + _guard("runner route table", route_table)
    )


def check_kubernetes_support(config: StackConfig, today: date) -> Result:
    """The stack's Kubernetes version against the EKS support calendar (module docstring)."""
    version = config.cluster.kubernetes_version
    calendar = versions.EKS_SUPPORT_CALENDAR[version]
    window = calendar.on(today)
    check = f"kubernetes {version} support"
    if window is versions.EksSupport.STANDARD:
        return Result(check, True, f"standard support until {calendar.standard_ends.isoformat()}")
    if window is versions.EksSupport.EXTENDED:
        return Result(
            check,
            True,
            f"EXTENDED support since {calendar.standard_ends.isoformat()}, until "
            f"{calendar.extended_ends.isoformat()}: the control plane is billed at the extended price "
            "(`mlplat cost`); move cluster.kubernetes_version to a version in standard support",
            warning=True,
        )
    return Result(
        check,
        False,
        f"extended support ended {calendar.extended_ends.isoformat()}: AWS upgrades the control plane "
        "itself; move cluster.kubernetes_version, with its add-on pins, to a supported version",
    )


def run_checks(
    config: StackConfig, bootstrap: Bootstrap, clients: ClientFactory, today: date | None = None
) -> list[Result]:
    """Every check, the caller first: without credentials nothing else is asked."""
    results = [check_kubernetes_support(config, today or versions.calendar_today())]
    results += _guard("caller", lambda: check_caller(config, clients))
    results += check_bootstrap(config, bootstrap, clients)
    results += check_runner(config, clients)
    results += _guard("spot service-linked role", lambda: check_spot_role(config, clients))
    results += check_addons(config, clients)
    types: dict[str, dict[str, Any]] = {}

    def describe() -> list[Result]:
        types.update(instance_types(config, clients))
        return [
            Result(
                "instance types",
                True,
                ", ".join(f"{t}: {i['vcpus']} vCPUs" for t, i in sorted(types.items())),
            )
        ]

    results += _guard("instance types", describe)
    if types:  # the AMI and quota checks need vCPUs and architectures
        results += check_gpu_ami(config, types, clients)
        results += check_quotas(config, types, clients)
    return results


# --- command line --------------------------------------------------------------------------------------


def report(env: str, region: str, results: Iterable[Result]) -> tuple[str, int]:
    results = list(results)
    failed = [r for r in results if not r.ok]
    width = max((len(r.check) for r in results), default=0)
    lines = [f"mlplat preflight {env} ({region})"]
    lines += [f"  {_mark(r)}  {r.check:<{width}}  {r.detail}" for r in results]
    warned = sum(1 for r in results if r.ok and r.warning)
    lines.append(
        (f"{len(failed)} of {len(results)} checks failed" if failed else f"all {len(results)} checks passed")
        + (f", {warned} with a warning" if warned else "")
    )
    return "\n".join(lines), 1 if failed else 0


def _mark(result: Result) -> str:
    if not result.ok:
        return "FAIL"
    return "WARN" if result.warning else "ok  "


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "preflight", help="read-only checks against the live AWS account, before `pulumi up`"
    )
    parser.add_argument("--env", required=True, choices=list(ENVIRONMENTS))
    parser.add_argument(
        "--backend-url",
        default=os.environ.get("PULUMI_BACKEND_URL"),
        help="the Pulumi state backend, s3://<bucket>?... (default: $PULUMI_BACKEND_URL)",
    )
    parser.add_argument(
        "--secrets-provider",
        default=os.environ.get("PULUMI_SECRETS_PROVIDER"),
        help="the stack's secrets provider, awskms://alias/... (default: $PULUMI_SECRETS_PROVIDER)",
    )
    parser.add_argument(
        "--name-prefix", default="mlplat", help="the bootstrap's name_prefix (default: mlplat)"
    )
    parser.set_defaults(func=run)


def boto3_clients(region: str) -> ClientFactory:
    import boto3

    session = boto3.session.Session(region_name=region)
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            made[service] = session.client(service)
        return made[service]

    return client


def run(
    args: argparse.Namespace,
    clients: Callable[[str], ClientFactory] = boto3_clients,
    today: Callable[[], date] = versions.calendar_today,
) -> int:
    missing = [
        flag
        for flag, value in (
            ("--backend-url", args.backend_url),
            ("--secrets-provider", args.secrets_provider),
        )
        if not value
    ]
    if missing:
        print(
            f"mlplat preflight: {' and '.join(missing)} not given and not in the environment "
            "(PULUMI_BACKEND_URL, PULUMI_SECRETS_PROVIDER: the bootstrap's outputs)",
            file=sys.stderr,
        )
        return 2
    checkout.own_code(args, "mlplat preflight checks the stack file beside its own code")
    try:
        config = load_environment(args.env)
        bootstrap = Bootstrap.from_urls(args.backend_url, args.secrets_provider, args.name_prefix)
        results = run_checks(config, bootstrap, clients(config.aws.region), today())
    except (ConfigError, BootstrapUrlError) as err:
        print(f"mlplat preflight: {err}", file=sys.stderr)
        return 2
    except _credential_provider_errors() as err:  # raised when the session is made, e.g. an unknown profile
        print(f"mlplat preflight: no usable AWS credentials ({err})", file=sys.stderr)
        return 2
    except CredentialsProblem as err:
        print(f"mlplat preflight: no usable AWS credentials ({err})", file=sys.stderr)
        return 2
    text, code = report(args.env, config.aws.region, results)
    print(text)
    return code
