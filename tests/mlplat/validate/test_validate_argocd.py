"""Argo CD objects: schema-valid against the v3.5 CRDs, and shaped the way the platform relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.services.argocd import REPO_URL_FROM_CONFIG
from mlplat.validation.argocd import path_match
from tests.support.validate_helpers import REPO, copy_repo, rules, run_json

ENVS = ("dev", "staging", "prod")
REPO_URL = REPO_URL_FROM_CONFIG  # the program fills in services.argocd.repo_url


def load(env: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "platform" / "argocd" / env / name).read_text())
    return doc


def test_argocd_objects_match_their_crds(capsys: pytest.CaptureFixture[str]) -> None:
    """Strict: unknown fields in AppProject/ApplicationSet specs are findings too."""
    code, report = run_json(capsys, str(REPO / "platform" / "argocd"))
    assert (code, report["findings"]) == (0, [])
    assert len(report["targets"]) == 1


@pytest.mark.parametrize("env", ENVS)
def test_applicationset_shape(env: str) -> None:
    spec = load(env, "applicationset.yaml")["spec"]
    assert spec["goTemplate"] is True and spec["goTemplateOptions"] == ["missingkey=error"]
    (generator,) = spec["generators"]
    assert generator["git"]["repoURL"] == REPO_URL
    assert generator["git"]["directories"] == [{"path": f"apps/*/overlays/{env}"}]
    assert spec["syncPolicy"]["preserveResourcesOnDeletion"] is True
    template = spec["template"]
    assert template["metadata"]["name"] == "{{index .path.segments 1}}"
    assert "basename" not in yaml.safe_dump(template)
    assert template["spec"]["project"] == f"models-{env}"  # fixed, never templated
    assert template["spec"]["source"]["repoURL"] == REPO_URL
    automated = template["spec"]["syncPolicy"]["automated"]
    assert automated["selfHeal"] is True
    assert automated["prune"] is (env != "prod")  # prod never prunes on sync


@pytest.mark.parametrize("env", ENVS)
def test_appproject_restricts_sources_destinations_and_kinds(env: str) -> None:
    project = load(env, "appproject.yaml")
    assert project["metadata"]["name"] == f"models-{env}"
    spec = project["spec"]
    assert spec["sourceRepos"] == [REPO_URL]
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
    repo = copy_repo(tmp_path)
    appset = repo / "platform" / "argocd" / "dev" / "applicationset.yaml"
    appset.write_text(appset.read_text().replace("apps/*/overlays/dev", "apps/*/overlays/development"))
    code, report = run_json(capsys, "--repo", str(repo), "--env", "dev")
    unmatched = sorted(f["file"] for f in report["findings"] if f["rule"] == "MLP-APPSET-UNMATCHED")
    assert code == 1
    assert unmatched == [f"apps/{a}/overlays/dev" for a in ("churn-gbm", "iris-classifier", "llm-chat")]
    assert rules(report) == {"MLP-APPSET-UNMATCHED"}


def test_app_without_network_isolation_is_a_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    base = repo / "apps" / "churn-gbm" / "base" / "kustomization.yaml"
    base.write_text(base.read_text().replace("  - ../../components/network-isolation\n", ""))
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

    project = load_project(REPO, "dev")
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

    repo = copy_repo(tmp_path)
    project_file = repo / "platform" / "argocd" / "dev" / "appproject.yaml"
    text = project_file.read_text()
    assert text.count("namespace: models-*") == 1
    project_file.write_text(text.replace("namespace: models-*", "namespace: models-core-*"))
    project = load_project(repo, "dev")
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
    repo = copy_repo(tmp_path)
    appset = repo / "platform" / "argocd" / "dev" / "applicationset.yaml"
    text = appset.read_text()
    old = "          - path: apps/*/overlays/dev\n"
    assert text.count(old) == 1, text
    appset.write_text(
        text.replace(old, old + "          - path: apps/llm-chat/overlays/dev\n            exclude: true\n")
    )
    code, report = run_json(capsys, "--repo", str(repo), str(repo / "apps" / "llm-chat"), "--env", "dev")
    assert code == 1
    assert [(f["rule"], f["file"]) for f in report["findings"]] == [
        ("MLP-APPSET-UNMATCHED", "apps/llm-chat/overlays/dev")
    ]


@pytest.mark.parametrize(
    ("file", "text", "says"),
    [
        ("appproject.yaml", None, "platform/argocd/dev/appproject.yaml is missing"),
        ("appproject.yaml", "kind: AppProject\n---\nkind: AppProject\n", "must hold exactly one AppProject"),
        ("appproject.yaml", "kind: ConfigMap\n", "must hold exactly one AppProject"),
        ("applicationset.yaml", "kind: [\n", "platform/argocd/dev/applicationset.yaml is not valid YAML"),
    ],
    ids=["missing", "two-projects", "no-project", "not-yaml"],
)
def test_a_broken_argocd_file_is_a_usage_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, text: str | None, says: str
) -> None:
    repo = copy_repo(tmp_path)
    path = repo / "platform" / "argocd" / "dev" / file
    if text is None:
        path.unlink()
    else:
        path.write_text(text)
    from mlplat import validate

    code = validate.main(
        ["--repo", str(repo), str(repo / "apps" / "llm-chat"), "--env", "dev", "--no-policy-scan"]
    )
    err = capsys.readouterr().err
    assert code == 2 and says in err, err


def test_a_question_mark_in_a_git_directory_matches_one_character_not_a_slash() -> None:
    assert path_match("apps/?/overlays/dev", "apps/x/overlays/dev")
    assert not path_match("apps/?/overlays/dev", "apps/xy/overlays/dev")
    assert not path_match("apps/a?b/overlays/dev", "apps/a/b/overlays/dev")
