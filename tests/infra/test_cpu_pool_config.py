"""The CPU model pool in stack config: validated at the door like the GPU pools, prod never weaker."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.config import (
    ENVIRONMENTS,
    ConfigError,
    load_environment,
    load_stack_config,
    read_stack_file,
    stack_file,
)


def _changed(env: str, changes: dict[str, Any]) -> dict[str, Any]:
    values = copy.deepcopy(read_stack_file(stack_file(env)))
    for path, value in changes.items():
        *parents, last = path.split(".")
        node: Any = values
        for part in parents:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return values


def _problems(env: str, changes: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as raised:
        load_stack_config(_changed(env, changes), f"Pulumi.{env}.yaml", env)
    return raised.value.problems


REFUSED = [
    pytest.param("dev", {"cpu_pool": None}, "mlplat:cpu_pool", "required key is missing", id="no-cpu-pool"),
    pytest.param(
        "dev",
        {"cpu_pool.instance_types": ["g5.xlarge"]},
        "mlplat:cpu_pool.instance_types",
        "['g5.xlarge'] are GPU instance types",
        id="cpu-pool-of-gpu-instances",
    ),
    pytest.param(
        "dev",
        {"cpu_pool.instance_types": ["x2iedn.32xlarge"]},
        "mlplat:cpu_pool.instance_types",
        "not in infra/instance_types.py NODE_SHAPES",
        id="cpu-pool-type-of-unknown-size",
    ),
    pytest.param(
        "dev",
        {"cpu_pool.instance_types": ["m6i.xlarge", "m6i.xlarge"]},
        "mlplat:cpu_pool.instance_types",
        "listed twice",
        id="cpu-pool-type-listed-twice",
    ),
    pytest.param(
        "dev",
        {"cpu_pool.max_vcpus": 4},
        "mlplat:cpu_pool",
        "max_vcpus (4) is below one node of the largest type (8)",
        id="cpu-limit-below-one-node",
    ),
    pytest.param(
        "dev",
        {"cpu_pool.max_memory_gib": 16},
        "mlplat:cpu_pool",
        "max_memory_gib (16) is below one node of the largest type (32 GiB)",
        id="memory-limit-below-one-node",
    ),
    pytest.param(
        "dev",
        {"cpu_pool.max_vcpus": 1025},
        "mlplat:cpu_pool.max_vcpus",
        "less than or equal to 1024",
        id="cpu-typo",
    ),
    pytest.param(
        "dev",
        {"cpu_pool.consolidate_after": "5 minutes"},
        "mlplat:cpu_pool.consolidate_after",
        "should match pattern",
        id="consolidate-after-not-a-duration",
    ),
    pytest.param(
        "dev",
        {"cpu_pool.consolidation_policy": "Always"},
        "mlplat:cpu_pool.consolidation_policy",
        "'WhenEmpty' or 'WhenEmptyOrUnderutilized'",
        id="unknown-consolidation-policy",
    ),
    pytest.param(
        "dev", {"cpu_pool.min_size": 1}, "mlplat:cpu_pool.min_size", "unknown key", id="unknown-key"
    ),
    pytest.param(
        "prod",
        {"cpu_pool.capacity_type": "spot"},
        "mlplat:",
        "cpu_pool.capacity_type: the prod model pool runs on spot",
        id="prod-cpu-pool-on-spot-without-consent",
    ),
    pytest.param(
        "dev",
        {"gpu.pools": [{**read_stack_file(stack_file("dev"))["gpu"]["pools"][0], "name": "models-cpu"}]},
        "mlplat:",
        "'models-cpu' is the CPU model pool's NodePool name",
        id="gpu-pool-named-like-the-cpu-pool",
    ),
]


@pytest.mark.parametrize(("env", "changes", "key", "reason"), REFUSED)
def test_bad_cpu_pool_is_refused_with_key_and_reason(
    env: str, changes: dict[str, Any], key: str, reason: str
) -> None:
    problems = _problems(env, changes)
    assert any(p.startswith(key) and reason in r for p, r in problems), (
        f"expected {key}: {reason!r}, got {problems}"
    )


def test_prod_spot_model_pool_by_consent_loads() -> None:
    config = load_stack_config(
        _changed("prod", {"cpu_pool.capacity_type": "spot", "cpu_pool.allow_spot_in_prod": True}),
        "Pulumi.prod.yaml",
        "prod",
    )
    assert config.cpu_pool.capacity_type == "spot"


def test_cpu_limits_of_exactly_one_largest_node_load() -> None:
    config = load_stack_config(
        _changed("dev", {"cpu_pool.max_vcpus": 8, "cpu_pool.max_memory_gib": 32}), "Pulumi.dev.yaml", "dev"
    )
    assert (config.cpu_pool.max_vcpus, config.cpu_pool.max_memory_gib) == (8, 32)


def test_prod_model_pool_is_never_weaker_than_dev() -> None:
    dev, prod = load_environment("dev").cpu_pool, load_environment("prod").cpu_pool
    assert prod.capacity_type == "on-demand" or prod.allow_spot_in_prod
    assert prod.max_vcpus >= dev.max_vcpus and prod.max_memory_gib >= dev.max_memory_gib


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_has_a_cpu_model_pool(env: str) -> None:
    assert load_environment(env).cpu_pool.instance_types


def test_plan_with_a_gpu_type_in_the_cpu_pool_exits_2_naming_the_key(repo_root: Path, tmp_path: Path) -> None:
    source = (repo_root / "environments" / "Pulumi.dev.yaml").read_text()
    old = "instance_types: [m6i.xlarge, m6i.2xlarge, m7i.xlarge, m7i.2xlarge]"
    assert source.count(old) == 1
    (tmp_path / "Pulumi.dev.yaml").write_text(source.replace(old, "instance_types: [g5.xlarge]"))
    code = (
        "import sys\nfrom pathlib import Path\nimport infra.config\n"
        f"infra.config.STACK_DIR = Path({str(tmp_path)!r})\n"
        "from mlplat.cli import main\n"
        f"sys.exit(main(['plan', '--env', 'dev', '--no-policies', '--out', {str(tmp_path / 'plan.json')!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "mlplat:cpu_pool.instance_types: ['g5.xlarge'] are GPU instance types" in result.stderr, (
        result.stderr
    )
