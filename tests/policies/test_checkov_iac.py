"""checkov over infra/bootstrap (terraform) and .github/workflows (github_actions): no failure except
the skips in policies/checkov/iac-skips.yaml, and every skip reasoned, real and still needed."""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from typing import Any

import pytest
import yaml

from tests.support.delivery_helpers import REPO

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
SKIPS_FILE = REPO / "policies" / "checkov" / "iac-skips.yaml"
TARGETS = {"terraform": REPO / "infra" / "bootstrap", "github_actions": REPO / ".github" / "workflows"}


def skips() -> dict[str, list[dict[str, Any]]]:
    data = yaml.safe_load(SKIPS_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "iac-skips.yaml: a mapping of framework -> list of {id, reason, resources}"
    return data


@cache
def checkov(framework: str, skip_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    """One real checkov run over one framework's target; JSON report."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make setup`")
    cmd = [str(CHECKOV), "-d", str(TARGETS[framework]), "--framework", framework, "-o", "json", "--quiet"]
    cmd += ["--skip-download"]  # offline: no guideline download from the Prisma Cloud API
    if skip_ids:
        cmd += ["--skip-check", ",".join(skip_ids)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    # checkov prints a bare summary when nothing failed; parsing errors would hide checks.
    summary = report.get("summary", report)
    assert summary["parsing_errors"] == 0, result.stdout[-3000:]
    assert summary["passed"] > 0, f"checkov checked nothing in {TARGETS[framework]}"
    return report


def failures(report: dict[str, Any]) -> list[dict[str, Any]]:
    return report.get("results", {}).get("failed_checks", [])


def describe(failed: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  {f['check_id']} {f['resource']} ({f['file_path']}:{f['file_line_range'][0]}): {f['check_name']}"
        for f in failed
    )


def test_skip_file_entries_are_reasoned_real_ids_scoped_to_resources() -> None:
    data = skips()
    assert set(data) == set(TARGETS), f"frameworks: {sorted(data)}"
    prefix = {"terraform": r"CKV2?_AWS_\d+", "github_actions": r"CKV2?_GHA_\d+"}
    for framework, entries in data.items():
        ids = [e["id"] for e in entries]
        assert len(ids) == len(set(ids)), f"{framework}: duplicate ids"
        for entry in entries:
            assert set(entry) == {"id", "reason", "resources"}, entry
            assert re.fullmatch(prefix[framework], entry["id"]), entry["id"]
            assert len(entry["reason"].split()) >= 8, f"{entry['id']}: give a real reason"
            assert entry["resources"], f"{entry['id']}: list the resources the skip is accepted on"


@pytest.mark.parametrize("framework", sorted(TARGETS))
def test_every_failure_is_a_listed_skip_and_every_skip_is_needed(framework: str) -> None:
    """Run without skips: a failure must match a listed (id, resource); a listed pair must still fail."""
    failed = failures(checkov(framework))
    accepted = {(e["id"], r) for e in skips()[framework] for r in e["resources"]}
    unexpected = [f for f in failed if (f["check_id"], f["resource"]) not in accepted]
    assert not unexpected, f"checkov {framework} failures not in iac-skips.yaml:\n{describe(unexpected)}"
    unneeded = accepted - {(f["check_id"], f["resource"]) for f in failed}
    assert not unneeded, f"iac-skips.yaml entries that no longer fail (remove them): {sorted(unneeded)}"


@pytest.mark.parametrize("framework", sorted(TARGETS))
def test_zero_failures_with_the_skip_file(framework: str) -> None:
    """What CI and a developer run: checkov with --skip-check from the file reports nothing."""
    ids = tuple(sorted(e["id"] for e in skips()[framework]))
    failed = failures(checkov(framework, ids))
    assert not failed, f"checkov {framework} failures:\n{describe(failed)}"
