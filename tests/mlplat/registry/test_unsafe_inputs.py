"""Files the registry gate reads from the repository, when they cannot be read safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplat import registry_gate

from .conftest import APP


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"metric: " + b"[" * 200_000 + b"]" * 200_000 + b"\n", "nested more than 100 levels"),
        (b"metric: accuracy\ndescription: \xff\n", "not UTF-8"),
    ],
    ids=["deep-nesting", "not-utf8"],
)
def test_unsafe_evaluation_file_is_an_evaluation_error_not_a_crash(
    repo_copy: Path, data: bytes, reason: str
) -> None:
    (repo_copy / "apps" / APP / "evaluation.yaml").write_bytes(data)
    with pytest.raises(registry_gate.EvaluationFileError, match=reason) as raised:
        registry_gate.load_evaluation(APP, repo_copy)
    assert f"apps/{APP}/evaluation.yaml" in str(raised.value)
