"""Argo CD reads model apps from the stack's `services.argocd.repo_url`: the one owner of the repository."""

from __future__ import annotations

import pytest
import yaml
from harness import REPO, build_config

from infra.config import ConfigError, StackConfig, load_environment

MOVED = "git@git.example.internal:platform/mlplat-fork.git"


def _with_repo_url(config: StackConfig, repo_url: str) -> StackConfig:
    argocd = config.services.argocd.model_copy(update={"repo_url": repo_url})
    return config.model_copy(update={"services": config.services.model_copy(update={"argocd": argocd})})


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_argocd_syncs_from_the_configured_repository_not_a_copied_url(env: str) -> None:
    plan = build_config(_with_repo_url(load_environment(env), MOVED))
    (appset,) = plan.of_type("kubernetes:argoproj.io/v1alpha1:ApplicationSet")
    (project,) = plan.of_type("kubernetes:argoproj.io/v1alpha1:AppProject")
    spec = appset.inputs["spec"]
    assert [g["git"]["repoURL"] for g in spec["generators"]] == [MOVED], appset.urn
    assert spec["template"]["spec"]["source"]["repoURL"] == MOVED, appset.urn
    assert project.inputs["spec"]["sourceRepos"] == [MOVED], project.urn


def test_no_argocd_file_names_a_repository_of_its_own() -> None:
    """A URL written in platform/argocd would be a second owner that drifts from the stack file."""
    for path in sorted((REPO / "platform" / "argocd").rglob("*.yaml")):
        text = path.read_text()
        for line in text.splitlines():
            assert "://" not in line.split("#")[0] or "kubernetes.default.svc" in line, f"{path}: {line}"
        assert yaml.safe_load(text)


def test_a_copied_repository_url_stops_the_program() -> None:
    from infra.services.argocd import with_repository

    doc = yaml.safe_load((REPO / "platform" / "argocd" / "dev" / "appproject.yaml").read_text())
    doc["spec"]["sourceRepos"] = ["https://github.com/someone-else/mlplat.git"]
    path = REPO / "platform" / "argocd" / "dev" / "appproject.yaml"
    with pytest.raises(
        ConfigError,
        match=r"platform/argocd/dev/appproject.yaml:\n  spec.sourceRepos\[0\]: 'https://github.com/someone-else/mlplat.git' names a repository",
    ):
        with_repository(path, doc, MOVED)
