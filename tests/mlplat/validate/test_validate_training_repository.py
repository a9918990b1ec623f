"""MLP-RETRAIN-REPOSITORY: a retraining pipeline's git artifacts name no repository. The program fills in
the one Argo CD syncs (`services.argocd.repo_url`, infra/gitops.py), so the stack file stays its one owner
and a URL a pipeline wrote would be a second one, silently overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.validate_helpers import REPO, copy_repo, run_json

CRDS = REPO.parent / "shared" / "reference" / "crds"
RULE = "MLP-RETRAIN-REPOSITORY"
# A checkout of the repository in iris-classifier's template; the first is `evaluate`'s (its third input artifact).
CHECKOUT = "              usernameSecret: {name: retraining-github, key: username}\n"


def test_pipelines_that_name_no_repository_pass_schema_and_rule(capsys: pytest.CaptureFixture[str]) -> None:
    """The CRD requires `repo`: the schema judges the pipeline as the program applies it, filled in."""
    code, report = run_json(
        capsys, "--schemas", str(CRDS), str(REPO / "apps" / "iris-classifier" / "training")
    )
    assert code == 0, report["findings"]


@pytest.mark.parametrize(
    ("written", "key"),
    [("repo: https://git.example.invalid/fork.git", "repo"), ("revision: release-x", "revision")],
)
def test_a_pipeline_naming_its_own_repository_or_revision_is_refused_where_it_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], written: str, key: str
) -> None:
    repo = copy_repo(tmp_path)
    template = repo / "apps" / "iris-classifier" / "training" / "workflowtemplate.yaml"
    text = template.read_text()
    assert text.count(CHECKOUT) == 3, "the evaluate, register and propose steps' checkouts"
    template.write_text(text.replace(CHECKOUT, f"              {written}\n" + CHECKOUT, 1))
    code, report = run_json(capsys, "--repo", str(repo), "--schemas", str(CRDS), str(template.parent))
    found = [(f["rule"], f["file"], f["path"]) for f in report["findings"]]
    assert code == 1
    assert found == [
        (
            RULE,
            "apps/iris-classifier/training/workflowtemplate.yaml",
            f"spec/templates/[3]/inputs/artifacts/[2]/git/{key}",
        )
    ], report["findings"]
    assert repr(written.split(": ", 1)[1]) in report["findings"][0]["message"]
