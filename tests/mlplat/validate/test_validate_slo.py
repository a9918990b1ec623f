"""MLP-SLO-TIER: a latency SLO label the alert rules cannot read is refused before it deploys."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.contract import SLO_P99_LABEL
from tests.support.validate_helpers import REPO, copy_repo, edit, run_json

LLM_ISVC = "apps/llm-chat/base/inferenceservice.yaml"


def test_an_slo_label_that_is_no_tier_is_refused_where_it_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """300 ms is no tier: the rules would map it to no SLO and the app's latency would go unjudged."""
    repo = copy_repo(tmp_path)
    edit(repo / LLM_ISVC, f'{SLO_P99_LABEL}: "none"', f'{SLO_P99_LABEL}: "300"')
    code, report = run_json(capsys, "--repo", str(repo), str(repo / "apps" / "llm-chat"), "--env", "dev")
    assert code == 1, report
    (finding,) = [f for f in report["findings"] if f["rule"] == "MLP-SLO-TIER"]
    lines = (repo / LLM_ISVC).read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if f'{SLO_P99_LABEL}: "300"' in text)
    assert (finding["file"], finding["line"], finding["resource"]) == (
        LLM_ISVC,
        line,
        "InferenceService/models-genai/llm-chat",
    )
    assert "'300'" in finding["message"]


def test_a_streaming_llm_opting_out_of_the_p99_slo_passes(capsys: pytest.CaptureFixture[str]) -> None:
    """llm-chat as shipped: `none` is a tier, so validate says nothing about it."""
    code, report = run_json(capsys, "--repo", str(REPO), str(REPO / "apps" / "llm-chat"), "--env", "dev")
    assert [f for f in report["findings"] if f["rule"] == "MLP-SLO-TIER"] == [], report
    assert code == 0, report
