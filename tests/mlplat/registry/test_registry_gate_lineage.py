"""MLP-REGISTRY-LINEAGE: staging and prod serve only versions an auditor can trace to data, code and a card."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlplat import registry_gate
from mlplat.promote import REPO, render_inference_service, with_version
from mlplat.retrain import lineage
from tests.support.fake_mlflow import FakeRegistry, serve
from tests.support.lineage import COMPLETE

APP = "iris-classifier"
SCORED = {
    registry_gate.EVALUATION_TAG: registry_gate.EVALUATION_PASSED,
    registry_gate.METRIC_TAG_PREFIX + "accuracy": "0.99",
}


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with serve(FakeRegistry()) as registry:
        yield registry


def judge(
    fake: FakeRegistry, env: str, tags: dict[str, str], artifacts: tuple[str, ...] | None = None
) -> list[registry_gate.Finding]:
    fake.add_version(
        APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=tags, aliases=("approved",), artifacts=artifacts
    )
    doc = with_version(render_inference_service(REPO, APP, env), "7", f"s3://mlplat-models/{APP}/7")
    return registry_gate.check([doc], fake.url)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_version_without_lineage_tags_is_refused_beyond_dev(fake: FakeRegistry, env: str) -> None:
    without = {k: v for k, v in COMPLETE.items() if k != lineage.DATA_SHA256}
    findings = judge(fake, env, {**SCORED, **without})
    assert [(f.rule, f.env) for f in findings] == [("MLP-REGISTRY-LINEAGE", env)]
    assert lineage.DATA_SHA256 in findings[0].message and "model card" not in findings[0].message


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_version_without_a_model_card_is_refused_beyond_dev(fake: FakeRegistry, env: str) -> None:
    without = {k: v for k, v in COMPLETE.items() if k != lineage.MODEL_CARD}
    findings = judge(fake, env, {**SCORED, **without})
    assert [f.rule for f in findings] == ["MLP-REGISTRY-LINEAGE"]
    assert "no model card" in findings[0].message


def test_empty_lineage_tag_counts_as_missing(fake: FakeRegistry) -> None:
    findings = judge(fake, "staging", {**SCORED, **COMPLETE, lineage.TRIGGERED_BY: "  "})
    assert [f.rule for f in findings] == ["MLP-REGISTRY-LINEAGE"]
    assert lineage.TRIGGERED_BY in findings[0].message


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_version_with_lineage_and_card_passes(fake: FakeRegistry, env: str) -> None:
    assert judge(fake, env, {**SCORED, **COMPLETE}) == []


def test_dev_takes_a_hand_registered_version_without_lineage(fake: FakeRegistry) -> None:
    assert judge(fake, "dev", SCORED) == []


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_a_card_tag_without_the_card_in_the_versions_run_is_refused_beyond_dev(
    fake: FakeRegistry, env: str
) -> None:
    """A hand-set `mlplat.model_card` tag is not a card: the gate looks for the file among the
    artifacts of the version's run, where `mlplat retrain register` logs it."""
    findings = judge(fake, env, {**SCORED, **COMPLETE}, artifacts=("model/MLmodel",))
    assert [(f.rule, f.env) for f in findings] == [("MLP-REGISTRY-LINEAGE", env)]
    assert "is not among the artifacts of run run-iris-classifier-7" in findings[0].message


def test_a_card_in_the_versions_run_passes(fake: FakeRegistry) -> None:
    assert (
        judge(fake, "prod", {**SCORED, **COMPLETE}, artifacts=(lineage.MODEL_CARD_FILE, "model/MLmodel"))
        == []
    )
