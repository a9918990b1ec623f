"""Stack configuration: every environment loads, and bad configs stop with the key path and reason."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import (
    ENVIRONMENTS,
    ConfigError,
    load_environment,
    load_stack_config,
    read_stack_file,
    stack_file,
)


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
    (
        "dev",
        "gpu.pools.0.gpus_per_node",
        0,
        "mlplat:gpu.pools[0].gpus_per_node",
        "greater than or equal to 1",
    ),
    ("dev", "gpu.pools.1.name", "gpu-small", "mlplat:gpu", "duplicate pool names ['gpu-small']"),
    ("dev", "gpu.max_total_gpus", 2, "mlplat:gpu", "together the pools can reach 6 GPUs"),
    (
        "dev",
        "gpu.pools.0.capacity_type",
        "reserved",
        "mlplat:gpu.pools[0].capacity_type",
        "'spot' or 'on-demand'",
    ),
    ("dev", "cluster.endpoint.public_access_cidrs", [], "mlplat:cluster.endpoint", "needs a CIDR allowlist"),
    (
        "dev",
        "cluster.endpoint.public_access_cidrs",
        ["0.0.0.0/0"],
        "mlplat:cluster.endpoint",
        "not an allowlist",
    ),
    ("dev", "cluster.kubernetes_version", "1.20", "mlplat:cluster.kubernetes_version", "no add-on pins"),
    (
        "dev",
        "cluster.admin_role_arns",
        ["admin"],
        "mlplat:cluster.admin_role_arns[0]",
        "should match pattern",
    ),
    ("dev", "network.availability_zones", ["a", "b"], "mlplat:network.availability_zones", "at least 3"),
    ("dev", "network.vpc_cidr", "10.0.0.0/24", "mlplat:network.vpc_cidr", "must be /18 or larger"),
    ("dev", "services.vault.replicas", 2, "mlplat:services.vault.replicas", "odd number"),
    ("dev", "services.minio.replicas", 2, "mlplat:services.minio", "standalone MinIO runs exactly 1"),
    ("dev", "apps.min_replicas", 9, "mlplat:apps", "min_replicas (9) must not exceed max_replicas_per_app"),
    ("dev", "apps", DELETE, "mlplat:apps", "required key is missing"),
    ("prod", "cluster.endpoint", {"public": True}, "mlplat:cluster.endpoint", "needs a CIDR allowlist"),
    (
        "prod",
        "cluster.endpoint",
        {"public": True, "public_access_cidrs": ["198.51.100.0/24"]},
        "mlplat:",
        "cluster.endpoint.public: the prod API endpoint is private",
    ),
    (
        "prod",
        "storage",
        {"encrypted": False},
        "mlplat:",
        "storage.encrypted: prod volumes are always encrypted",
    ),
    ("prod", "protect_stateful", False, "mlplat:", "protect_stateful: prod state is protected"),
    ("prod", "network.nat_gateways", "single", "mlplat:", "prod needs one NAT per zone"),
    ("prod", "services.vault.replicas", 1, "mlplat:", "prod Raft needs at least 3"),
    ("prod", "apps.min_replicas", 1, "mlplat:", "prod runs at least 2 replicas"),
]


@pytest.mark.parametrize(
    ("env", "path", "value", "key", "reason"), BAD_CONFIGS, ids=[f"{c[0]}:{c[1]}" for c in BAD_CONFIGS]
)
def test_bad_config_names_key_and_reason(env: str, path: str, value: Any, key: str, reason: str) -> None:
    values = copy.deepcopy(_values(env))
    _set(values, path, value)
    with pytest.raises(ConfigError) as raised:
        load_stack_config(values, f"Pulumi.{env}.yaml")
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
    code = (
        "import json, pulumi\n"
        "from pulumi.runtime.stack import run_in_stack\n"
        "from pulumi.runtime.settings import ROOT\n"
        "from pulumi.runtime.sync_await import _sync_await\n"
        "from mlplat.plan import Recorder, _recording_monitor\n"
        "recorder = Recorder(); monitor = _recording_monitor(recorder)\n"
        "pulumi.runtime.set_all_config({'mlplat:environment': 'dev', 'mlplat:network': '{\"cidr\": 1}'}, [])\n"
        "pulumi.runtime.set_mocks(monitor.mocks, project='mlplat', stack='dev', monitor=monitor)\n"
        "ROOT.set(None)\n"
        "from infra import program\n"
        "try:\n"
        "    _sync_await(run_in_stack(program.main))\n"
        "except pulumi.RunError as err:\n"
        "    print(json.dumps({'error': str(err), 'resources': len(recorder.resources)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    outcome = yaml.safe_load(result.stdout.strip().splitlines()[-1])
    assert outcome["resources"] == 0
    assert "mlplat:network.cidr: unknown key" in outcome["error"]
    assert "mlplat:aws: required key is missing" in outcome["error"]
