"""Typed stack configuration: read once from `environments/Pulumi.<env>.yaml`, validated, handed down.

Every knob an environment can turn lives here with a description. A bad value stops the program
before any resource is declared, with an error naming the key path (`mlplat:cluster.endpoint.public`)
and the reason. The same models are read by `mlplat validate` (capacity, replica caps) so the
platform and the checks of model apps can never disagree about an environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from ipaddress import IPv4Network, collapse_addresses
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra import versions
from infra.contract import ENVIRONMENT_LABEL, MODEL_STORE_URI, PRODUCTION, Environment

# Re-exported: the program's modules know these contract names as infra.config's.
from infra.contract import ENVIRONMENTS as ENVIRONMENTS
from infra.contract import GPU_POOL_LABEL as GPU_POOL_LABEL
from infra.contract import NODE_POOL_LABEL as NODE_POOL_LABEL
from infra.gitops import https_address
from infra.instance_types import NODE_SHAPES
from infra.stack_file import MAX_NESTING, MAX_STACK_FILE_BYTES, parse_stack_yaml

# Re-exported: the CLI, the program and the tests know it as infra.config.ConfigError.
from infra.stack_file import ConfigError as ConfigError

NAMESPACE = "mlplat"
STACK_DIR = Path(__file__).resolve().parent.parent / "environments"

# Patterns spell out ASCII classes: pydantic's regex engine reads `\d` and `\w` as Unicode classes,
# which would let an Arabic-Indic digit or a look-alike letter through.
Name = Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")]
RoleArn = Annotated[str, Field(pattern=r"^arn:aws:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@/_-]{1,512}$")]
Quantity = Annotated[int, Field(ge=0)]
Zone = Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$")]
# An EC2 instance type: family (with an optional `-variant`, e.g. p6-b200), a dot, a size.
InstanceType = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)?\.(nano|micro|small|medium|large|[0-9]{0,3}xlarge|metal(-[0-9]{1,3}xl)?)$"
    ),
]

# AWS tag limits (https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html): a key of
# 1-128 characters, a value of up to 256; anything longer fails mid-deploy instead of here.
TagKey = Annotated[str, Field(min_length=1, max_length=128)]
TagValue = Annotated[str, Field(max_length=256)]

# EBS gp3 volumes hold at most 16 TiB (https://docs.aws.amazon.com/ebs/latest/userguide/general-purpose.html#gp3-ebs-volume-type):
# a larger claim stays Pending forever; a typo of three extra zeros must stop here instead.
VolumeGi = Annotated[int, Field(ge=1, le=16384)]

# An image reference prefix: registry host (optional port) and path, lower-case ASCII.
Registry = Annotated[
    str, Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$")
]
# Hosts where anyone can publish an image: allowing one of them whole allows everything.
PUBLIC_REGISTRY_HOSTS = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "ghcr.io", "quay.io", "public.ecr.aws", "gcr.io"}
)

# The node label the GPU Operator's device plugin reads to pick its configuration from the ConfigMap
# `devicePlugin.config.name` (NVIDIA/gpu-operator v26.7.0, assets/state-device-plugin/0500_daemonset.yaml,
# env NODE_LABEL); time-sliced pools set it (infra/aws/karpenter.py, infra/services/gpu_operator.py).
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"

# Nodes of a time-sliced pool also carry this taint (infra/aws/karpenter.py): a GPU pod lands on a shared
# GPU only if it asks to (apps/components/gpu-shared), never because it forgot to name its pool.
GPU_SHARING_TAINT_KEY = "mlplat/gpu-sharing"


def time_slicing_config_name(replicas: int) -> str:
    """The device plugin configuration sharing each GPU `replicas` ways: a key of the GPU Operator's
    ConfigMap and the value of DEVICE_PLUGIN_CONFIG_LABEL on the nodes of a time-sliced pool."""
    return f"time-sliced-{replicas}"


# NVIDIA GPU instance families an x86-64 GPU pool may use: the families of the "Accelerated computing"
# category with NVIDIA GPUs, https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html (G4dn T4,
# G5 A10G, G6 L4, G6e L40S, Gr6 L4, P3/P3dn V100, P4d/P4de A100, P5/P5e/P5en H100/H200, P6 B200).
# Left out on purpose: g4ad (AMD GPU), g5g (Graviton, arm64: the pools use the x86-64 NVIDIA AMI),
# inf*/trn* (Neuron, not nvidia.com/gpu), f* (FPGA), dl1 (Gaudi), and fractional-GPU families.
GPU_INSTANCE_FAMILIES = frozenset(
    {"g4dn", "g5", "g6", "g6e", "gr6", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200"}
)

# Label domains the kubelet, Karpenter or Kubernetes own on a node. Karpenter's NodePool CRD refuses
# most of them (../shared/reference/crds/karpenter/karpenter.sh_nodepools.yaml, x-kubernetes-validations
# on spec.template.metadata.labels); we refuse them all, and our own pool label, before AWS is called.
RESERVED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io", "karpenter.sh", "karpenter.k8s.aws")
LABEL_KEY = re.compile(
    r"(?:(?P<prefix>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/)?"
    r"(?P<name>[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)",
    re.ASCII,
)
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?", re.ASCII)

# RFC 1918 private ranges: a VPC outside them collides with real internet addresses its pods may need.
PRIVATE_RANGES = tuple(IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

# The public API endpoint's allowlist names admin networks and runner egress ranges. Together they may
# not exceed a /16 (65,536 addresses): `0.0.0.0/1` + `128.0.0.0/1` is the internet in two lines.
MAX_ALLOWLIST_ADDRESSES = 2**16


class _Model(BaseModel):
    """Frozen, strict about unknown keys: a misspelled knob is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _short_list(count: int, description: str) -> Any:
    """A list field a stack file may leave out (then empty) and may fill with at most `count` entries."""
    return Field(default_factory=list, max_length=count, description=description)


def _check_range(low: int, high: int, low_name: str, high_name: str) -> None:
    if low > high:
        raise ValueError(f"{low_name} ({low}) must not exceed {high_name} ({high})")


class AwsConfig(_Model):
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", description="AWS region of the stack.")
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict,
        max_length=20,
        description="Tags added to every AWS resource. The program adds `mlplat/environment` from the stack "
        "itself (the deploy role's isolation keys on it); set here, it must name the stack. "
        "At most 20: AWS allows 50 per resource and the program and AWS services add their own.",
    )

    @field_validator("tags")
    @classmethod
    def _no_aws_prefix(cls, tags: dict[str, str]) -> dict[str, str]:
        # https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html: the `aws:` prefix is AWS's.
        reserved = sorted(k for k in tags if k.lower().startswith("aws:"))
        if reserved:
            raise ValueError(f"tag keys {reserved} use the prefix `aws:`, which AWS reserves for itself")
        return tags


class NetworkConfig(_Model):
    vpc_cidr: IPv4Network = Field(
        description="VPC address range inside RFC 1918 private space, /16 to /18; split into per-zone subnets."
    )
    availability_zones: list[Zone] = Field(
        min_length=3, max_length=3, description="Exactly three distinct zones of `aws.region`."
    )
    nat_gateways: Literal["single", "per_az"] = Field(
        description="One NAT gateway (cheap, one zone's outage cuts egress) or one per zone (HA)."
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _private_and_sized(cls, cidr: IPv4Network) -> IPv4Network:
        if not any(cidr.subnet_of(private) for private in PRIVATE_RANGES):
            raise ValueError(
                f"{cidr} is outside the RFC 1918 private ranges (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)"
            )
        # A VPC's primary block is /16 to /28 (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html).
        if cidr.prefixlen < 16:
            raise ValueError("must be /16 or smaller: AWS refuses a larger VPC block")
        if cidr.prefixlen > 18:
            raise ValueError("must be /18 or larger: six subnets and pod IPs need the room")
        return cidr

    @field_validator("availability_zones")
    @classmethod
    def _distinct_zones(cls, zones: list[str]) -> list[str]:
        if len(set(zones)) != len(zones):
            raise ValueError("availability zones must be distinct")
        return zones


# EC2 resource IDs: a type prefix and 8 (older resources) or 17 lower-case hex digits
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/resource-ids.html).
SecurityGroupId = Annotated[str, Field(pattern=r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$")]
VpcId = Annotated[str, Field(pattern=r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$")]
RouteTableId = Annotated[str, Field(pattern=r"^rtb-([0-9a-f]{8}|[0-9a-f]{17})$")]


class RunnerConfig(_Model):
    """The environment's in-VPC GitHub runner (docs/adr/0003): the fields of the bootstrap output
    `terraform output -json deploy_runners | jq .<env>` the program needs to peer with the runner VPC and
    admit the runner's security group to the private API endpoint."""

    security_group_id: SecurityGroupId = Field(
        description="The runner's security group (`security_group_id`); the only group admitted on 443."
    )
    vpc_id: VpcId = Field(description="The runner VPC (`vpc_id`) the cluster VPC is peered with.")
    vpc_cidr: IPv4Network = Field(
        description="This environment's runner range (`vpc_cidr` of its `deploy_runners` entry, its share of "
        "the runner VPC), the only range the cluster routes back to; must not overlap network.vpc_cidr."
    )
    private_route_table_id: RouteTableId = Field(
        description="The runner subnets' route table (`private_route_table_id`), which gets the route back."
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _private_vpc_block(cls, cidr: IPv4Network) -> IPv4Network:
        if not any(cidr.subnet_of(private) for private in PRIVATE_RANGES):
            raise ValueError(f"{cidr} is outside the RFC 1918 private ranges a runner VPC is created in")
        # Within a VPC's primary block size, /16 to /28
        # (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html).
        if not 16 <= cidr.prefixlen <= 28:
            raise ValueError(f"{cidr} is not a runner range (/16 to /28)")
        return cidr


class EndpointConfig(_Model):
    public: bool = Field(False, description="Expose the Kubernetes API publicly (never in prod).")
    runner: RunnerConfig | None = Field(
        None,
        description="The in-VPC runner deploys reach the API from (bootstrap output `deploy_runners.<env>`); "
        "required when the endpoint is private: nothing else can reach it.",
    )
    public_access_cidrs: list[IPv4Network] = Field(
        default_factory=list,
        description="Allowlist for the public endpoint; required when public. Public ranges only, "
        f"together at most {MAX_ALLOWLIST_ADDRESSES} addresses (a /16).",
    )

    @model_validator(mode="after")
    def _runner_when_private(self) -> EndpointConfig:
        if not self.public and self.runner is None:
            raise ValueError(
                "runner: a private endpoint is reached only from the peered runner VPC; set it from "
                "`terraform output -json deploy_runners` (docs/adr/0003)"
            )
        return self

    @model_validator(mode="after")
    def _allowlist_when_public(self) -> EndpointConfig:
        # infra/aws/cluster.py hands the allowlist to EKS only for a public endpoint: on a private one it
        # would be ignored without a word, leaving an admin believing their range is admitted.
        if not self.public and self.public_access_cidrs:
            raise ValueError(
                "public_access_cidrs: a private endpoint takes no allowlist (only the runner reaches it); "
                "set public: true to open the endpoint to these ranges, or remove them"
            )
        if self.public and not self.public_access_cidrs:
            raise ValueError("public_access_cidrs: a public endpoint needs a CIDR allowlist")
        for cidr in self.public_access_cidrs:
            # Private, shared (CGNAT), loopback, link-local, multicast, documentation and reserved ranges
            # (RFC 6890) never reach a public endpoint as a source: listing one admits nobody it means to.
            if not cidr.is_global:
                raise ValueError(
                    f"public_access_cidrs: {cidr} is a private or reserved range; "
                    "a public endpoint only sees public source addresses"
                )
        covered = sum(n.num_addresses for n in collapse_addresses(self.public_access_cidrs))
        if covered > MAX_ALLOWLIST_ADDRESSES:
            raise ValueError(
                f"public_access_cidrs: together the ranges cover {covered} addresses, more than a /16 "
                f"({MAX_ALLOWLIST_ADDRESSES}): that is not an allowlist"
            )
        return self


class ClusterConfig(_Model):
    kubernetes_version: str = Field(description="EKS minor version; add-on pins exist for it in versions.py.")
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    admin_role_arns: list[RoleArn] = _short_list(
        10,
        "IAM roles granted cluster-admin through EKS access entries (platform admins, the CI deploy "
        "role). At most 10: cluster-admin is for a few roles, never a team's every role.",
    )
    viewer_role_arns: list[RoleArn] = _short_list(
        10,
        "IAM roles granted read-only access without Secrets (AmazonEKSViewPolicy): the CI preview role. At most 10.",
    )
    drift_role_arns: list[RoleArn] = _short_list(
        3,
        "IAM roles granted read-only access with Secrets (AmazonEKSAdminViewPolicy): the CI drift role, "
        "whose `pulumi preview --refresh` reads each Helm release from Helm's storage, Secrets. Only "
        "roles no pull request can assume (the bootstrap's drift role, main only). At most 3.",
    )

    promote_role_arns: list[RoleArn] = _short_list(
        3,
        "IAM roles that may only port-forward to MLflow's server (Kubernetes group of "
        "infra/aws/cluster.py REGISTRY_TUNNEL_GROUP, bound in infra/services/mlflow.py): the CI promote "
        "role, whose registry gate reads this environment's registry through the cluster API. At most 3.",
    )

    @model_validator(mode="after")
    def _viewers_never_read_secrets(self) -> ClusterConfig:
        # A viewer is there because it must not read Secrets (the dev preview role runs pull-request
        # code); listed as a drift role too, it would get AmazonEKSAdminViewPolicy beside its view.
        both = sorted(set(self.viewer_role_arns) & set(self.drift_role_arns))
        if both:
            raise ValueError(
                f"drift_role_arns: {', '.join(both)} is also a viewer (viewer_role_arns), which must "
                "not read Secrets; give drift its own role (the bootstrap's output `github_role_arns`, `.drift`)"
            )
        return self

    @model_validator(mode="after")
    def _one_access_entry_per_role(self) -> ClusterConfig:
        # EKS holds one access entry per principal (CreateAccessEntry answers ResourceInUseException for a
        # second): a role listed twice would stop `pulumi up` at the cluster's access.
        lists = {
            "admin_role_arns": self.admin_role_arns,
            "viewer_role_arns": self.viewer_role_arns,
            "drift_role_arns": self.drift_role_arns,
            "promote_role_arns": self.promote_role_arns,
        }
        seen: dict[str, str] = {}
        for key, arns in lists.items():
            for arn in arns:
                if arn in seen:
                    raise ValueError(
                        f"{key}: {arn} is already listed in {seen[arn]}; EKS gives a role one access "
                        "entry, so list each role once"
                    )
                seen[arn] = key
        return self

    @field_validator("kubernetes_version")
    @classmethod
    def _pinned_version(cls, version: str) -> str:
        if version not in versions.EKS_ADDONS:
            supported = ", ".join(sorted(versions.EKS_ADDONS))
            raise ValueError(f"no add-on pins for Kubernetes {version!r} (pinned: {supported})")
        return version


class SystemPoolConfig(_Model):
    instance_types: list[InstanceType] = Field(
        min_length=1,
        max_length=5,
        description="On-demand types for platform services; the smallest one sizes it.",
    )
    min_size: Quantity
    desired_size: Quantity
    max_size: Annotated[
        int,
        Field(
            ge=1,
            le=30,
            description="At most 30: the pool runs the platform services only (prod needs 3); more is a typo or "
            "a workload that belongs in a pool of its own.",
        ),
    ]

    @model_validator(mode="after")
    def _sizes(self) -> SystemPoolConfig:
        _check_range(self.min_size, self.desired_size, "min_size", "desired_size")
        _check_range(self.desired_size, self.max_size, "desired_size", "max_size")
        return self


def _label_problems(labels: Mapping[str, str]) -> Iterator[str]:
    for key, value in labels.items():
        match = LABEL_KEY.fullmatch(key)
        if not match:
            yield f"{key!r} is not a valid label key (optional DNS prefix, `/`, a name of up to 63 characters)"
            continue
        prefix = (match["prefix"] or "").lower()
        if key == GPU_POOL_LABEL:
            yield f"{key!r} is the pool label the program sets to the pool name; a pool may not override it"
        elif key == DEVICE_PLUGIN_CONFIG_LABEL:
            yield f"{key!r} selects the GPU sharing configuration; set time_slicing_replicas instead"
        elif any(prefix == d or prefix.endswith(f".{d}") for d in RESERVED_LABEL_DOMAINS):
            yield f"{key!r} is in a reserved label domain ({prefix}): the kubelet, Karpenter or Kubernetes own it"
        if not LABEL_VALUE.fullmatch(value):
            yield f"{key!r}: value {value!r} is not a valid label value (up to 63 characters [A-Za-z0-9-_.])"


class GpuPoolConfig(_Model):
    name: Name = Field(description=f"Pool name; nodes carry the label {GPU_POOL_LABEL}=<name>.")
    instance_types: list[InstanceType] = Field(
        min_length=1,
        max_length=10,
        description="NVIDIA GPU instance types of the allowed families (GPU_INSTANCE_FAMILIES), e.g. g5.xlarge.",
    )
    capacity_type: Literal["spot", "on-demand"]
    allow_spot_in_prod: bool = Field(
        False,
        description="prod only: accept spot capacity for this pool (interruptible, e.g. batch inference). "
        "Without it a prod pool must be on-demand: a reclaimed node takes serving replicas down.",
    )
    min_size: Quantity
    max_size: Annotated[
        int,
        Field(
            ge=0,
            le=64,
            description="At most 64 nodes: GPU nodes cost tens of dollars an hour each; max_total_gpus caps lower.",
        ),
    ]
    gpus_per_node: Annotated[
        int,
        Field(ge=1, le=8, description="1 to 8: no instance of the allowed families has more than 8 GPUs."),
    ]
    gpu_memory_gib: Annotated[
        int,
        Field(
            ge=1,
            le=192,
            description="Memory of one GPU, for capacity checks; at most 192: the largest GPU of the allowed "
            "families (B200 in p6-b200) has 179 GiB.",
        ),
    ]
    labels: dict[str, str] = Field(
        default_factory=dict,
        max_length=16,
        description="Extra node labels; reserved domains (kubernetes.io, k8s.io, karpenter.sh, "
        f"karpenter.k8s.aws), {GPU_POOL_LABEL} and {DEVICE_PLUGIN_CONFIG_LABEL} are refused.",
    )
    consolidation: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = Field(
        "WhenEmpty",
        description="Which GPU nodes Karpenter may consolidate: only empty ones (default), or also "
        "underutilised ones, whose pods it evicts, a loading model included (docs/adr/0001).",
    )
    time_slicing_replicas: Annotated[int, Field(ge=2, le=16)] | None = Field(
        None,
        description="Share each GPU of this pool between this many pods by time-slicing (no memory or "
        "fault isolation between them); for small models only. Unset: one pod per GPU.",
    )

    @field_validator("instance_types")
    @classmethod
    def _gpu_families(cls, types: list[str]) -> list[str]:
        foreign = [t for t in types if t.split(".")[0] not in GPU_INSTANCE_FAMILIES]
        if foreign:
            raise ValueError(
                f"{foreign} are not NVIDIA GPU instance types of the allowed families "
                f"({', '.join(sorted(GPU_INSTANCE_FAMILIES))})"
            )
        duplicates = sorted({t for t in types if types.count(t) > 1})
        if duplicates:
            raise ValueError(f"instance types {duplicates} are listed twice")
        return types

    @field_validator("labels")
    @classmethod
    def _own_labels_only(cls, labels: dict[str, str]) -> dict[str, str]:
        problems = list(_label_problems(labels))
        if problems:
            raise ValueError("; ".join(problems))
        return labels

    @model_validator(mode="after")
    def _sizes(self) -> GpuPoolConfig:
        _check_range(self.min_size, self.max_size, "min_size", "max_size")
        if self.min_size:
            # Karpenter has no node minimum; pretending to honour one would be a lie (ADR 0001).
            raise ValueError("min_size: GPU pools rest at zero nodes; a warm minimum is not supported yet")
        return self


class GpuConfig(_Model):
    max_total_gpus: Annotated[
        int,
        Field(
            ge=0,
            le=128,
            description="Cap on GPUs across all pools of the environment. At most 128 (16 eight-GPU nodes): "
            "a typo here must not authorise a five-figure hourly bill; raise the bound in a reviewed change.",
        ),
    ]
    pools: list[GpuPoolConfig] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _pools_fit_cap(self) -> GpuConfig:
        names = [p.name for p in self.pools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"pools: duplicate pool names {duplicates}")
        for i, first in enumerate(self.pools):
            for second in self.pools[i + 1 :]:
                shared = sorted(set(first.instance_types) & set(second.instance_types))
                alike = (first.capacity_type, first.labels, first.time_slicing_replicas) == (
                    second.capacity_type,
                    second.labels,
                    second.time_slicing_replicas,
                )
                if shared and alike:
                    raise ValueError(
                        f"pools: {first.name} and {second.name} both offer {shared} as {first.capacity_type} with "
                        "the same labels: a pod that does not name its pool could land in either, and the GPU "
                        "cap is split between them arbitrarily"
                    )
        # Karpenter limits each NodePool on its own; the pools' maxima must fit the environment cap
        # so that no combination of scale-ups can exceed it.
        total = sum(p.max_size * p.gpus_per_node for p in self.pools)
        if total > self.max_total_gpus:
            raise ValueError(
                f"pools: together the pools can reach {total} GPUs, above max_total_gpus ({self.max_total_gpus})"
            )
        return self


# --- The CPU model pool -------------------------------------------------------------------------------
# Every node carries the name of its pool under NODE_POOL_LABEL: `system` on the EKS managed node group that
# runs the platform (infra/aws/cluster.py), the CPU model pool's name on its Karpenter nodes. CPU model
# pods select the pool by it (apps/components/cpu-model-pool); `mlplat validate` refuses one that does not.
SYSTEM_POOL_NAME = "system"
CPU_MODEL_POOL_NAME = "models-cpu"
# The CPU model pool's nodes are tainted `mlplat/pool=models-cpu:NoSchedule`: only pods that tolerate it
# (model pods, and DaemonSets that tolerate every taint) land there, never a platform service.
CPU_MODEL_POOL_TAINT_EFFECT = "NoSchedule"


class CpuPoolConfig(_Model):
    """The Karpenter NodePool CPU model pods run on, so models never compete with the platform for the
    system node group. Sized per environment by its NodePool `limits` (CPU and memory across its nodes)."""

    instance_types: list[InstanceType] = Field(
        min_length=1,
        max_length=10,
        description="Instance types Karpenter may launch; each must be in infra/instance_types.py (so "
        "`mlplat validate` knows what a model pod can get on one node) and must not be a GPU type.",
    )
    capacity_type: Literal["spot", "on-demand"]
    allow_spot_in_prod: bool = Field(
        False,
        description="prod only: accept spot capacity (a reclaimed node takes serving replicas down). "
        "Without it the prod pool is on-demand.",
    )
    max_vcpus: Annotated[
        int,
        Field(
            ge=1,
            le=1024,
            description="NodePool limit on vCPUs across the pool's nodes. At most 1024: a typo must not "
            "authorise a fleet; raise the bound in a reviewed change.",
        ),
    ]
    max_memory_gib: Annotated[
        int, Field(ge=1, le=8192, description="NodePool limit on memory (GiB) across the pool's nodes.")
    ]
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = Field(
        description="Which nodes Karpenter may take away: only empty ones, or also underused ones "
        "(their pods move; prod apps keep a PodDisruptionBudget)."
    )
    consolidate_after: str = Field(
        pattern=r"^[0-9]{1,4}(s|m|h)$",
        description="How long a node stays empty or underused before Karpenter consolidates it, e.g. 5m.",
    )

    @field_validator("instance_types")
    @classmethod
    def _known_cpu_types(cls, types: list[str]) -> list[str]:
        gpu = [t for t in types if t.split(".")[0] in GPU_INSTANCE_FAMILIES]
        if gpu:
            raise ValueError(f"{gpu} are GPU instance types: GPU nodes belong to gpu.pools")
        unknown = [t for t in types if t not in NODE_SHAPES]
        if unknown:
            raise ValueError(
                f"{unknown} are not in infra/instance_types.py NODE_SHAPES: add their vCPUs, memory and ENIs "
                "(with the source) so model pods can be checked against them"
            )
        duplicates = sorted({t for t in types if types.count(t) > 1})
        if duplicates:
            raise ValueError(f"instance types {duplicates} are listed twice")
        return types

    @model_validator(mode="after")
    def _limits_hold_a_node(self) -> CpuPoolConfig:
        # Karpenter launches no node that would take the pool past its limits: limits below the largest
        # type leave that type unusable, and every pod that needs it Pending.
        largest = max((NODE_SHAPES[t] for t in self.instance_types), key=lambda n: (n.vcpus, n.memory_gib))
        if self.max_vcpus < largest.vcpus:
            raise ValueError(
                f"max_vcpus ({self.max_vcpus}) is below one node of the largest type ({largest.vcpus})"
            )
        if self.max_memory_gib < largest.memory_gib:
            raise ValueError(
                f"max_memory_gib ({self.max_memory_gib}) is below one node of the largest type "
                f"({largest.memory_gib} GiB)"
            )
        return self


class StorageConfig(_Model):
    encrypted: bool = Field(True, description="KMS-encrypt EBS volumes of every StorageClass.")
    default_volume_type: Literal["gp3"] = "gp3"


class MinioConfig(_Model):
    mode: Literal["standalone", "distributed"]
    replicas: Annotated[
        int,
        Field(
            ge=1,
            le=16,
            description="1 (standalone) or 4 to 16 (distributed, one drive per replica): MinIO's erasure sets "
            "hold 2 to 16 drives (https://min.io/docs/minio/linux/operations/concepts/erasure-coding.html).",
        ),
    ]
    volume_size_gi: VolumeGi

    @model_validator(mode="after")
    def _erasure_set(self) -> MinioConfig:
        if self.mode == "standalone" and self.replicas != 1:
            raise ValueError("replicas: standalone MinIO runs exactly 1 replica")
        if self.mode == "distributed" and self.replicas < 4:
            raise ValueError("replicas: distributed MinIO needs at least 4 replicas for erasure coding")
        return self


class VaultConfig(_Model):
    replicas: Annotated[
        int, Field(ge=1, le=7, description="Odd Raft quorum; beyond 7 writes only get slower.")
    ]

    @field_validator("replicas")
    @classmethod
    def _odd_quorum(cls, replicas: int) -> int:
        if replicas % 2 == 0:
            raise ValueError("Raft needs an odd number of replicas for a quorum")
        return replicas


class MlflowConfig(_Model):
    replicas: Annotated[
        int,
        Field(ge=1, le=10, description="At most 10: the tracking server is a thin layer over PostgreSQL."),
    ]
    postgres_volume_size_gi: VolumeGi


RETENTION_UNIT_DAYS = {"h": 1 / 24, "d": 1, "w": 7}
MAX_RETENTION_DAYS = 366


class MonitoringConfig(_Model):
    retention: str = Field(
        pattern=r"^[0-9]{1,4}[dhw]$",
        description=f"Prometheus retention, e.g. 15d; at most {MAX_RETENTION_DAYS} days: "
        "local TSDB on one EBS volume is for weeks, not years.",
    )
    prometheus_volume_size_gi: VolumeGi
    prometheus_replicas: Annotated[
        int, Field(ge=1, le=3, description="At most 3: every replica scrapes everything; two are already HA.")
    ]

    @field_validator("retention")
    @classmethod
    def _bounded_retention(cls, retention: str) -> str:
        if int(retention[:-1]) * RETENTION_UNIT_DAYS[retention[-1]] > MAX_RETENTION_DAYS:
            raise ValueError(f"{retention} is longer than {MAX_RETENTION_DAYS} days")
        return retention


# Inference logs hold what users sent to models. Prod keeps them at least this long: a quality or
# drift incident must be investigable against the inputs of the last month (the monthly model
# review looks back 30 days), and prod never keeps less evidence than dev.
PROD_MIN_INFERENCE_LOG_DAYS = 30
MAX_INFERENCE_LOG_DAYS = 365


class InferenceLogsConfig(_Model):
    retention_days: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_INFERENCE_LOG_DAYS,
            description="Days the logs bucket keeps each inference log object (MinIO lifecycle expiry); "
            f"at most {MAX_INFERENCE_LOG_DAYS}: logs of personal requests are not an archive. Prod keeps "
            f"at least {PROD_MIN_INFERENCE_LOG_DAYS}.",
        ),
    ]
    drift_jobs: bool = Field(
        False,
        description="Run the hourly drift job of every monitored app. Off until the mlplat-monitor image "
        "(infra/versions.py) is published: the CronJobs exist but stay suspended, so nothing pulls an "
        "image that is not there.",
    )


class OidcConfig(_Model):
    issuer: str = Field(pattern=r"^https://", description="OIDC issuer URL of the identity provider.")
    client_id: str = Field(min_length=1)


class ArgoCdOidcConfig(OidcConfig):
    # One line of Argo CD's Casbin policy.csv (`g, <group>, role:admin`): no comma, space or newline.
    admin_group: str = Field(
        pattern=r"^[A-Za-z0-9._:/@-]{1,200}$",
        description="The identity provider's group (its `groups` claim) whose members administer Argo CD "
        "(built-in `role:admin`: sync, delete, settings). Everyone else who signs in reads only.",
    )


class ArgoCdConfig(_Model):
    ha: bool = Field(description="Redis HA and replicated controllers.")
    oidc: ArgoCdOidcConfig | None = Field(
        None, description="SSO; when set, the local admin account is disabled and `admin_group` administers."
    )
    repo_url: str = Field(
        pattern=r"^(https://[a-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._/-]+|git@[a-z0-9.-]+:[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)$",
        description="Git repository Argo CD syncs apps from (https:// or git@host:path, no credentials in "
        "it: a private repository's come from Vault, `repo_private`).",
    )
    repo_private: bool = Field(
        False,
        description="The repository needs credentials: Argo CD reads them from Vault (kv "
        "platform/argocd/repository, a token or a GitHub App: docs/runbooks/vault.md section 10) as a "
        "repository Secret in its namespace (infra/services/argocd.py). Off: it clones anonymously, "
        "a public repository, nothing to seed.",
    )
    target_revision: str = Field(
        "main", pattern=r"^[A-Za-z0-9._/-]{1,100}$", description="Branch, tag or commit Argo CD tracks."
    )
    prune_models: bool = Field(
        False,
        description="Let automation delete model objects: a sync prunes what git no longer holds, and the "
        "ApplicationSet deletes the Application of an overlay that is gone (platform/argocd/models.yaml). "
        "Off: removals are a manual sync. Never in prod.",
    )

    @model_validator(mode="after")
    def _private_over_https(self) -> ArgoCdConfig:
        # Argo CD's pods reach public addresses on TCP 443 only (infra/services/network_policies.py,
        # `PUBLIC_HTTPS` for ARGOCD_OUTBOUND); a git@ address is ssh, port 22, and an https address
        # with another port is as unreachable.
        if not self.repo_private:
            return self
        if not self.repo_url.startswith("https://"):
            raise ValueError(
                f"repo_url: {self.repo_url!r}: a private repository is read over https (a token or a GitHub "
                "App from Vault): Argo CD's NetworkPolicy opens TCP 443 only, not ssh's 22"
            )
        port = urlparse(self.repo_url).port
        if port not in (None, 443):
            raise ValueError(
                f"repo_url: {self.repo_url!r}: port {port}: Argo CD's NetworkPolicy opens TCP 443 only, to "
                "public addresses; serve the repository on 443"
            )
        return self


# Where retraining runs: the first environment of the promotion order, where new versions enter. A
# pipeline registers its version in the MLflow and model store of the cluster it runs in, then proposes
# that number to this environment's overlay (`propose --env dev` in apps/*/training/workflowtemplate.yaml);
# run in another cluster, it would pin dev to a version dev's registry and store do not hold (or hold as
# another model). Each environment has its own registry: the others get the version by promotion.
RETRAINING_ENVIRONMENT: Final[Environment] = ENVIRONMENTS[0]

NOT_A_BRANCH = re.compile(r"^([0-9a-f]{40}|HEAD)$")  # a commit, or whatever HEAD is
GITHUB_HTTPS_REPOSITORY = re.compile(r"^https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?(\.git)?$")


class ArgoWorkflowsConfig(_Model):
    """The workflow engine the retraining pipelines run on (README "Retraining")."""

    enabled: bool = Field(
        False,
        description="Install Argo Workflows and the apps' training pipelines (apps/<app>/training/). "
        f"{RETRAINING_ENVIRONMENT} only: the pipelines register in this cluster's MLflow and propose the "
        f"version to {RETRAINING_ENVIRONMENT}.",
    )
    # `server` mode is not offered: it hands every caller the UI's own ServiceAccount
    # (https://argo-workflows.readthedocs.io/en/stable/argo-server-auth-mode/).
    sso: OidcConfig | None = Field(
        None,
        description="Sign in to the UI through the OIDC provider (auth mode `sso`; the client secret is read "
        "from Vault, platform/argo-workflows/sso). Unset: auth mode `client`, a caller's own Kubernetes "
        "token.",
    )
    schedules: bool = Field(
        False,
        description="Run the apps' scheduled retraining (their CronWorkflows) as well as the alert-triggered "
        "one. Off: the CronWorkflows exist suspended (alerts and hand runs only).",
    )


class ArgoEventsConfig(_Model):
    enabled: bool = Field(
        False,
        description="Install Argo Events: Alertmanager's drift and quality alerts start the app's retraining "
        f"pipeline. Needs services.argo_workflows.enabled, so {RETRAINING_ENVIRONMENT} only.",
    )


class ServicesConfig(_Model):
    minio: MinioConfig
    vault: VaultConfig
    mlflow: MlflowConfig
    monitoring: MonitoringConfig
    argocd: ArgoCdConfig
    inference_logs: InferenceLogsConfig
    argo_workflows: ArgoWorkflowsConfig = Field(default_factory=ArgoWorkflowsConfig)
    argo_events: ArgoEventsConfig = Field(default_factory=ArgoEventsConfig)

    @model_validator(mode="after")
    def _events_submit_workflows(self) -> ServicesConfig:
        if self.argo_events.enabled and not self.argo_workflows.enabled:
            raise ValueError(
                "argo_events.enabled: its Sensors submit Argo Workflows; enable services.argo_workflows too"
            )
        return self

    @model_validator(mode="after")
    def _pipelines_reach_their_repository(self) -> ServicesConfig:
        # The pipelines clone the repository with the retraining token as an https password (Argo's git
        # artifact `usernameSecret`/`passwordSecret`, which go-git refuses for an ssh address) and their
        # `open-pr` step pushes over https and opens the pull request through GitHub's API.
        if self.argo_workflows.enabled and not GITHUB_HTTPS_REPOSITORY.match(
            https_address(self.argocd.repo_url)
        ):
            raise ValueError(
                f"argocd.repo_url: {self.argocd.repo_url!r}: the retraining pipelines (argo_workflows.enabled) "
                "clone and push over https to GitHub: write https://github.com/<owner>/<repo>.git "
                "(or git@github.com:<owner>/<repo>.git, which they reach over https)"
            )
        # Their pull request's base is the revision Argo CD tracks: GitHub refuses a base that is no branch.
        if self.argo_workflows.enabled and NOT_A_BRANCH.match(self.argocd.target_revision):
            raise ValueError(
                f"argocd.target_revision: {self.argocd.target_revision!r}: the retraining pipelines "
                "(argo_workflows.enabled) open pull requests against it: name a branch"
            )
        return self


class AppsConfig(_Model):
    """Limits the platform puts on model apps; `mlplat validate` enforces them per environment."""

    max_replicas_per_app: Annotated[
        int, Field(ge=1, le=100, description="At most 100: one model app may not claim a whole cluster.")
    ]
    min_replicas: Annotated[int, Field(ge=1)] = Field(description="Floor on every model's minReplicas.")
    allowed_registries: list[Registry] = Field(
        min_length=1,
        max_length=20,
        description="Registries (or registry/organisation prefixes) custom images may use; a public "
        "registry's bare host is refused: it would admit anyone's images.",
    )

    @field_validator("allowed_registries")
    @classmethod
    def _no_bare_public_registry(cls, registries: list[str]) -> list[str]:
        bare = [r for r in registries if r in PUBLIC_REGISTRY_HOSTS]
        if bare:
            raise ValueError(
                f"{bare} admit every image on a public registry; name an organisation, e.g. docker.io/kserve"
            )
        return registries

    scale_to_zero: bool = Field(
        False,
        description="Let an app's KEDA ScaledObject take it to 0 replicas when idle (minReplicaCount 0): "
        "the first request after that waits for a GPU node, the image and the model (apps/README.md). "
        "Never in prod.",
    )
    model_store_uri: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.-]+[a-z0-9]$",
        description=f"Bucket in MinIO holding model artifacts: {MODEL_STORE_URI}, the store every "
        "manifest's storageUri and every registered version's source names (infra/contract.py).",
    )

    @field_validator("model_store_uri")
    @classmethod
    def _the_contract_store(cls, uri: str) -> str:
        # Another bucket here would make MinIO serve a store no manifest or registry entry points at.
        if uri != MODEL_STORE_URI:
            raise ValueError(f"must be {MODEL_STORE_URI}: apps/ manifests and the registry name that store")
        return uri

    @model_validator(mode="after")
    def _replica_range(self) -> AppsConfig:
        _check_range(self.min_replicas, self.max_replicas_per_app, "min_replicas", "max_replicas_per_app")
        return self


class CostConfig(_Model):
    """The environment's budget, which `mlplat plan` refuses to exceed (`mlplat cost` prices it)."""

    max_monthly_usd: Annotated[
        float,
        Field(
            gt=0,
            le=1_000_000,
            description="Ceiling on the environment's monthly cost with every pool at its maximum (priced "
            "from infra/cost_prices.yaml); the plan of a change that could cost more is refused.",
        ),
    ]
    log_ingest_gib_per_month: Annotated[
        int,
        Field(
            ge=0,
            le=100_000,
            description="Assumed CloudWatch Logs ingestion of the environment's log groups (EKS control plane "
            "logs, audit included), GiB a month: it depends on traffic, so it is stated, not measured.",
        ),
    ]


# A DNS name of at least two lower-case labels (RFC 1123), e.g. dev.models.example.internal.
DnsName = Annotated[
    str,
    Field(
        max_length=200, pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
    ),
]


class GatewayConfig(_Model):
    """The inference gateway (docs/adr/0005-inference-gateway.md): where models are served, and who
    can reach the NLB in front of it."""

    domain: DnsName = Field(
        description="DNS suffix models are served under (`<app>.<domain>`); the gateway's TLS certificate "
        "covers `*.<domain>`."
    )
    scheme: Literal["internal", "internet-facing"] = Field(
        "internal",
        description="The NLB's scheme: `internal` (reachable from the VPC and what is peered or routed to it) "
        "unless set otherwise here.",
    )
    source_ranges: list[IPv4Network] = _short_list(
        20,
        "Client ranges an internet-facing NLB admits (its security group rules); required when "
        "`scheme` is internet-facing, public ranges only.",
    )

    @model_validator(mode="after")
    def _public_only_with_an_allowlist(self) -> GatewayConfig:
        if self.scheme == "internet-facing":
            if not self.source_ranges:
                raise ValueError("source_ranges: an internet-facing gateway needs a client allowlist")
            wide = [str(c) for c in self.source_ranges if c.prefixlen == 0]
            private = [str(c) for c in self.source_ranges if c.prefixlen and not c.is_global]
            if wide:
                raise ValueError(f"source_ranges: {wide} admits the whole internet; name the client ranges")
            if private:
                raise ValueError(
                    f"source_ranges: {private} are private or reserved; an internet-facing NLB sees public sources"
                )
        elif self.source_ranges:
            raise ValueError("source_ranges: only an internet-facing gateway takes an allowlist")
        return self


class StackConfig(_Model):
    environment: Environment = Field(
        description="Must equal the stack name, which is what decides the rules that apply."
    )
    protect_stateful: bool = Field(description="protect/retain_on_delete on everything holding state.")
    aws: AwsConfig
    network: NetworkConfig
    cluster: ClusterConfig
    system_pool: SystemPoolConfig
    gpu: GpuConfig
    cpu_pool: CpuPoolConfig
    storage: StorageConfig = Field(default_factory=StorageConfig)
    services: ServicesConfig
    apps: AppsConfig
    cost: CostConfig | None = Field(None, description="Budget of the environment; none means no ceiling.")
    gateway: GatewayConfig

    @model_validator(mode="after")
    def _whole_stack_rules(self, info: ValidationInfo) -> StackConfig:
        stack = (info.context or {}).get("stack")
        problems = [
            *self._identity_problems(stack),
            *self._retraining_problems(stack),
            *self._prod_problems(stack),
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _identity_problems(self, stack: str | None) -> list[str]:
        problems = []
        if stack is not None and self.environment != stack:
            problems.append(
                f"environment: says {self.environment!r} in stack {stack!r}; the stack name decides which "
                "environment's rules apply, so the two must agree"
            )
        tagged = self.aws.tags.get(ENVIRONMENT_LABEL)
        if tagged is not None and tagged != self.environment:
            problems.append(
                f"aws.tags: {ENVIRONMENT_LABEL}={tagged!r} contradicts environment {self.environment!r}; "
                "IAM conditions and cost reports trust this tag"
            )
        runner = self.cluster.endpoint.runner
        if runner is not None and runner.vpc_cidr.overlaps(self.network.vpc_cidr):
            problems.append(
                f"cluster.endpoint.runner.vpc_cidr: {runner.vpc_cidr} overlaps network.vpc_cidr "
                f"{self.network.vpc_cidr}; AWS refuses to peer VPCs whose ranges overlap"
            )
        if any(p.name == CPU_MODEL_POOL_NAME for p in self.gpu.pools):
            problems.append(
                f"gpu.pools: {CPU_MODEL_POOL_NAME!r} is the CPU model pool's NodePool name; name the GPU pool otherwise"
            )
        foreign = [z for z in self.network.availability_zones if z[:-1] != self.aws.region]
        if foreign:
            problems.append(f"network.availability_zones: {foreign} are not zones of {self.aws.region}")
        return problems

    def _retraining_problems(self, stack: str | None) -> list[str]:
        """Retraining is refused outside RETRAINING_ENVIRONMENT (see there): the stack name decides, as
        for prod's rules, and a direct call without one falls back to the declared environment."""
        environment = stack or self.environment
        if environment == RETRAINING_ENVIRONMENT:
            return []
        switches = {
            "services.argo_workflows.enabled": self.services.argo_workflows.enabled,
            "services.argo_events.enabled": self.services.argo_events.enabled,
        }
        return [
            f"{key}: retraining runs in {RETRAINING_ENVIRONMENT} only, not {environment}: a pipeline here "
            f"would register the version in {environment}'s MLflow and propose its number to "
            f"{RETRAINING_ENVIRONMENT}, whose registry and model store do not hold it; switch it off"
            for key, on in switches.items()
            if on
        ]

    def _prod_problems(self, stack: str | None) -> list[str]:
        # Either name makes it production (infra/contract.py PRODUCTION): the stack name decides (a prod
        # stack whose file says `dev` still gets prod's rules), and a direct call without a stack name
        # falls back to the declared one.
        if self.environment not in PRODUCTION and stack not in PRODUCTION:
            return []
        spot_pools = [
            p.name for p in self.gpu.pools if p.capacity_type == "spot" and not p.allow_spot_in_prod
        ]
        rules: list[tuple[bool, str]] = [
            (not self.cluster.endpoint.public, "cluster.endpoint.public: the prod API endpoint is private"),
            (self.storage.encrypted, "storage.encrypted: prod volumes are always encrypted"),
            (self.protect_stateful, "protect_stateful: prod state is protected from deletion"),
            (self.network.nat_gateways == "per_az", "network.nat_gateways: prod needs one NAT per zone"),
            (self.services.vault.replicas >= 3, "services.vault.replicas: prod Raft needs at least 3"),
            (self.services.minio.mode == "distributed", "services.minio.mode: prod MinIO is distributed"),
            (self.services.argocd.ha, "services.argocd.ha: prod Argo CD is highly available"),
            (
                not self.services.argocd.prune_models,
                "services.argocd.prune_models: prod models are never deleted by automation (removals are a manual sync)",
            ),
            (
                self.services.argocd.oidc is not None,
                "services.argocd.oidc: prod Argo CD signs in through SSO (the local admin is disabled)",
            ),
            (
                not spot_pools,
                f"gpu.pools: {spot_pools} run on spot in prod; use on-demand or set allow_spot_in_prod: true",
            ),
            (
                self.cpu_pool.capacity_type == "on-demand" or self.cpu_pool.allow_spot_in_prod,
                "cpu_pool.capacity_type: the prod model pool runs on spot; use on-demand or set allow_spot_in_prod: true",
            ),
            (self.apps.min_replicas >= 2, "apps.min_replicas: prod runs at least 2 replicas of a model"),
            (self.cost is not None, "cost.max_monthly_usd: prod has a budget the plan is held to"),
            (not self.apps.scale_to_zero, "apps.scale_to_zero: prod models never scale to zero"),
            (
                self.services.inference_logs.retention_days >= PROD_MIN_INFERENCE_LOG_DAYS,
                f"services.inference_logs.retention_days: prod keeps inference logs at least "
                f"{PROD_MIN_INFERENCE_LOG_DAYS} days",
            ),
        ]
        broken = [message for ok, message in rules if not ok]
        return ["prod may not weaken security or availability: " + "; ".join(broken)] if broken else []


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = f"{NAMESPACE}:"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += part if i == 0 else f".{part}"
    return path


def _decode(key: str, value: Any) -> Any:
    """Structured values arrive from the Pulumi CLI as JSON strings; plain strings stay strings."""
    if isinstance(value, str) and value[:1] in "{[":
        if len(value) > MAX_STACK_FILE_BYTES:
            raise ConfigError(
                "(engine)", [(f"{NAMESPACE}:{key}", f"value longer than {MAX_STACK_FILE_BYTES} bytes")]
            )
        try:
            decoded = json.loads(value, object_pairs_hook=_unique_json_object)
        except json.JSONDecodeError:
            return value
        except RecursionError:
            raise ConfigError("(engine)", [(f"{NAMESPACE}:{key}", "nested too deeply")]) from None
        except _DuplicateKey as err:
            raise ConfigError("(engine)", [(f"{NAMESPACE}:{key}", f"duplicate key {err.key!r}")]) from None
        depth = _depth(decoded)
        if depth > MAX_NESTING:
            raise ConfigError(
                "(engine)", [(f"{NAMESPACE}:{key}", f"nested {depth} levels, more than {MAX_NESTING}")]
            )
        return decoded
    return value


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _depth(value: Any) -> int:
    """Nesting depth of decoded JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def load_stack_config(values: Mapping[str, Any], source: str, stack: str) -> StackConfig:
    """Validate the `mlplat:` keys of stack `stack` (namespace already stripped) into a StackConfig.

    The stack name, not the file's own `environment` key, decides which environment this is: a prod
    stack whose file declares `dev` is refused instead of skipping prod's rules.
    """
    if stack not in ENVIRONMENTS:
        raise ConfigError(source, [("(stack)", f"unknown stack {stack!r}; choose one of {ENVIRONMENTS}")])
    try:
        decoded = {key: _decode(key, value) for key, value in values.items()}
    except ConfigError as err:
        raise ConfigError(source, err.problems) from None
    try:
        return StackConfig.model_validate(decoded, context={"stack": stack})
    except ValidationError as err:
        problems = [(_key_path(e["loc"]), _reason(e)) for e in err.errors()]
        raise ConfigError(source, problems) from None


def _reason(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return re.sub(r"^(Value error|Assertion failed), ", "", message)


def stack_file(environment: str) -> Path:
    return STACK_DIR / f"Pulumi.{environment}.yaml"


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `mlplat:` keys of a Pulumi stack file; any key outside `mlplat:`/`pulumi:` is an error.

    The file is bounded (size, nesting, no aliases) before it is built and refused on duplicate keys:
    `mlplat plan`, `mlplat validate` and the Pulumi program all read it through here.
    """
    document = parse_stack_yaml(path)
    config = (document or {}).get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(str(path), [("config", "the stack file needs a `config:` mapping")])
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace == NAMESPACE and name:
            if isinstance(value, dict) and "secure" in value and len(value) == 1:
                problems.append((str(key), "secrets do not belong in stack config; keep them in Vault"))
            values[name] = value
        elif namespace != "pulumi":
            problems.append((str(key), f"unknown key: the program reads only `{NAMESPACE}:` keys"))
    if problems:
        raise ConfigError(str(path), problems)
    return values


def load_environment(environment: str) -> StackConfig:
    """Read and validate one environment's stack file (used by the CLI and the tests)."""
    if environment not in ENVIRONMENTS:
        raise ConfigError(environment, [("(stack)", f"unknown environment; choose one of {ENVIRONMENTS}")])
    path = stack_file(environment)
    return load_stack_config(read_stack_file(path), str(path), environment)
