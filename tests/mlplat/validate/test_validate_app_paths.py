"""What Argo CD deploys from an app path is what validate judged (review of validate's governance).

The ApplicationSet makes an Application of every folder `apps/*/overlays/<env>` whatever it holds, and
Argo CD picks the tool from the folder's files and merges `.argocd-source*.yaml` into the source; an
app's kustomization may read only its own folder and the shared components, so `--changed` sees every
change that reaches it. Each case is tried on a copy of this repository.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlplat.validation.targets import changed_targets
from tests.support.validate_helpers import copy_repo, edit, run_json

# An InferenceService nobody reviewed: another team's namespace, 50 replicas of 8 GPUs, a foreign model.
ROGUE = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: rogue, namespace: models-core-ml}
spec:
  predictor:
    minReplicas: 50
    model:
      modelFormat: {name: sklearn}
      storageUri: s3://someone-elses-bucket/model
      resources: {limits: {nvidia.com/gpu: "8"}}
"""


def where(report: dict[str, Any], rule: str) -> list[tuple[str, int | None, str | None]]:
    return sorted((f["file"], f["line"], f["env"]) for f in report["findings"] if f["rule"] == rule)


def plant(repo: Path, path: str, text: str = ROGUE) -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo, check=True, capture_output=True,
    )  # fmt: skip


def on_a_branch(repo: Path, change: str) -> None:
    """The change, staged, committed on a branch off main: what a pull request's `--changed` compares."""
    git(repo, "checkout", "-qb", "feature")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", change)


def test_an_overlay_without_a_kustomization_is_refused_not_passed_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Argo CD applies such a folder as plain manifests; validate used to skip it and say OK."""
    repo = copy_repo(tmp_path)
    plant(repo, "apps/rogue/overlays/prod/isvc.yaml")
    code, report = run_json(capsys, "--repo", str(repo), "--env", "prod")
    assert code == 1
    assert "apps/rogue/overlays/prod" in report["targets"]
    assert where(report, "MLP-OVERLAY-TOOL") == [("apps/rogue/overlays/prod", None, "prod")]


def test_a_chart_file_sorting_after_the_kustomization_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Argo CD's discovery takes the folder for Helm when a `*Chart.yaml` comes after the kustomization."""
    repo = copy_repo(tmp_path)
    plant(repo, "apps/llm-chat/overlays/staging/zChart.yaml", "apiVersion: v2\nname: x\nversion: 0.1.0\n")
    code, report = run_json(capsys, str(repo / "apps/llm-chat/overlays/staging"), "--repo", str(repo))
    assert code == 1
    assert where(report, "MLP-OVERLAY-TOOL") == [
        ("apps/llm-chat/overlays/staging/zChart.yaml", None, "staging")
    ]


def test_an_overlay_of_no_environment_and_an_app_without_overlays_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    plant(repo, "apps/iris-classifier/overlays/qa/kustomization.yaml", "resources: [../../base]\n")
    plant(repo, "apps/loose/base/isvc.yaml")
    code, report = run_json(capsys, "--repo", str(repo))
    assert code == 1
    assert where(report, "MLP-APP-LAYOUT") == [
        ("apps/iris-classifier/overlays/qa", None, None),
        ("apps/loose", None, None),
    ]
    # Neither belongs to an environment: a run for one leaves them out.
    code, report = run_json(capsys, "--repo", str(repo), "--env", "prod")
    assert (code, where(report, "MLP-APP-LAYOUT")) == (0, [])


@pytest.mark.parametrize(
    ("planted", "target", "rule", "env"),
    [
        ("apps/rogue/overlays/prod/isvc.yaml", "apps/rogue/overlays/prod", "MLP-OVERLAY-TOOL", "prod"),
        ("apps/loose/base/isvc.yaml", "apps/loose", "MLP-APP-LAYOUT", None),
    ],
    ids=["overlay-without-kustomization", "folder-without-overlays"],
)
def test_the_changed_gate_refuses_what_argo_cd_would_deploy_unjudged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], planted: str, target: str, rule: str, env: str | None
) -> None:
    """The pull-request gate (`--changed`) selects such a path as a target of its own, not nothing."""
    repo = copy_repo(tmp_path, git=True)
    plant(repo, planted)
    code, report = run_json(capsys, "--repo", str(repo), "--changed")
    assert (code, report["targets"]) == (1, [target])
    assert where(report, rule) == [(target, None, env)]


@pytest.mark.parametrize(
    "path",
    [
        "apps/iris-classifier/overlays/prod/.argocd-source.yaml",
        "apps/iris-classifier/overlays/prod/.argocd-source-iris-classifier.yaml",
        "apps/iris-classifier/base/.argocd-source.yaml",
        "apps/components/.argocd-source.yaml",
        "apps/.argocd-source.yaml",
    ],
)
def test_an_argocd_source_file_under_apps_is_refused_by_the_changed_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    """Argo CD merges it into the Application's source (here: a name prefix and a replica count) after
    validate judged the kustomization."""
    repo = copy_repo(tmp_path, git=True)
    plant(repo, path, "kustomize:\n  namePrefix: x-\n  replicas: [{name: iris-classifier, count: 40}]\n")
    code, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "prod")
    assert code == 1
    assert where(report, "MLP-ARGOCD-SOURCE") == [(path, None, "prod")]


def test_references_leaving_the_app_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--changed` re-validates an app when its folder or the components change: another app's base or
    a folder outside apps/ would change what it deploys unseen."""
    repo = copy_repo(tmp_path)
    kustomization = repo / "apps/churn-gbm/overlays/prod/kustomization.yaml"
    edit(
        kustomization,
        "  - ../../../components/prod-availability\n",
        "  - ../../../components/prod-availability\n"
        "  - ../../../iris-classifier/base/namespace.yaml\n"
        "  - ../../../../environments\n",
    )
    code, report = run_json(capsys, str(repo / "apps/churn-gbm/overlays/prod"), "--repo", str(repo))
    assert code == 1
    name = "apps/churn-gbm/overlays/prod/kustomization.yaml"
    assert where(report, "MLP-REFERENCE-SCOPE") == [(name, 8, "prod"), (name, 9, "prod")]


@pytest.mark.parametrize("gpus", ["1e1", "10000m"])
def test_a_gpu_count_in_another_quantity_form_still_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], gpus: str
) -> None:
    """Kubernetes reads `1e1` and `10000m` as 10 GPUs; capacity read them as 0, so with CKV_MLP_2
    waived no GPU rule saw them."""
    repo = copy_repo(tmp_path)
    isvc = repo / "apps/llm-chat/base/inferenceservice.yaml"
    for memory in ("24Gi", "32Gi"):  # request and limit
        edit(
            isvc, f'memory: {memory}, nvidia.com/gpu: "1"}}', f'memory: {memory}, nvidia.com/gpu: "{gpus}"}}'
        )
    code, report = run_json(capsys, str(repo / "apps/llm-chat/overlays/prod"), "--repo", str(repo))
    assert code == 1
    assert {"MLP-GPU-FIT", "MLP-GPU-CAP"} & {f["rule"] for f in report["findings"]}


def test_a_retraining_pipeline_reading_outside_its_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--changed` renders a pipeline again only when its own folder changes."""
    repo = copy_repo(tmp_path)
    kustomization = repo / "apps/churn-gbm/training/kustomization.yaml"
    edit(kustomization, "  - cronworkflow.yaml\n", "  - cronworkflow.yaml\n  - ../base/serviceaccount.yaml\n")
    code, report = run_json(capsys, str(repo / "apps/churn-gbm/training"), "--repo", str(repo))
    assert code == 1
    (finding,) = [f for f in report["findings"] if f["rule"] == "MLP-REFERENCE-SCOPE"]
    assert (finding["file"], "apps/churn-gbm/training/" in finding["message"]) == (
        "apps/churn-gbm/training/kustomization.yaml",
        True,
    )


def test_an_overlay_reading_its_apps_retraining_pipeline_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--changed` sends a change under apps/<app>/training/ to the pipeline alone: an overlay reading a
    folder there would deploy a later change to it (an allow-all NetworkPolicy) unvalidated."""
    repo = copy_repo(tmp_path)
    plant(repo, "apps/iris-classifier/training/serving-extra/kustomization.yaml", "resources: [cm.yaml]\n")
    plant(
        repo,
        "apps/iris-classifier/training/serving-extra/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: iris-extra, namespace: models-core-ml}\n",
    )
    overlay = repo / "apps/iris-classifier/overlays/dev"
    edit(
        overlay / "kustomization.yaml",
        "  - ../../base\n",
        "  - ../../base\n  - ../../training/serving-extra\n",
    )
    code, report = run_json(capsys, str(overlay), "--repo", str(repo))
    assert code == 1
    assert where(report, "MLP-REFERENCE-SCOPE") == [
        ("apps/iris-classifier/overlays/dev/kustomization.yaml", 6, "dev")
    ]


def test_a_file_moved_out_of_an_app_still_revalidates_the_app_it_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """git diff reports a rename under the new path only: churn-gbm's dev overlay lost its kustomization
    (Argo CD applies it as plain manifests) and the gate validated iris-classifier alone."""
    repo = copy_repo(tmp_path, git=True)
    git(
        repo, "mv", "apps/churn-gbm/overlays/dev/kustomization.yaml",
        "apps/iris-classifier/overlays/dev/kustomization-old.yaml.txt",
    )  # fmt: skip
    on_a_branch(repo, "move a file from one app to another")
    code, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    assert (code, report["targets"]) == (
        1,
        ["apps/churn-gbm/overlays/dev", "apps/iris-classifier/overlays/dev"],
    )
    assert where(report, "MLP-OVERLAY-TOOL") == [("apps/churn-gbm/overlays/dev", None, "dev")]


@pytest.mark.parametrize("state", ["committed", "staged", "untracked"])
def test_a_changed_file_with_a_non_ascii_name_revalidates_its_app(tmp_path: Path, state: str) -> None:
    """git quotes such a name (`"apps/iris-classifier/overlays/dev/extr\\303\\244.yaml"`) unless told
    not to, and the quoted name belonged to no app: `--changed` validated nothing."""
    repo = copy_repo(tmp_path, git=True)
    plant(repo, "apps/iris-classifier/overlays/dev/extr\u00e4.yaml", "kind: ConfigMap\n")
    if state == "committed":
        on_a_branch(repo, "a file with a non-ASCII name")
    elif state == "staged":
        git(repo, "add", "-A")
    assert [t.rel for t in changed_targets(repo, "main", "dev")] == ["apps/iris-classifier/overlays/dev"]


def test_an_overlays_folder_among_the_components_makes_no_app_of_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """apps/components/overlays/ made `--changed` take the components for an app: a change to a
    component (here: the default-deny policy admitting everything) validated that fake app alone.
    Argo CD would deploy it as an app named `components` (`apps/*/overlays/<env>`)."""
    repo = copy_repo(tmp_path, git=True)
    plant(repo, "apps/components/overlays/dev/kustomization.yaml", "resources: []\n")
    edit(
        repo / "apps/components/network-isolation/networkpolicies.yaml",
        "  name: default-deny-all\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
        "  name: default-deny-all\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n  ingress: [{}]\n",
    )
    code, report = run_json(capsys, "--repo", str(repo), "--changed")
    overlays = [p.relative_to(repo).as_posix() for p in repo.glob("apps/*/overlays/*")]
    overlays = [o for o in overlays if not o.startswith("apps/components/")]
    assert code == 1
    assert report["targets"] == sorted([*overlays, "apps/components/overlays"])
    assert where(report, "MLP-APP-LAYOUT") == [("apps/components/overlays", None, None)]
    # Every app's namespace lost its default deny, and the gate says so for each.
    denied = {f["file"] for f in report["findings"] if f["rule"] == "MLP-NETPOL-DEFAULT-DENY"}
    assert denied == {f"apps/{o.split('/')[1]}/base/inferenceservice.yaml" for o in overlays}


def test_a_promote_journal_committed_into_an_app_is_refused_by_the_changed_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A journal outside git is restored without the registry gate by the next promote of the app."""
    repo = copy_repo(tmp_path, git=True)
    path = "apps/iris-classifier/overlays/.mlplat-promote.journal"
    plant(repo, path, '{"files": []}\n')
    on_a_branch(repo, "a journal rides along")
    code, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "prod")
    assert code == 1
    assert where(report, "MLP-PROMOTE-JOURNAL") == [(path, None, "prod")]
