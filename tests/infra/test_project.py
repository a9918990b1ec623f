"""The repository's shape: a valid Pulumi project, stack files per environment, no `platform` package."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from infra.config import ENVIRONMENTS


def test_pulumi_yaml_is_valid_against_the_project_schema(repo_root: Path, reference: Path) -> None:
    schema = json.loads((reference / "pulumi" / "project.json").read_text())
    project = yaml.safe_load((repo_root / "Pulumi.yaml").read_text())
    jsonschema.validate(project, schema)
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    assert project["stackConfigDir"] == "environments"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stack_file_disables_default_providers(repo_root: Path, env: str) -> None:
    stack = yaml.safe_load((repo_root / "environments" / f"Pulumi.{env}.yaml").read_text())
    disabled = stack["config"]["pulumi:disable-default-providers"]
    assert "kubernetes" in disabled and "aws" in disabled


def test_platform_is_never_a_python_package(repo_root: Path) -> None:
    assert not list((repo_root / "platform").rglob("__init__.py"))


def test_stdlib_platform_module_is_not_shadowed(repo_root: Path) -> None:
    import platform

    assert Path(platform.__file__).parent != repo_root
    assert callable(platform.python_version)
