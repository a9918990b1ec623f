"""Argo CD reads model apps from the stack's `services.argocd.repo_url` at `target_revision`: the stack
file is the one owner of both."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from infra.config import RETRAINING_ENVIRONMENT, ConfigError, StackConfig, load_environment
from infra.contract import ENVIRONMENTS
from infra.gitops import REVISION, TEMPLATE, ModelApps, git_artifacts, render, repository_link
from infra.services.monitoring import with_runbook_links
from tests.support.harness import REPO, build_config
from tests.support.program_refusal import program_refusal
from tests.support.stack_edit import argocd_edited

MOVED = "https://github.com/example-fork/mlplat-fork.git"
RELEASE = "release-2026.12"


def _stack_moved(env: str, tmp_path: Path) -> StackConfig:
    """`env`'s stack file after the one edit that moves the repository (its `repo_url` line, with a
    release branch beside it), loaded the way the program loads it."""
    return argocd_edited(env, tmp_path, repo_url=MOVED, target_revision=RELEASE)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_moving_the_repository_is_one_edit_of_the_stack_file(env: str, tmp_path: Path) -> None:
    plan = build_config(_stack_moved(env, tmp_path))
    (appset,) = plan.of_type("kubernetes:argoproj.io/v1alpha1:ApplicationSet")
    (project,) = plan.of_type("kubernetes:argoproj.io/v1alpha1:AppProject")
    spec = appset.inputs["spec"]
    assert [g["git"]["repoURL"] for g in spec["generators"]] == [MOVED], appset.urn
    assert spec["template"]["spec"]["source"]["repoURL"] == MOVED, appset.urn
    assert [g["git"]["revision"] for g in spec["generators"]] == [RELEASE], appset.urn
    assert spec["template"]["spec"]["source"]["targetRevision"] == RELEASE, appset.urn
    assert project.inputs["spec"]["sourceRepos"] == [MOVED], project.urn
    # The alerts link their runbooks into it, at the revision Argo CD tracks.
    runbooks = {
        rule["annotations"]["runbook_url"]
        for resource in plan.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
        for group in resource.inputs["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert runbooks and all(
        link.startswith(f"https://github.com/example-fork/mlplat-fork/blob/{RELEASE}/docs/alerts.md#")
        for link in runbooks
    ), sorted(runbooks)
    if env != RETRAINING_ENVIRONMENT:  # no retraining pipelines there (infra/config.py)
        return
    # The retraining pipelines clone it and push to it: their checkouts are filled in, their push step
    # reads the ConfigMap (infra/gitops.py `with_platform_repository`).
    (repository,) = [
        c for c in plan.of_type("kubernetes:core/v1:ConfigMap") if c.name.endswith("-platform-repository")
    ]
    assert repository.inputs["data"] == {"url": MOVED, "revision": RELEASE}, repository.urn
    templates = plan.of_type("kubernetes:argoproj.io/v1alpha1:WorkflowTemplate")
    assert templates, "no retraining pipeline in the plan"
    for template in templates:
        clones = [(git["repo"], git["revision"]) for _, git in git_artifacts(template.inputs)]
        assert clones and set(clones) == {(MOVED, RELEASE)}, template.urn


def test_no_argocd_file_names_a_repository_or_revision_of_its_own() -> None:
    """A URL or branch written in platform/argocd would be a second owner that drifts from the stack file."""
    for path in sorted((REPO / "platform" / "argocd").rglob("*.yaml")):
        for line in path.read_text().splitlines():
            code = line.split("#")[0]
            assert "://" not in code or "kubernetes.default.svc" in code, f"{path}: {line}"
            if "evision:" in code:
                assert code.split(":", 1)[1].strip() == REVISION, f"{path}: {line}"


def test_a_copied_repository_url_stops_the_program() -> None:
    docs = list(yaml.safe_load_all((REPO / "platform" / TEMPLATE).read_text()))
    (project,) = [d for d in docs if d["kind"] == "AppProject"]
    project["spec"]["sourceRepos"] = ["https://github.com/someone-else/mlplat.git"]
    apps = ModelApps.of("dev", load_environment("dev").services.argocd)
    with pytest.raises(
        ConfigError,
        match=r"platform/argocd/models.yaml cannot be rendered:\n  AppProject spec.sourceRepos\[0\]: 'https://github.com/someone-else/mlplat.git' is written here",
    ):
        render(docs, "platform/argocd/models.yaml", apps)


def test_under_pulumi_up_a_copied_repository_is_a_clean_error() -> None:
    """The engine prints a RunError's message; any other exception is a traceback mid-deploy."""
    setup = (
        "import infra.services.argocd as argocd\n"
        "from infra.config import read_stack_file, stack_file\n"
        "load = argocd.load_documents\n"
        "def copied(patterns):\n"
        "    docs = load(patterns)\n"
        "    for _, doc in docs:\n"
        "        if doc['kind'] == 'AppProject':\n"
        "            doc['spec']['sourceRepos'] = ['https://github.com/someone-else/mlplat.git']\n"
        "    return docs\n"
        "argocd.load_documents = copied\n"
        "values = read_stack_file(stack_file('dev'))\n"
    )
    assert "platform/argocd/models.yaml" in program_refusal(REPO, "dev", setup).error


def test_no_yaml_file_spells_the_repository_the_stack_files_own() -> None:
    """Moving the repository is one edit of `services.argocd.repo_url` only if no YAML file spells it too:
    each such file is a second owner a move leaves pointing at the old place."""
    repositories = {
        load_environment(env).services.argocd.repo_url.removesuffix(".git") for env in ENVIRONMENTS
    }
    listed = subprocess.run(
        ["git", "ls-files", "*.yaml", "*.yml"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    # The stack files own it; test fixtures are data about other repositories.
    spelled = [
        name
        for name in listed
        if not name.startswith(("environments/", "tests/"))
        and any(repository in (REPO / name).read_text() for repository in repositories)
    ]
    assert spelled == []


def test_a_rule_linking_its_runbook_itself_is_refused_not_linked_twice() -> None:
    """A runbook written as a link would name the repository a second time (and not move with it)."""
    rule_file = {
        "spec": {"groups": [{"rules": [{"alert": "X", "annotations": {"runbook_url": "https://a/b"}}]}]}
    }
    with pytest.raises(
        ValueError, match="alert X: runbook_url 'https://a/b' must be a path in this repository"
    ):
        with_runbook_links(rule_file, load_environment("dev").services.argocd)


@pytest.mark.parametrize(
    "repo_url",
    [
        "https://github.com/example-fork/mlplat-fork.git",
        "https://github.com/example-fork/mlplat-fork.git/",
        "https://github.com/example-fork/mlplat-fork",
        "git@github.com:example-fork/mlplat-fork.git",
    ],
)
def test_a_runbook_link_is_the_web_address_of_the_file_whatever_form_the_repository_takes(
    repo_url: str,
) -> None:
    assert (
        repository_link(repo_url, RELEASE, "docs/alerts.md#x")
        == f"https://github.com/example-fork/mlplat-fork/blob/{RELEASE}/docs/alerts.md#x"
    )


@pytest.mark.parametrize(
    ("repo_url", "loads"),
    [
        ("git@github.com:platform-team/mlplat.git", True),
        ("https://gitlab.com/platform-team/mlplat.git", False),
        ("git@gitlab.com:platform-team/mlplat.git", False),
    ],
)
def test_pipelines_cannot_be_given_a_repository_they_cannot_push_to(
    tmp_path: Path, repo_url: str, loads: bool
) -> None:
    """The pipelines clone with the retraining token as an https password and open the pull request
    through GitHub's API: another forge would fail at the first run, not at plan. GitHub's ssh address
    is fine for Argo CD: the pipelines get its https form."""
    if not loads:
        with pytest.raises(ConfigError, match="clone and push over https to GitHub"):
            argocd_edited("dev", tmp_path, repo_url=repo_url)
        return
    plan = build_config(argocd_edited("dev", tmp_path, repo_url=repo_url))
    (repository,) = [
        c for c in plan.of_type("kubernetes:core/v1:ConfigMap") if c.name.endswith("-platform-repository")
    ]
    assert repository.inputs["data"]["url"] == "https://github.com/platform-team/mlplat.git", repository.urn
    for template in plan.of_type("kubernetes:argoproj.io/v1alpha1:WorkflowTemplate"):
        clones = {git["repo"] for _, git in git_artifacts(template.inputs)}
        assert clones == {"https://github.com/platform-team/mlplat.git"}, template.urn


A_COMMIT = "0123456789abcdef0123456789abcdef01234567"  # pragma: allowlist secret (a commit id)


@pytest.mark.parametrize("revision", ["HEAD", A_COMMIT])
def test_pipelines_cannot_open_pull_requests_against_a_revision_that_is_no_branch(
    tmp_path: Path, revision: str
) -> None:
    """GitHub refuses a pull request whose base is no branch: the run would train, register and push, then fail."""
    with pytest.raises(ConfigError, match="open pull requests against it: name a branch"):
        argocd_edited("dev", tmp_path, target_revision=revision)
