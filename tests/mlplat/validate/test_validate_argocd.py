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
