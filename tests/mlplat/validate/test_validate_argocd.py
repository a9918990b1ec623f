"""Argo CD objects: schema-valid against the v3.5 CRDs, and shaped the way the platform relies on.

Every environment's AppProject and ApplicationSet are rendered from platform/argocd/models.yaml
(infra/gitops.py); these tests judge the rendered objects the program applies and validate reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ENVIRONMENTS, load_environment
from infra.gitops import TEMPLATE
from infra.services.argocd import model_apps
from mlplat.validation.argocd import path_match
from tests.support.validate_helpers import REPO, copy_repo, copy_without, rules, run_json

ENVS = ENVIRONMENTS


def load(env: str, kind: str) -> dict[str, Any]:
    """`kind` of `env` as the program applies it."""
    (doc,) = [d for _, d in model_apps(env, load_environment(env).services.argocd) if d["kind"] == kind]
    return doc


def repo_url(env: str) -> str:
    return load_environment(env).services.argocd.repo_url


def repo_with_template_edit(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the repository whose Argo CD template has `old` (found exactly once) replaced by `new`."""
    repo = copy_repo(tmp_path)
    template = repo / "platform" / TEMPLATE
    text = template.read_text()
    assert text.count(old) == 1, f"{old!r} in {text}"
    template.write_text(text.replace(old, new))
    return repo


def test_argocd_objects_match_their_crds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Strict: unknown fields in AppProject/ApplicationSet specs are findings too, in every environment."""
    for env in ENVS:
        docs = [doc for _, doc in model_apps(env, load_environment(env).services.argocd)]
        (tmp_path / f"{env}.yaml").write_text(yaml.safe_dump_all(docs))
    code, report = run_json(capsys, str(tmp_path))
    assert (code, report["findings"]) == (0, [])
    assert len(report["targets"]) == 1


@pytest.mark.parametrize("env", ENVS)
def test_applicationset_shape(env: str) -> None:
    spec = load(env, "ApplicationSet")["spec"]
    assert spec["goTemplate"] is True and spec["goTemplateOptions"] == ["missingkey=error"]
    (generator,) = spec["generators"]
    assert generator["git"]["repoURL"] == repo_url(env)
    assert generator["git"]["directories"] == [
        {"path": f"apps/*/overlays/{env}"},
        {"path": f"apps/components/overlays/{env}", "exclude": True},
    ]
    assert spec["syncPolicy"]["preserveResourcesOnDeletion"] is True
    template = spec["template"]
    assert template["metadata"]["name"] == "{{index .path.segments 1}}"
    assert "basename" not in yaml.safe_dump(template)
    assert template["spec"]["project"] == f"models-{env}"  # fixed, never templated
    assert template["spec"]["source"]["repoURL"] == repo_url(env)
    assert template["metadata"]["labels"]["mlplat/environment"] == env
    automated = template["spec"]["syncPolicy"]["automated"]
    assert automated["selfHeal"] is True
    # prod never prunes on sync, and its ApplicationSet never deletes an Application
    assert automated["prune"] is (env != "prod")
    assert spec["syncPolicy"]["applicationsSync"] == ("create-update" if env == "prod" else "sync")


@pytest.mark.parametrize("env", ENVS)
def test_appproject_restricts_sources_destinations_and_kinds(env: str) -> None:
    project = load(env, "AppProject")
    assert project["metadata"]["name"] == f"models-{env}"
    spec = project["spec"]
    assert spec["sourceRepos"] == [repo_url(env)]
    assert [d["namespace"] for d in spec["destinations"]] == ["models-*"]
    assert spec["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace", "name": "models-*"}]
    kinds = {w["kind"] for w in spec["namespaceResourceWhitelist"]}
    assert {"InferenceService", "ServiceAccount", "NetworkPolicy"} <= kinds
    assert not kinds & {"Role", "RoleBinding", "Secret", "*"}


def test_git_directory_glob_does_not_cross_folders() -> None:
    assert path_match("apps/*/overlays/dev", "apps/iris/overlays/dev")
    assert not path_match("apps/*/overlays/dev", "apps/team/iris/overlays/dev")
    assert not path_match("apps/*/overlays/dev", "apps/iris/overlays/dev-eu")


def test_overlay_the_applicationset_misses_is_a_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = repo_with_template_edit(
        tmp_path, "apps/*/overlays/${environment}\n", "apps/*/overlays/development\n"
    )
    code, report = run_json(capsys, "--repo", str(repo), "--env", "dev")
    unmatched = sorted(f["file"] for f in report["findings"] if f["rule"] == "MLP-APPSET-UNMATCHED")
    assert code == 1
    assert unmatched == [f"apps/{a}/overlays/dev" for a in ("churn-gbm", "iris-classifier", "llm-chat")]
    assert rules(report) == {"MLP-APPSET-UNMATCHED"}


def test_app_without_network_isolation_is_a_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_without(
        tmp_path, ("apps/churn-gbm/base/kustomization.yaml", "  - ../../components/network-isolation\n")
    )
    code, report = run_json(capsys, "--repo", str(repo), str(repo / "apps" / "churn-gbm"), "--env", "staging")
    assert code == 1
    assert [(f["rule"], f["resource"]) for f in report["findings"]] == [
        ("MLP-NETPOL-DEFAULT-DENY", "InferenceService/models-growth/churn-gbm")
    ]


CLUSTER_SCOPED = {"Namespace", "ClusterRole", "StorageClass"}


def _judged(*docs: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule, message) of MLP-APPPROJECT-* for `docs` against dev's own AppProject."""
    from mlplat.findings import RenderedDoc
    from mlplat.validation.argocd import check_docs, load_project
    from mlplat.validation.render import SourceIndex

    project = load_project(REPO, "dev", load_environment("dev").services.argocd)
    rendered = [RenderedDoc("dev", "apps/x/overlays/dev", "apps/x/base/x.yaml", d) for d in docs]
    found = check_docs(rendered, project, lambda api, kind: kind not in CLUSTER_SCOPED, SourceIndex(REPO))
    return [(f.rule, f.message) for f in found]


def _obj(api: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    meta = {"name": name} | ({"namespace": namespace} if namespace is not None else {})
    return {"apiVersion": api, "kind": kind, "metadata": meta}


def test_an_apps_own_namespace_and_namespaced_objects_in_it_are_allowed() -> None:
    assert _judged(_obj("v1", "Namespace", "models-x"), _obj("v1", "ServiceAccount", "m", "models-x")) == []


@pytest.mark.parametrize(
    ("doc", "rules", "says"),
    [
        (
            _obj("rbac.authorization.k8s.io/v1", "ClusterRole", "edit-all"),
            ["MLP-APPPROJECT-KIND"],  # only a Namespace's name is held to models-<team>
            "does not allow cluster-scoped rbac.authorization.k8s.io/ClusterRole 'edit-all'",
        ),
        (
            _obj("storage.k8s.io/v1", "StorageClass", "fast"),  # a kind sorting after Namespace
            ["MLP-APPPROJECT-KIND"],
            "does not allow cluster-scoped storage.k8s.io/StorageClass 'fast'",
        ),
        (
            yaml.safe_load("{apiVersion: v1, kind: Namespace, metadata: {name: kube-system}}"),  # as rendered
            ["MLP-APPPROJECT-KIND", "MLP-APPPROJECT-NAMESPACE"],
            "does not allow cluster-scoped core/Namespace 'kube-system'",
        ),
        (
            _obj("v1", "Secret", "s", "models-x"),
            ["MLP-APPPROJECT-KIND"],
            "does not allow namespaced kind core/Secret",
        ),
        (_obj("v1", "ServiceAccount", "m"), ["MLP-APPPROJECT-NAMESPACE"], "no namespace"),
        (
            _obj("v1", "ServiceAccount", "m", "default"),
            ["MLP-APPPROJECT-NAMESPACE"],
            "namespace 'default' does not match models-<team>",
        ),
    ],
    ids=[
        "cluster-role",
        "storage-class",
        "namespace-not-models",
        "secret",
        "no-namespace",
        "default-namespace",
    ],
)
def test_what_the_appproject_refuses_is_named_once_per_rule(
    doc: dict[str, Any], rules: list[str], says: str
) -> None:
    found = _judged(doc)
    assert [r for r, _ in found] == rules and says in found[0][1], found


def test_a_models_namespace_without_a_destination_is_refused(tmp_path: Path) -> None:
    """`models-<team>` is the naming rule; the AppProject's destinations still decide (here narrowed)."""
    from mlplat.findings import RenderedDoc
    from mlplat.validation.argocd import check_docs, load_project
    from mlplat.validation.render import SourceIndex

    repo = repo_with_template_edit(tmp_path, "namespace: models-*", "namespace: models-core-*")
    project = load_project(repo, "dev", load_environment("dev").services.argocd)
    doc = RenderedDoc(
        "dev", "apps/x/overlays/dev", "apps/x/base/x.yaml", _obj("v1", "ServiceAccount", "m", "models-x")
    )
    (finding,) = check_docs([doc], project, lambda api, kind: True, SourceIndex(repo))
    assert (
        finding.rule == "MLP-APPPROJECT-NAMESPACE"
        and "has no destination for namespace 'models-x'" in finding.message
    )


def test_an_overlay_the_applicationset_excludes_is_a_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = "          - path: apps/*/overlays/${environment}\n"
    excluded = "          - path: apps/llm-chat/overlays/${environment}\n            exclude: true\n"
    repo = repo_with_template_edit(tmp_path, old, old + excluded)
    code, report = run_json(capsys, "--repo", str(repo), str(repo / "apps" / "llm-chat"), "--env", "dev")
    assert code == 1
    assert [(f["rule"], f["file"]) for f in report["findings"]] == [
        ("MLP-APPSET-UNMATCHED", "apps/llm-chat/overlays/dev")
    ]


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (None, "platform/argocd/models.yaml is missing"),
        ("kind: AppProject\n---\nkind: AppProject\n", "must hold exactly one AppProject, holds 2"),
        ("kind: ConfigMap\n", "must hold exactly one AppProject, holds 0"),
        ("kind: [\n", "platform/argocd/models.yaml is not valid YAML"),
        (
            ("namespace: models-*", "namespace: models-${team}"),
            "AppProject spec.destinations[0].namespace: ${team} is not a placeholder",
        ),
        (
            ("prune: ${prune}", "prune: x${prune}"),
            "ApplicationSet spec.template.spec.syncPolicy.automated.prune: ${prune} is not text",
        ),
        (
            ("kind: AppProject\nmetadata:\n  name: models-${environment}\n", "kind: AppProject\nmetadata:\n"),
            "AppProject metadata.name: required",
        ),
        (
            (
                "    warn: true\n---\n",
                "    warn: true\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n---\n",
            ),
            "holds a ConfigMap: only the AppProject and the ApplicationSet are rendered",
        ),
        (
            ("prune: ${prune}", "prune: true"),
            "ApplicationSet spec.template.spec.syncPolicy.automated.prune: True is written here; write '${prune}'",
        ),
        (
            ("    applicationsSync: ${applications_sync}\n", ""),
            "ApplicationSet spec.syncPolicy.applicationsSync: None is written here; write '${applications_sync}'",
        ),
        (
            ("revision: ${target_revision}", "revision: main"),
            "ApplicationSet spec.generators[0].git.revision: 'main' is written here; write '${target_revision}'",
        ),
        (
            (
                "  template:\n    metadata:\n",
                '  templatePatch: "spec:\\n  syncPolicy:\\n    automated:\\n      prune: true\\n"\n'
                "  template:\n    metadata:\n",
            ),
            "ApplicationSet spec.templatePatch: not allowed",
        ),
        (
            ("project: models-${environment}", "project: default"),
            "ApplicationSet spec.template.spec.project: 'default' is written here; "
            "write the AppProject's metadata.name, 'models-${environment}'",
        ),
        (
            ("  sourceRepos:\n    - ${repo_url}\n", "  sourceRepos: 5\n"),
            "AppProject spec.sourceRepos: must be a list holding '${repo_url}'",
        ),
        (
            ("  generators:\n    - git:\n", "  generators: 5\n  unread:\n    - git:\n"),
            "ApplicationSet spec.generators: must be a list of git generators",
        ),
        (
            ("  generators:\n    - git:\n", "  generators: [5]\n  unread:\n    - git:\n"),
            "ApplicationSet spec.generators[0]: must hold `git` alone, holds 5",
        ),
        (
            ("  generators:\n    - git:\n", "  generators:\n    - git: 5\n  unread:\n    - git:\n"),
            "ApplicationSet spec.generators[0].git: must be a mapping, is 5",
        ),
    ],
    ids=[
        "missing",
        "two-projects",
        "no-project",
        "not-yaml",
        "unknown-placeholder",
        "boolean-inside-text",
        "no-name",
        "a-third-object",
        "prune-written-for-every-environment",
        "applications-sync-left-out",
        "copied-revision",
        "template-patch-prunes",
        "project-default",
        "source-repos-not-a-list",
        "generators-not-a-list",
        "generator-not-a-mapping",
        "git-not-a-mapping",
    ],
)
def test_a_broken_argocd_template_is_a_usage_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str | tuple[str, str] | None, says: str
) -> None:
    if isinstance(edit, tuple):
        repo = repo_with_template_edit(tmp_path, *edit)
    else:
        repo = copy_repo(tmp_path)
        path = repo / "platform" / TEMPLATE
        if edit is None:
            path.unlink()
        else:
            path.write_text(edit)
    from mlplat import validate

    code = validate.main(
        ["--repo", str(repo), str(repo / "apps" / "llm-chat"), "--env", "dev", "--no-policy-scan"]
    )
    err = capsys.readouterr().err
    assert code == 2 and says in err and "platform/argocd/models.yaml" in err, err
    assert "internal error" not in err, err


def test_a_question_mark_in_a_git_directory_matches_one_character_not_a_slash() -> None:
    assert path_match("apps/?/overlays/dev", "apps/x/overlays/dev")
    assert not path_match("apps/?/overlays/dev", "apps/xy/overlays/dev")
    assert not path_match("apps/a?b/overlays/dev", "apps/a/b/overlays/dev")
