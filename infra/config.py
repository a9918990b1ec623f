"""Typed stack configuration: read once from `environments/Pulumi.<env>.yaml`, validated, handed down.

Every knob an environment can turn lives here with a description. A bad value stops the program
before any resource is declared, with an error naming the key path (`mlplat:cluster.endpoint.public`)
and the reason. The same models are read by `mlplat validate` (capacity, replica caps) so the
platform and the checks of model apps can never disagree about an environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from ipaddress import IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from infra import versions

NAMESPACE = "mlplat"
ENVIRONMENTS = ("dev", "staging", "prod")
STACK_DIR = Path(__file__).resolve().parent.parent / "environments"

Name = Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")]
RoleArn = Annotated[str, Field(pattern=r"^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$")]
Quantity = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    """Frozen, strict about unknown keys: a misspelled knob is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _check_range(low: int, high: int, low_name: str, high_name: str) -> None:
    if low > high:
        raise ValueError(f"{low_name} ({low}) must not exceed {high_name} ({high})")


class AwsConfig(_Model):
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", description="AWS region of the stack.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags added to every AWS resource.")


class NetworkConfig(_Model):
    vpc_cidr: IPv4Network = Field(description="VPC address range; split into per-zone subnets.")
    availability_zones: list[str] = Field(min_length=3, max_length=3, description="Exactly three zones.")
    nat_gateways: Literal["single", "per_az"] = Field(
        description="One NAT gateway (cheap, one zone's outage cuts egress) or one per zone (HA)."
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _large_enough(cls, cidr: IPv4Network) -> IPv4Network:
        if cidr.prefixlen > 18:
            raise ValueError("must be /18 or larger: six subnets and pod IPs need the room")
        return cidr

    @field_validator("availability_zones")
    @classmethod
    def _distinct_zones(cls, zones: list[str]) -> list[str]:
        if len(set(zones)) != len(zones):
            raise ValueError("availability zones must be distinct")
        return zones


class EndpointConfig(_Model):
    public: bool = Field(False, description="Expose the Kubernetes API publicly (never in prod).")
    public_access_cidrs: list[IPv4Network] = Field(
        default_factory=list, description="Allowlist for the public endpoint; required when public."
    )

    @model_validator(mode="after")
    def _allowlist_when_public(self) -> EndpointConfig:
        if self.public and not self.public_access_cidrs:
            raise ValueError("public_access_cidrs: a public endpoint needs a CIDR allowlist")
        if any(c.prefixlen == 0 for c in self.public_access_cidrs):
            raise ValueError("public_access_cidrs: 0.0.0.0/0 is not an allowlist")
        return self


class ClusterConfig(_Model):
    kubernetes_version: str = Field(description="EKS minor version; add-on pins exist for it in versions.py.")
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    admin_role_arns: list[RoleArn] = Field(
        default_factory=list,
        description="IAM roles granted cluster-admin through EKS access entries (platform admins, the CI deploy role).",
    )
    viewer_role_arns: list[RoleArn] = Field(
        default_factory=list,
        description="IAM roles granted read-only access incl. Secrets (AmazonEKSAdminViewPolicy): the CI preview "
        "role, which must read Helm release state to preview.",
    )

    @field_validator("kubernetes_version")
    @classmethod
    def _pinned_version(cls, version: str) -> str:
        if version not in versions.EKS_ADDONS:
            supported = ", ".join(sorted(versions.EKS_ADDONS))
            raise ValueError(f"no add-on pins for Kubernetes {version!r} (pinned: {supported})")
        return version


class SystemPoolConfig(_Model):
    instance_types: list[str] = Field(min_length=1, description="On-demand types for platform services.")
    min_size: Quantity
    desired_size: Quantity
    max_size: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _sizes(self) -> SystemPoolConfig:
        _check_range(self.min_size, self.desired_size, "min_size", "desired_size")
        _check_range(self.desired_size, self.max_size, "desired_size", "max_size")
        return self


class GpuPoolConfig(_Model):
    name: Name = Field(description="Pool name; nodes carry the label mlplat/gpu-pool=<name>.")
    instance_types: list[str] = Field(min_length=1, description="GPU instance types, e.g. g5.xlarge.")
    capacity_type: Literal["spot", "on-demand"]
    min_size: Quantity
    max_size: Annotated[int, Field(ge=0)]
    gpus_per_node: Annotated[int, Field(ge=1, le=16)]
    gpu_memory_gib: Annotated[int, Field(ge=1, description="Memory of one GPU, for capacity checks.")]
    labels: dict[str, str] = Field(default_factory=dict, description="Extra node labels.")

    @model_validator(mode="after")
    def _sizes(self) -> GpuPoolConfig:
        _check_range(self.min_size, self.max_size, "min_size", "max_size")
        if self.min_size:
            # Karpenter has no node minimum; pretending to honour one would be a lie (ADR 0001).
            raise ValueError("min_size: GPU pools rest at zero nodes; a warm minimum is not supported yet")
        return self


class GpuConfig(_Model):
    max_total_gpus: Quantity = Field(description="Cap on GPUs across all pools of the environment.")
    pools: list[GpuPoolConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _pools_fit_cap(self) -> GpuConfig:
        names = [p.name for p in self.pools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"pools: duplicate pool names {duplicates}")
        # Karpenter limits each NodePool on its own; the pools' maxima must fit the environment cap
        # so that no combination of scale-ups can exceed it.
        total = sum(p.max_size * p.gpus_per_node for p in self.pools)
        if total > self.max_total_gpus:
            raise ValueError(
                f"pools: together the pools can reach {total} GPUs, above max_total_gpus ({self.max_total_gpus})"
            )
        return self


class StorageConfig(_Model):
    encrypted: bool = Field(True, description="KMS-encrypt EBS volumes of every StorageClass.")
    default_volume_type: Literal["gp3"] = "gp3"


class MinioConfig(_Model):
    mode: Literal["standalone", "distributed"]
    replicas: Annotated[int, Field(ge=1)]
    volume_size_gi: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _erasure_set(self) -> MinioConfig:
        if self.mode == "standalone" and self.replicas != 1:
            raise ValueError("replicas: standalone MinIO runs exactly 1 replica")
        if self.mode == "distributed" and self.replicas < 4:
            raise ValueError("replicas: distributed MinIO needs at least 4 replicas for erasure coding")
        return self


class VaultConfig(_Model):
    replicas: Annotated[int, Field(ge=1, le=7)]

    @field_validator("replicas")
    @classmethod
    def _odd_quorum(cls, replicas: int) -> int:
        if replicas % 2 == 0:
            raise ValueError("Raft needs an odd number of replicas for a quorum")
        return replicas


class MlflowConfig(_Model):
    replicas: Annotated[int, Field(ge=1)]
    postgres_volume_size_gi: Annotated[int, Field(ge=1)]


class MonitoringConfig(_Model):
    retention: str = Field(pattern=r"^\d+[dhw]$", description="Prometheus retention, e.g. 15d.")
    prometheus_volume_size_gi: Annotated[int, Field(ge=1)]
    prometheus_replicas: Annotated[int, Field(ge=1)]


class OidcConfig(_Model):
    issuer: str = Field(pattern=r"^https://", description="OIDC issuer URL of the identity provider.")
    client_id: str = Field(min_length=1)


class ArgoCdConfig(_Model):
    ha: bool = Field(description="Redis HA and replicated controllers.")
    oidc: OidcConfig | None = Field(None, description="SSO; when set, the local admin account is disabled.")
    repo_url: str = Field(pattern=r"^(https://|git@)", description="Git repository Argo CD syncs apps from.")
    target_revision: str = "main"


class ServicesConfig(_Model):
    minio: MinioConfig
    vault: VaultConfig
    mlflow: MlflowConfig
    monitoring: MonitoringConfig
    argocd: ArgoCdConfig


class AppsConfig(_Model):
    """Limits the platform puts on model apps; `mlplat validate` enforces them per environment."""

    max_replicas_per_app: Annotated[int, Field(ge=1)]
    min_replicas: Annotated[int, Field(ge=1)] = Field(description="Floor on every model's minReplicas.")
    allowed_registries: list[str] = Field(min_length=1, description="Registries custom images may use.")
    model_store_uri: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.-]+[a-z0-9]$", description="Bucket in MinIO holding model artifacts."
    )

    @model_validator(mode="after")
    def _replica_range(self) -> AppsConfig:
        _check_range(self.min_replicas, self.max_replicas_per_app, "min_replicas", "max_replicas_per_app")
        return self


class StackConfig(_Model):
    environment: Literal["dev", "staging", "prod"]
    protect_stateful: bool = Field(description="protect/retain_on_delete on everything holding state.")
    aws: AwsConfig
    network: NetworkConfig
    cluster: ClusterConfig
    system_pool: SystemPoolConfig
    gpu: GpuConfig
    storage: StorageConfig = Field(default_factory=StorageConfig)
    services: ServicesConfig
    apps: AppsConfig

    @model_validator(mode="after")
    def _prod_is_never_weaker(self) -> StackConfig:
        if self.environment != "prod":
            return self
        rules: list[tuple[bool, str]] = [
            (not self.cluster.endpoint.public, "cluster.endpoint.public: the prod API endpoint is private"),
            (self.storage.encrypted, "storage.encrypted: prod volumes are always encrypted"),
            (self.protect_stateful, "protect_stateful: prod state is protected from deletion"),
            (self.network.nat_gateways == "per_az", "network.nat_gateways: prod needs one NAT per zone"),
            (self.services.vault.replicas >= 3, "services.vault.replicas: prod Raft needs at least 3"),
            (self.services.minio.mode == "distributed", "services.minio.mode: prod MinIO is distributed"),
            (self.services.argocd.ha, "services.argocd.ha: prod Argo CD is highly available"),
            (self.apps.min_replicas >= 2, "apps.min_replicas: prod runs at least 2 replicas of a model"),
        ]
        broken = [message for ok, message in rules if not ok]
        if broken:
            raise ValueError("prod may not weaken security or availability: " + "; ".join(broken))
        return self


class ConfigError(Exception):
    """A stack configuration problem, each named by its key path."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"  {path}: {reason}" for path, reason in problems]
        super().__init__(f"invalid stack configuration in {source}:\n" + "\n".join(lines))


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = f"{NAMESPACE}:"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += part if i == 0 else f".{part}"
    return path


def _decode(value: Any) -> Any:
    """Structured values arrive from the Pulumi CLI as JSON strings; plain strings stay strings."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def load_stack_config(values: Mapping[str, Any], source: str) -> StackConfig:
    """Validate the `mlplat:` keys of a stack (namespace already stripped) into a StackConfig."""
    decoded = {key: _decode(value) for key, value in values.items()}
    try:
        return StackConfig.model_validate(decoded)
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
    """The `mlplat:` keys of a Pulumi stack file; any key outside `mlplat:`/`pulumi:` is an error."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(str(path), [("(file)", f"cannot read: {err.strerror}")]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ConfigError(str(path), [(where, f"not valid YAML: {getattr(err, 'problem', err)}")]) from None
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
    config = load_stack_config(read_stack_file(path), str(path))
    if config.environment != environment:
        raise ConfigError(str(path), [(f"{NAMESPACE}:environment", f"says {config.environment!r}")])
    return config
