"""Stack configuration: every environment loads, and bad configs stop with the key path and reason."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import (
    ENVIRONMENTS,
    GPU_INSTANCE_FAMILIES,
    ConfigError,
    load_environment,
    load_stack_config,
    read_stack_file,
    stack_file,
)
from tests.support.program_refusal import program_refusal

URL_WITH_CREDENTIALS = "https://user:token@github.com/example-org/mlplat.git"  # pragma: allowlist secret


def _values(env: str) -> dict[str, Any]:
    return read_stack_file(stack_file(env))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_loads(env: str) -> None:
    config = load_environment(env)
    assert config.environment == env


def test_prod_is_at_least_as_strict_as_dev() -> None:
    dev, prod = load_environment("dev"), load_environment("prod")
    assert prod.services.vault.replicas >= 3 > dev.services.vault.replicas
    assert prod.network.nat_gateways == "per_az" and dev.network.nat_gateways == "single"
    assert not prod.cluster.endpoint.public and prod.protect_stateful and prod.storage.encrypted
    assert prod.apps.min_replicas >= 2


def _set(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = values
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


DELETE = object()

# (environment, key path to change, new value, expected key path in the error, expected reason)
BAD_CONFIGS = [
    ("dev", "network.nat_gatway", "single", "mlplat:network.nat_gatway", "unknown key"),
    ("dev", "system_pool.min_size", "two", "mlplat:system_pool.min_size", "valid integer"),
    ("dev", "system_pool.min_size", 5, "mlplat:system_pool", "min_size (5) must not exceed desired_size"),
    ("dev", "gpu.pools.0.min_size", 3, "mlplat:gpu.pools[0]", "min_size (3) must not exceed max_size (2)"),
    ("dev", "gpu.pools.0.min_size", 1, "mlplat:gpu.pools[0]", "a warm minimum is not supported"),
    ("dev", "gpu.pools.0.instance_types", [], "mlplat:gpu.pools[0].instance_types", "at least 1 item"),
    ("dev", "gpu.pools.0.gpus_per_node", 0, "mlplat:gpu.pools[0].gpus_per_node", "greater than or equal to 1"),
    ("dev", "gpu.pools.1.name", "gpu-small", "mlplat:gpu", "duplicate pool names ['gpu-small']"),
    ("dev", "gpu.max_total_gpus", 2, "mlplat:gpu", "together the pools can reach 7 GPUs"),
    ("dev", "gpu.pools.0.capacity_type", "reserved", "mlplat:gpu.pools[0].capacity_type", "'spot' or 'on-demand'"),
    ("dev", "cluster.endpoint", {"public": True}, "mlplat:cluster.endpoint", "needs a CIDR allowlist"),
    ("dev", "cluster.endpoint", {"public": True, "public_access_cidrs": ["0.0.0.0/0"]}, "mlplat:cluster.endpoint", "not an allowlist"),
    ("dev", "cluster.kubernetes_version", "1.20", "mlplat:cluster.kubernetes_version", "no add-on pins"),
    ("dev", "cluster.admin_role_arns", ["admin"], "mlplat:cluster.admin_role_arns[0]", "should match pattern"),
    ("dev", "network.availability_zones", ["eu-west-1a", "eu-west-1b"], "mlplat:network.availability_zones", "at least 3"),
    ("dev", "network.vpc_cidr", "10.0.0.0/24", "mlplat:network.vpc_cidr", "must be /18 or larger"),
    ("dev", "services.vault.replicas", 2, "mlplat:services.vault.replicas", "odd number"),
    ("dev", "services.minio.replicas", 2, "mlplat:services.minio", "standalone MinIO runs exactly 1"),
    ("dev", "apps.min_replicas", 9, "mlplat:apps", "min_replicas (9) must not exceed max_replicas_per_app"),
    ("dev", "apps", DELETE, "mlplat:apps", "required key is missing"),
    ("prod", "cluster.endpoint", {"public": True}, "mlplat:cluster.endpoint", "needs a CIDR allowlist"),
    ("prod", "cluster.endpoint", {"public": True, "public_access_cidrs": ["1.2.3.0/24"]}, "mlplat:", "cluster.endpoint.public: the prod API endpoint is private"),
    ("prod", "storage", {"encrypted": False}, "mlplat:", "storage.encrypted: prod volumes are always encrypted"),
    ("prod", "protect_stateful", False, "mlplat:", "protect_stateful: prod state is protected"),
    ("prod", "network.nat_gateways", "single", "mlplat:", "prod needs one NAT per zone"),
    ("prod", "services.vault.replicas", 1, "mlplat:", "prod Raft needs at least 3"),
    ("prod", "apps.min_replicas", 1, "mlplat:", "prod runs at least 2 replicas"),
    ("prod", "apps.scale_to_zero", True, "mlplat:", "apps.scale_to_zero: prod models never scale to zero"),
    ("dev", "gpu.pools.0.labels", {"nvidia.com/device-plugin.config": "time-sliced-8"}, "mlplat:gpu.pools[0].labels", "set time_slicing_replicas instead"),
    ("dev", "gpu.pools.0.time_slicing_replicas", 1, "mlplat:gpu.pools[0].time_slicing_replicas", "greater than or equal to 2"),
    ("dev", "gpu.pools.0.consolidation", "Always", "mlplat:gpu.pools[0].consolidation", "'WhenEmpty'"),
    # The inference gateway's NLB: internal unless the stack opens it, and then only to named clients.
    ("prod", "gateway.scheme", "internet-facing", "mlplat:gateway", "needs a client allowlist"),
    ("dev", "gateway", {"domain": "dev.models.example.com", "scheme": "internet-facing", "source_ranges": ["0.0.0.0/0"]}, "mlplat:gateway", "admits the whole internet"),
    ("dev", "gateway", {"domain": "dev.models.example.com", "scheme": "internet-facing", "source_ranges": ["10.0.0.0/8"]}, "mlplat:gateway", "private or reserved"),
    ("staging", "gateway", {"domain": "staging.models.example.com", "source_ranges": ["8.8.8.0/24"]}, "mlplat:gateway", "only an internet-facing gateway takes an allowlist"),
    ("dev", "gateway.scheme", "public", "mlplat:gateway.scheme", "'internal' or 'internet-facing'"),
    ("dev", "gateway.domain", "Models..internal", "mlplat:gateway.domain", "should match pattern"),
    ("dev", "gateway", DELETE, "mlplat:gateway", "required key is missing"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("env", "path", "value", "key", "reason"), BAD_CONFIGS, ids=[f"{c[0]}:{c[1]}" for c in BAD_CONFIGS]
)
def test_bad_config_names_key_and_reason(env: str, path: str, value: Any, key: str, reason: str) -> None:
    values = copy.deepcopy(_values(env))
    _set(values, path, value)
    with pytest.raises(ConfigError) as raised:
        load_stack_config(values, f"Pulumi.{env}.yaml", env)
    problems = raised.value.problems
    assert any(p.startswith(key) and reason in r for p, r in problems), (
        f"expected {key}: {reason!r}, got {problems}"
    )
    assert str(raised.value).startswith(f"invalid stack configuration in Pulumi.{env}.yaml")


def test_stack_file_rejects_foreign_keys_and_secrets(tmp_path: Path) -> None:
    document = yaml.safe_load(stack_file("dev").read_text())
    document["config"]["aws:region"] = "us-east-1"
    document["config"]["mlplat:db_password"] = {"secure": "AAABAD..."}
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as raised:
        read_stack_file(path)
    assert ("aws:region", "unknown key: the program reads only `mlplat:` keys") in raised.value.problems
    assert any(p == "mlplat:db_password" and "keep them in Vault" in r for p, r in raised.value.problems)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config:\n  mlplat:environment: dev\n  bad: [unclosed\n")
    with pytest.raises(ConfigError) as raised:
        read_stack_file(path)
    assert raised.value.problems[0][0].startswith("line ")


def test_program_stops_before_declaring_any_resource(tmp_path: Path, repo_root: Path) -> None:
    """A bad config under the real program: a clean error, no traceback, no resources."""
    outcome = program_refusal(repo_root, "dev", "values = {'environment': 'dev', 'network': {'cidr': 1}}")
    assert outcome.resources == 0
    assert "mlplat:network.cidr: unknown key" in outcome.error
    assert "mlplat:aws: required key is missing" in outcome.error


def _refused(env: str, values: dict[str, Any], stack: str | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as raised:
        load_stack_config(values, f"Pulumi.{env}.yaml", stack or env)
    assert "Traceback" not in str(raised.value)
    return raised.value.problems


def _changed(env: str, changes: dict[str, Any]) -> dict[str, Any]:
    values = copy.deepcopy(_values(env))
    for path, value in changes.items():
        _set(values, path, value)
    return values


PUBLIC = "cluster.endpoint"
POOL0 = "gpu.pools.0"

# Configs that bend the rules (issue: "a stack config that cannot be bent"), each named after its failure
# mode: (environment, {key path: new value}, expected key path in the error, expected reason). A role
# reused where it must not be is taken from the stack file, so the case still holds once an adopter has
# put their own accounts there.
RUNNER = "cluster.endpoint.runner"

BENT_CONFIGS = [
    pytest.param("dev", {"cluster.drift_role_arns": _values("dev")["cluster"]["viewer_role_arns"][:1]}, "mlplat:cluster", "is also a viewer (viewer_role_arns), which must not read Secrets", id="pull-request-preview-role-granted-secrets-as-drift-role"),
    pytest.param("staging", {"cluster.promote_role_arns": _values("staging")["cluster"]["admin_role_arns"][-1:]}, "mlplat:cluster", "is already listed in admin_role_arns; EKS gives a role one access entry", id="role-listed-twice-stops-pulumi-up-at-cluster-access"),
    pytest.param("staging", {RUNNER: DELETE}, "mlplat:cluster.endpoint", "a private endpoint is reached only from the peered runner VPC", id="private-endpoint-without-a-runner-is-unreachable-from-ci"),
    pytest.param("prod", {RUNNER: DELETE}, "mlplat:cluster.endpoint", "a private endpoint is reached only from the peered runner VPC", id="prod-endpoint-without-a-runner-is-undeployable"),
    pytest.param("dev", {f"{RUNNER}.vpc_cidr": "10.10.255.0/24"}, "mlplat:", "overlaps network.vpc_cidr 10.10.0.0/16; AWS refuses to peer", id="runner-vpc-inside-the-cluster-vpc-cannot-be-peered"),
    pytest.param("prod", {f"{RUNNER}.vpc_cidr": "10.0.0.0/8"}, "mlplat:cluster.endpoint.runner.vpc_cidr", "not a runner range", id="runner-range-no-vpc-can-have"),
    pytest.param("prod", {f"{RUNNER}.security_group_id": "sg-runner"}, "mlplat:cluster.endpoint.runner.security_group_id", "should match pattern", id="runner-group-that-is-not-a-security-group-id"),
    pytest.param("prod", {f"{RUNNER}.vpc_id": "rtb-0123456789abcdef0"}, "mlplat:cluster.endpoint.runner.vpc_id", "should match pattern", id="runner-route-table-id-given-as-its-vpc"),
    pytest.param("staging", {f"{RUNNER}.private_route_table_id": "rtb-0123456789ABCDEF0"}, "mlplat:cluster.endpoint.runner.private_route_table_id", "should match pattern", id="runner-route-table-id-in-upper-case-matches-nothing"),
    pytest.param("staging", {f"{PUBLIC}.public_access_cidrs": ["8.8.8.0/24"]}, "mlplat:cluster.endpoint", "public_access_cidrs: a private endpoint takes no allowlist", id="allowlist-on-a-private-endpoint-silently-ignored"),
    pytest.param("dev", {PUBLIC: {"public": True, "public_access_cidrs": ["0.0.0.0/1", "128.0.0.0/1"]}}, "mlplat:cluster.endpoint", "cover 4294967296 addresses, more than a /16", id="allowlist-of-two-halves-is-the-whole-internet"),
    pytest.param("dev", {PUBLIC: {"public": True, "public_access_cidrs": ["8.8.0.0/16", "9.9.9.0/24"]}}, "mlplat:cluster.endpoint", "cover 65792 addresses", id="allowlist-one-range-past-a-slash-16"),
    pytest.param("dev", {PUBLIC: {"public": True, "public_access_cidrs": ["10.0.0.0/8"]}}, "mlplat:cluster.endpoint", "10.0.0.0/8 is a private or reserved range", id="private-range-in-a-public-allowlist"),
    pytest.param("dev", {PUBLIC: {"public": True, "public_access_cidrs": ["203.0.113.0/24"]}}, "mlplat:cluster.endpoint", "203.0.113.0/24 is a private or reserved range", id="documentation-range-in-a-public-allowlist"),
    pytest.param("dev", {PUBLIC: {"public": True, "public_access_cidrs": ["100.64.0.0/10"]}}, "mlplat:cluster.endpoint", "is a private or reserved range", id="carrier-grade-nat-range-in-a-public-allowlist"),
    pytest.param("dev", {"network.vpc_cidr": "11.0.0.0/16"}, "mlplat:network.vpc_cidr", "outside the RFC 1918 private ranges", id="vpc-on-public-addresses"),
    pytest.param("dev", {"network.vpc_cidr": "172.32.0.0/16"}, "mlplat:network.vpc_cidr", "outside the RFC 1918", id="vpc-just-past-172-16-slash-12"),
    pytest.param("dev", {"network.vpc_cidr": "10.0.0.0/15"}, "mlplat:network.vpc_cidr", "must be /16 or smaller", id="vpc-larger-than-aws-allows"),
    pytest.param("dev", {"network.vpc_cidr": "10.10.0.0/19"}, "mlplat:network.vpc_cidr", "must be /18 or larger", id="vpc-one-bit-too-small"),
    pytest.param("dev", {"network.availability_zones": ["eu-west-1a", "eu-west-1b", "us-east-1c"]}, "mlplat:", "['us-east-1c'] are not zones of eu-west-1", id="zone-of-another-region"),
    pytest.param("dev", {"network.availability_zones": ["eu-west-1a", "eu-west-1\u200bb", "eu-west-1c"]}, "mlplat:network.availability_zones[1]", "should match pattern", id="zone-with-an-invisible-character"),
    pytest.param("dev", {"network.availability_zones": ["eu-west-1a", "eu-west-\u0661b", "eu-west-1c"]}, "mlplat:network.availability_zones[1]", "should match pattern", id="zone-with-a-non-ascii-digit"),
    pytest.param("dev", {"aws.region": "eu-west-\u0661"}, "mlplat:aws.region", "should match pattern", id="region-with-a-non-ascii-digit"),
    pytest.param("dev", {"network.availability_zones": ["eu-west-1a", "eu-west-1a", "eu-west-1b"]}, "mlplat:network.availability_zones", "must be distinct", id="the-same-zone-twice"),
    pytest.param("dev", {"cluster.admin_role_arns": ["arn:aws:iam::11111111111\u0661:role/admin"]}, "mlplat:cluster.admin_role_arns[0]", "should match pattern", id="role-arn-with-a-non-ascii-account-digit"),
    pytest.param("dev", {f"{POOL0}.max_size": 65}, "mlplat:gpu.pools[0].max_size", "less than or equal to 64", id="gpu-pool-unbounded"),
    pytest.param("dev", {f"{POOL0}.gpus_per_node": 9}, "mlplat:gpu.pools[0].gpus_per_node", "less than or equal to 8", id="more-gpus-per-node-than-any-instance-has"),
    pytest.param("dev", {"services.mlflow.postgres_volume_size_gi": 16385}, "mlplat:services.mlflow.postgres_volume_size_gi", "less than or equal to 16384", id="postgres-volume-beyond-ebs-maximum"),
    pytest.param("dev", {"services.monitoring.prometheus_volume_size_gi": 16385}, "mlplat:services.monitoring.prometheus_volume_size_gi", "less than or equal to 16384", id="prometheus-volume-beyond-ebs-maximum"),
    pytest.param("staging", {"services.minio.replicas": 3}, "mlplat:services.minio", "distributed MinIO needs at least 4 replicas", id="distributed-minio-below-four-replicas"),
    pytest.param("dev", {"services.monitoring.retention": "367d"}, "mlplat:services.monitoring.retention", "longer than 366 days", id="retention-past-a-year"),
    pytest.param("dev", {"services.monitoring.retention": "8785h"}, "mlplat:services.monitoring.retention", "longer than 366 days", id="retention-in-hours-one-hour-past-a-year"),
    pytest.param("dev", {"services.monitoring.retention": "53w"}, "mlplat:services.monitoring.retention", "longer than 366 days", id="retention-in-weeks-past-a-year"),
    pytest.param("dev", {"services.monitoring.retention": "99999999d"}, "mlplat:services.monitoring.retention", "should match pattern", id="retention-unbounded-digits"),
    pytest.param("dev", {"network.availability_zones": ["eu-west-1a", "eu-west-1b\n", "eu-west-1c"]}, "mlplat:network.availability_zones[1]", "should match pattern", id="zone-with-a-trailing-newline"),
    pytest.param("dev", {f"{POOL0}.labels": {"team": "nlp\n"}}, "mlplat:gpu.pools[0].labels", "not a valid label value", id="pool-label-value-with-a-trailing-newline"),
    pytest.param("dev", {"aws.tags": {"team": "x" * 257}}, "mlplat:aws.tags.team", "at most 256 characters", id="tag-value-longer-than-aws-allows"),
    pytest.param("dev", {"services.argocd.repo_url": URL_WITH_CREDENTIALS}, "mlplat:services.argocd.repo_url", "should match pattern", id="repo-url-carrying-credentials"),
    pytest.param("dev", {"apps.model_store_uri": "s3://another-bucket"}, "mlplat:apps.model_store_uri", "apps/ manifests and the registry name that store", id="model-store-no-manifest-points-at"),
    pytest.param("dev", {"services.argocd.target_revision": "main\n--upload-pack=x"}, "mlplat:services.argocd.target_revision", "should match pattern", id="target-revision-smuggling-a-second-line"),
    pytest.param("dev", {"services.vault.replicas": 9}, "mlplat:services.vault.replicas", "less than or equal to 7", id="vault-quorum-unbounded"),
    pytest.param("dev", {"apps.allowed_registries": ["docker.io"]}, "mlplat:apps.allowed_registries", "admit every image on a public registry", id="whole-public-registry-allowed"),
    pytest.param("dev", {"apps.allowed_registries": ["registry.mlplat.internal/ "]}, "mlplat:apps.allowed_registries[0]", "should match pattern", id="malformed-registry-prefix"),
    pytest.param("dev", {"environment": "staging"}, "mlplat:", "environment: says 'staging' in stack 'dev'", id="stack-declares-another-environment"),
    pytest.param("dev", {"aws.tags": {"mlplat/environment": "prod"}}, "mlplat:", "mlplat/environment='prod' contradicts environment 'dev'", id="environment-tag-contradicts-the-stack"),
    pytest.param("dev", {"aws.tags": {"aws:createdBy": "me"}}, "mlplat:aws.tags", "prefix `aws:`", id="tag-in-the-aws-prefix"),
    pytest.param("prod", {"services.minio": {"mode": "standalone", "replicas": 1, "volume_size_gi": 500}}, "mlplat:", "services.minio.mode: prod MinIO is distributed", id="prod-minio-standalone"),
    pytest.param("prod", {"services.argocd.ha": False}, "mlplat:", "services.argocd.ha: prod Argo CD is highly available", id="prod-argocd-without-ha"),
    pytest.param("prod", {"services.argocd.prune_models": True}, "mlplat:", "services.argocd.prune_models: prod models are never deleted by automation", id="prod-argocd-prunes-models"),
    pytest.param("prod", {"services.argocd.oidc": None}, "mlplat:", "services.argocd.oidc: prod Argo CD signs in through SSO", id="prod-argocd-without-sso"),
    pytest.param("prod", {f"{POOL0}.capacity_type": "spot"}, "mlplat:", "gpu.pools: ['gpu-small'] run on spot in prod", id="prod-gpu-pool-on-spot-without-consent"),
    pytest.param("dev", {f"{POOL0}.instance_types": ["m6i.xlarge"]}, "mlplat:gpu.pools[0].instance_types", "['m6i.xlarge'] are not NVIDIA GPU instance types", id="gpu-pool-of-cpu-instances"),
    pytest.param("dev", {f"{POOL0}.instance_types": ["g4ad.xlarge", "g5g.xlarge"]}, "mlplat:gpu.pools[0].instance_types", "are not NVIDIA GPU instance types", id="gpu-pool-of-amd-or-arm-gpu-instances"),
    pytest.param("dev", {f"{POOL0}.instance_types": ["g5.xlarge "]}, "mlplat:gpu.pools[0].instance_types[0]", "should match pattern", id="gpu-instance-type-with-trailing-space"),
    pytest.param("dev", {f"{POOL0}.instance_types": ["G5.XLARGE"]}, "mlplat:gpu.pools[0].instance_types[0]", "should match pattern", id="gpu-instance-type-in-capitals"),
    pytest.param("dev", {f"{POOL0}.instance_types": ["g5.xlarge", "g5.xlarge"]}, "mlplat:gpu.pools[0].instance_types", "listed twice", id="gpu-instance-type-listed-twice"),
    pytest.param("dev", {"system_pool.instance_types": ["m6i.large;rm"]}, "mlplat:system_pool.instance_types[0]", "should match pattern", id="malformed-system-instance-type"),
    pytest.param("dev", {"gpu.pools.1.instance_types": ["g6.2xlarge"], "gpu.pools.1.gpus_per_node": 1}, "mlplat:gpu", "gpu-small and gpu-multi both offer ['g6.2xlarge'] as spot with the same labels", id="two-pools-select-the-same-instances"),
    pytest.param("dev", {f"{POOL0}.labels": {"karpenter.sh/capacity-type": "on-demand"}}, "mlplat:gpu.pools[0].labels", "reserved label domain (karpenter.sh)", id="pool-label-in-karpenter-domain"),
    pytest.param("dev", {f"{POOL0}.labels": {"node.kubernetes.io/instance-type": "p5.48xlarge"}}, "mlplat:gpu.pools[0].labels", "reserved label domain (node.kubernetes.io)", id="pool-label-in-kubernetes-domain"),
    pytest.param("dev", {f"{POOL0}.labels": {"k8s.io/owner": "me"}}, "mlplat:gpu.pools[0].labels", "reserved label domain (k8s.io)", id="pool-label-in-k8s-domain"),
    pytest.param("dev", {f"{POOL0}.labels": {"karpenter.k8s.aws/instance-gpu-count": "8"}}, "mlplat:gpu.pools[0].labels", "reserved label domain (karpenter.k8s.aws)", id="pool-label-in-karpenter-aws-domain"),
    pytest.param("dev", {f"{POOL0}.labels": {"mlplat/gpu-pool": "gpu-multi"}}, "mlplat:gpu.pools[0].labels", "is the pool label the program sets", id="pool-label-overrides-the-pool-name"),
    pytest.param("dev", {f"{POOL0}.labels": {"team name": "nlp"}}, "mlplat:gpu.pools[0].labels", "not a valid label key", id="pool-label-key-malformed"),
    pytest.param("dev", {f"{POOL0}.labels": {"team name": "nlp", "mlplat/gpu-pool": "gpu-multi"}}, "mlplat:gpu.pools[0].labels", "is the pool label the program sets", id="malformed-label-key-does-not-hide-the-next-label"),
    pytest.param("dev", {f"{POOL0}.labels": {"team": "n l p"}}, "mlplat:gpu.pools[0].labels", "not a valid label value", id="pool-label-value-malformed"),
]  # fmt: skip


# Lists and maps with a maximum size: one past it is refused, the maximum itself loads.
ROLE = "arn:aws:iam::123456789012:role/platform-{}"
SIZED: list[tuple[str, int, Callable[[int], Any]]] = [
    ("cluster.admin_role_arns", 10, lambda n: [ROLE.format(i) for i in range(n)]),
    ("cluster.viewer_role_arns", 10, lambda n: [ROLE.format(i) for i in range(n)]),
    ("cluster.drift_role_arns", 3, lambda n: [ROLE.format(i) for i in range(n)]),
    ("aws.tags", 20, lambda n: {f"team-{i}": "x" for i in range(n)}),
    ("system_pool.instance_types", 5, lambda n: [f"m6i.{s}" for s in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge")[:n]]),
    ("gpu.pools.0.labels", 16, lambda n: {f"mlplat/tier-{i}": "x" for i in range(n)}),
    # Pools that may not grow (max_size 0) stay within any gpu.max_total_gpus; labels tell them apart.
    ("gpu.pools", 10, lambda n: [{"name": f"gpu-p{i}", "instance_types": ["g5.2xlarge"], "capacity_type": "spot", "min_size": 0, "max_size": 0, "gpus_per_node": 1, "gpu_memory_gib": 24, "labels": {"mlplat/tier": f"t{i}"}} for i in range(n)]),
    ("apps.allowed_registries", 20, lambda n: [f"registry.mlplat.internal/team-{i}" for i in range(n)]),
]  # fmt: skip
BENT_CONFIGS += [
    pytest.param("dev", {"aws.tags": {"": "x"}}, "mlplat:aws.tags", "at least 1 character", id="empty-tag-key"),
    pytest.param("dev", {"apps.allowed_registries": []}, "mlplat:apps.allowed_registries", "at least 1 item", id="no-allowed-registry"),
    pytest.param("dev", {f"{POOL0}.max_size": -1}, "mlplat:gpu.pools[0].max_size", "greater than or equal to 0", id="negative-gpu-pool-maximum-names-the-field"),
    pytest.param("dev", {"services.argocd.oidc": {"issuer": "https://idp.example.com", "client_id": "", "admin_group": "admins"}}, "mlplat:services.argocd.oidc.client_id", "at least 1 character", id="empty-oidc-client-id"),
    pytest.param("dev", {"services.argocd.oidc": {"issuer": "https://idp.example.com", "client_id": "argocd"}}, "mlplat:services.argocd.oidc.admin_group", "required key is missing", id="argocd-sso-without-an-admin-group"),
    pytest.param("dev", {"services.argocd.oidc": {"issuer": "https://idp.example.com", "client_id": "argocd", "admin_group": "admins, role:admin\ng, everyone"}}, "mlplat:services.argocd.oidc.admin_group", "should match pattern", id="argocd-admin-group-smuggling-a-policy-line"),
]  # fmt: skip
# Numeric maximums, each stated once: one past it is refused naming the maximum, the maximum itself loads.
# (environment, key path, maximum, failure mode one past it, case at it)
UPPER_BOUNDS = [
    ("dev", "gpu.max_total_gpus", 128, "gpu-cap-unbounded", "gpu-cap-at-its-maximum"),
    ("dev", f"{POOL0}.gpu_memory_gib", 192, "gpu-memory-beyond-any-gpu", "gpu-memory-at-its-maximum"),
    ("dev", "services.minio.volume_size_gi", 16384, "minio-volume-beyond-ebs-maximum", "volume-at-the-ebs-maximum"),
    ("staging", "services.minio.replicas", 16, "minio-beyond-one-erasure-set", "minio-at-sixteen-replicas"),
    ("dev", "services.mlflow.replicas", 10, "mlflow-unbounded", "mlflow-at-its-maximum"),
    ("dev", "services.monitoring.prometheus_replicas", 3, "prometheus-replicas-unbounded", "prometheus-at-its-maximum"),
    ("prod", "cost.max_monthly_usd", 1_000_000, "budget-past-a-million", "budget-of-exactly-a-million"),
    ("dev", "cpu_pool.max_memory_gib", 8192, "cpu-pool-memory-past-8192-gib", "cpu-pool-memory-at-8192-gib"),
    ("dev", "apps.max_replicas_per_app", 100, "app-replica-ceiling-unbounded", "app-replica-ceiling-at-its-maximum"),
    ("dev", "system_pool.max_size", 30, "system-pool-unbounded", "system-pool-at-its-maximum"),
]  # fmt: skip


def _error_key(path: str) -> str:
    """The key path an error names for a change at `path` (list indexes in brackets, as pydantic reports)."""
    return "mlplat:" + path.replace(".0.", "[0].")


BENT_CONFIGS += [
    pytest.param("dev", {path: items(most + 1)}, _error_key(path), f"at most {most} items", id=f"{path}-past-{most}")
    for path, most, items in SIZED
]  # fmt: skip
BENT_CONFIGS += [
    pytest.param(env, {path: most + 1}, _error_key(path), f"less than or equal to {most}", id=past)
    for env, path, most, past, _ in UPPER_BOUNDS
]  # fmt: skip


@pytest.mark.parametrize(("env", "changes", "key", "reason"), BENT_CONFIGS)
def test_bent_config_is_refused_with_key_and_reason(
    env: str, changes: dict[str, Any], key: str, reason: str
) -> None:
    problems = _refused(env, _changed(env, changes))
    assert any(p.startswith(key) and reason in r for p, r in problems), (
        f"expected {key}: {reason!r}, got {problems}"
    )


# The other side of each boundary: the largest value a bound admits still loads.
AT_THE_BOUND = [
    pytest.param("dev", {PUBLIC: {"public": True, "public_access_cidrs": ["8.8.0.0/16"]}}, id="allowlist-of-exactly-a-slash-16"),
    pytest.param("dev", {PUBLIC: {"public": True, "public_access_cidrs": ["8.8.0.0/16", "8.8.128.0/17"]}}, id="overlapping-allowlist-counted-once"),
    pytest.param("dev", {"network.vpc_cidr": "10.10.0.0/18"}, id="vpc-of-exactly-slash-18"),
    # A runner VPC's primary block is /16 to /28 (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html).
    pytest.param("prod", {"cluster.endpoint.runner.vpc_cidr": "172.16.0.0/16"}, id="runner-vpc-of-exactly-slash-16"),
    pytest.param("prod", {"cluster.endpoint.runner.vpc_cidr": "10.255.0.128/28"}, id="runner-vpc-of-exactly-slash-28"),
    pytest.param("prod", {"cost.max_monthly_usd": 0.01}, id="budget-of-a-cent-just-above-zero"),
    pytest.param("dev", {"network.vpc_cidr": "172.31.0.0/16"}, id="vpc-at-the-top-of-172-16-slash-12"),
    pytest.param("dev", {f"{POOL0}.max_size": 64, "gpu.max_total_gpus": 128}, id="gpu-pool-at-its-maximum"),
    pytest.param("dev", {"gpu.pools.1.gpus_per_node": 8, "gpu.max_total_gpus": 11}, id="eight-gpus-per-node"),
    pytest.param("staging", {"services.minio.replicas": 4}, id="distributed-minio-at-four-replicas"),
    pytest.param("dev", {"services.monitoring.retention": "366d"}, id="retention-of-a-leap-year"),
    pytest.param("dev", {"services.monitoring.retention": "52w"}, id="retention-in-weeks"),
    pytest.param("dev", {"services.monitoring.retention": "8784h"}, id="retention-in-hours-of-a-leap-year"),
    pytest.param("staging", {"services.vault.replicas": 7}, id="vault-at-seven-replicas"),
    pytest.param("dev", {"apps.allowed_registries": ["ghcr.io/kserve", "registry.mlplat.internal:5000"]}, id="registry-organisation-and-port"),
    pytest.param("dev", {"aws.tags": {"mlplat/environment": "dev"}}, id="environment-tag-that-agrees"),
    pytest.param("prod", {f"{POOL0}.capacity_type": "spot", f"{POOL0}.allow_spot_in_prod": True}, id="prod-spot-by-consent"),
    pytest.param("dev", {f"{POOL0}.instance_types": ["p6-b200.48xlarge", "g4dn.metal"]}, id="gpu-types-with-variant-and-metal"),
    pytest.param("dev", {f"{POOL0}.labels": {"team": "nlp", "mlplat/tier": "a10g"}}, id="own-pool-labels"),
    pytest.param("prod", {"gateway.scheme": "internet-facing", "gateway.source_ranges": ["8.8.8.0/24"]}, id="internet-facing-gateway-with-an-allowlist"),
    pytest.param("dev", {"gpu.pools.1.instance_types": ["g6.2xlarge"], "gpu.pools.1.capacity_type": "on-demand", "gpu.pools.1.gpus_per_node": 1}, id="same-instances-on-another-capacity-type"),
]  # fmt: skip
AT_THE_BOUND += [
    pytest.param("dev", {"apps.max_replicas_per_app": 1, "apps.min_replicas": 1}, id="one-replica-per-app"),
    pytest.param("dev", {"services.argocd.oidc": {"issuer": "https://idp.example.com", "client_id": "a", "admin_group": "a"}}, id="one-character-oidc-client-id"),
]  # fmt: skip
AT_THE_BOUND += [
    pytest.param("dev", {path: items(most)}, id=f"{path}-at-{most}") for path, most, items in SIZED
]
AT_THE_BOUND += [pytest.param(env, {path: most}, id=at) for env, path, most, _, at in UPPER_BOUNDS]


@pytest.mark.parametrize(("env", "changes"), AT_THE_BOUND)
def test_values_at_the_bound_still_load(env: str, changes: dict[str, Any]) -> None:
    config = load_stack_config(_changed(env, changes), f"Pulumi.{env}.yaml", env)
    assert config.environment == env


def test_prod_stack_declaring_dev_does_not_escape_prod_rules() -> None:
    """A Pulumi.prod.yaml that says `environment: dev` (and weakens prod) is refused as prod."""
    weakened = _changed(
        "prod",
        {"environment": "dev", "services.minio": {"mode": "standalone", "replicas": 1, "volume_size_gi": 50}},
    )
    problems = _refused("prod", weakened)
    reasons = " ".join(r for _, r in problems)
    assert "says 'dev' in stack 'prod'" in reasons
    assert "prod MinIO is distributed" in reasons


def test_unknown_stack_is_refused() -> None:
    problems = _refused("dev", _values("dev"), stack="qa")
    assert problems == [("(stack)", "unknown stack 'qa'; choose one of ('dev', 'staging', 'prod')")]


def test_every_gpu_pool_in_our_environments_uses_allowed_families() -> None:
    for env in ENVIRONMENTS:
        for pool in load_environment(env).gpu.pools:
            assert all(t.split(".")[0] in GPU_INSTANCE_FAMILIES for t in pool.instance_types), (
                env,
                pool.name,
            )


# ---- the stack file itself: duplicates, bombs, nesting, size ----------------------------------------


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "Pulumi.dev.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _file_problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as raised:
        read_stack_file(path)
    return raised.value.problems


def test_duplicate_top_level_key_is_refused_not_last_one_wins(tmp_path: Path) -> None:
    original = stack_file("dev").read_text()
    text = original + "  mlplat:network:\n    vpc_cidr: 10.99.0.0/16\n"
    problems = _file_problems(_write(tmp_path, text))
    line = len(original.splitlines()) + 1
    assert problems == [
        (
            f"line {line}",
            f"duplicate key 'mlplat:network' (first at line {_line_of(original, 'mlplat:network:')}): "
            "the last one would silently win",
        )
    ]


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_duplicate_nested_key_is_refused(tmp_path: Path) -> None:
    text = (
        stack_file("dev")
        .read_text()
        .replace("    nat_gateways: single\n", "    nat_gateways: single\n    nat_gateways: per_az\n")
    )
    problems = _file_problems(_write(tmp_path, text))
    assert len(problems) == 1 and "duplicate key 'nat_gateways'" in problems[0][1]


def test_yaml_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ["config:", '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    problems = _file_problems(_write(tmp_path, "\n".join(lines) + "\n"))
    assert problems == [("line 2", "anchors and aliases are not allowed in a stack file")]


def test_absurd_nesting_is_refused_without_recursion_error(tmp_path: Path) -> None:
    problems = _file_problems(
        _write(tmp_path, "config:\n  mlplat:x: " + "[" * 100_000 + "]" * 100_000 + "\n")
    )
    assert problems == [("line 2", "nested more than 32 levels deep")]


def test_huge_file_is_refused_unread(tmp_path: Path) -> None:
    problems = _file_problems(_write(tmp_path, "config:\n" + "#" * (300 * 1024) + "\n"))
    assert problems == [("(file)", "larger than 262144 bytes: not a stack file")]


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    problems = _file_problems(_write(tmp_path, b"config:\n  mlplat:environment: d\xffv\n"))
    assert problems == [("(file)", "not UTF-8 text (byte 31)")]


def test_merge_key_is_refused(tmp_path: Path) -> None:
    problems = _file_problems(_write(tmp_path, "config:\n  mlplat:aws:\n    <<: {region: eu-west-1}\n"))
    assert problems == [("line 3", "merge keys (`<<`) are not allowed in a stack file")]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(
            '{"nat_gateways": "single", "nat_gateways": "per_az"}',
            "duplicate key 'nat_gateways'",
            id="duplicate",
        ),
        pytest.param("[" * 50_000 + "]" * 50_000, "nested too deeply", id="recursion"),
        pytest.param("[" * 40 + "]" * 40, "nested 40 levels, more than 32", id="depth"),
    ],
)
def test_engine_json_is_bounded_like_the_file(value: str, reason: str) -> None:
    """Values the Pulumi engine hands the program as JSON strings get the file's bounds."""
    values = {**_values("dev"), "network": value}
    problems = _refused("dev", values)
    assert problems == [("mlplat:network", reason)]


def test_an_endpoint_that_does_not_say_public_is_private() -> None:
    """Security by default: leaving `public` out of the stack file never exposes the Kubernetes API."""
    values = _changed("dev", {"cluster.endpoint.public": DELETE})
    config = load_stack_config(values, "Pulumi.dev.yaml", "dev")
    assert config.cluster.endpoint.public is False
