"""Input that tries to be something else: a --base that git would read as an option, and files
that cannot be read safely (YAML bombs, absurd nesting, huge or not UTF-8) — each is refused with
a clear message or a finding naming the file, never a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlplat import validate
from tests.support.validate_helpers import copy_repo


def validate_cli(repo: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlplat.validate", "--repo", str(repo), *argv, "--no-policy-scan"],
        cwd=repo, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "base",
    [
        "--output={out}",  # git diff would write the diff to a file of the caller's choosing
        "--ext-diff",
        "-ccore.pager=touch {out}",
        "--end-of-options",
    ],
)
def test_base_cannot_be_turned_into_a_git_option(tmp_path: Path, base: str) -> None:
    repo = copy_repo(tmp_path / "repo", git=True)
    (repo / "apps" / "iris-classifier" / "base" / "notes.txt").write_text("a change to validate\n")
    out = tmp_path / "leak"
    result = validate_cli(repo, "--changed", f"--base={base.format(out=out)}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--base" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("leak*")), "git ran with an option smuggled in through --base"


def test_base_that_is_a_commit_still_works(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo", git=True)
    result = validate_cli(repo, "--changed", "--base", "main~0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no app changed since main~0" in result.stdout


def billion_laughs() -> bytes:
    text = 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, 10):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n"
    return text.encode()


UNSAFE = {
    "billion-laughs": (billion_laughs(), "nodes once its aliases are expanded"),
    "flow-nesting": (b"x: " + b"[" * 200_000 + b"]" * 200_000 + b"\n", "nested more than 100 levels"),
    "block-nesting": (b"".join(b"  " * i + b"k:\n" for i in range(1500)), "nested more than 100 levels"),
    "block-nesting-cr": (b"".join(b"  " * i + b"k:\r" for i in range(1500)), "nested more than 100 levels"),
    "compact-nesting": (b"- " * 200_000 + b"x\n", "nested more than 100 levels"),
    "huge": (b"# padding\n" * 600_000, "larger than 5 MiB"),
    "not-utf8": (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \xff\xfe}\n", "not UTF-8"),
}
OVERLAY = "apps/iris-classifier/overlays/dev"


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_file_in_an_overlay_is_a_finding_and_never_reaches_kustomize(
    tmp_path: Path, case: str
) -> None:
    data, reason = UNSAFE[case]
    repo = copy_repo(tmp_path / "repo")
    # A file the overlay patches the InferenceService with: kustomize would parse it.
    (repo / OVERLAY / "model-version.yaml").write_bytes(data)
    result = validate_cli(repo, "--format", "json", f"{repo}/{OVERLAY}")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    report = json.loads(result.stdout)
    (finding,) = [f for f in report["findings"] if f["file"] == f"{OVERLAY}/model-version.yaml"]
    assert finding["rule"] == "MLP-YAML" and reason in finding["message"], finding
    assert not [f for f in report["findings"] if f["rule"] == "MLP-KUSTOMIZE"]  # kustomize never ran on it


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_plain_manifest_is_a_finding_not_a_crash(tmp_path: Path, case: str) -> None:
    data, reason = UNSAFE[case]
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "bad.yaml").write_bytes(data)
    (manifests / "good.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: fine\n")
    result = validate_cli(copy_repo(tmp_path / "repo"), "--format", "json", str(manifests))
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert [f["rule"] for f in findings if f["file"].endswith("bad.yaml")] == ["MLP-YAML"]
    assert any(reason in f["message"] for f in findings if f["file"].endswith("bad.yaml"))


@pytest.mark.parametrize("case", ["billion-laughs", "flow-nesting", "not-utf8"])
def test_unsafe_stack_file_is_a_config_error_naming_it(tmp_path: Path, case: str) -> None:
    repo = copy_repo(tmp_path / "repo")
    (repo / "environments" / "Pulumi.dev.yaml").write_bytes(UNSAFE[case][0])
    result = validate_cli(repo, f"{repo}/{OVERLAY}")
    assert result.returncode == 2
    assert "Pulumi.dev.yaml" in result.stderr and "cannot be read safely" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["not-utf8", "a-folder", "missing", "billion-laughs", "flow-nesting"])
def test_unreadable_stack_file_makes_plan_exit_2_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    import argparse

    import infra.config
    from mlplat import plan

    stack = tmp_path / "Pulumi.dev.yaml"
    if case == "a-folder":
        stack.mkdir()
    elif case != "missing":
        stack.write_bytes(UNSAFE[case][0])
    monkeypatch.setattr(infra.config, "stack_file", lambda env: stack)
    args = argparse.Namespace(env="dev", no_policies=True, out=tmp_path / "plan.json")
    assert plan.run(args) == 2
    err = capsys.readouterr().err
    assert f"invalid stack configuration in {stack}" in err, err
    assert not (tmp_path / "plan.json").exists()


@pytest.mark.parametrize("case", ["billion-laughs", "flow-nesting", "not-utf8"])
def test_unsafe_argocd_project_is_a_usage_error_naming_it(tmp_path: Path, case: str) -> None:
    repo = copy_repo(tmp_path / "repo")
    (repo / "platform" / "argocd" / "models.yaml").write_bytes(UNSAFE[case][0])
    result = validate_cli(repo, f"{repo}/{OVERLAY}")
    assert result.returncode == 2
    assert "platform/argocd/models.yaml" in result.stderr, result.stderr
    assert "cannot be read safely" in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize("case", ["flow-nesting", "not-utf8", "huge"])
def test_unsafe_checkov_skip_list_is_a_scan_error_not_a_crash(tmp_path: Path, case: str) -> None:
    from mlplat import policy_scan

    skips = tmp_path / "skips.yaml"
    skips.write_bytes(UNSAFE[case][0])
    with pytest.raises(policy_scan.PolicyScanError, match="cannot be read safely"):
        policy_scan.load_skips(skips)


def test_unsafe_stack_file_of_another_environment_is_a_policy_context_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The checkov scan loads every environment's limits, also those validate was not asked about."""
    import infra.config
    from mlplat import policy_scan

    real, bad = infra.config.stack_file, tmp_path / "Pulumi.prod.yaml"
    bad.write_bytes(UNSAFE["flow-nesting"][0])
    monkeypatch.setattr(infra.config, "stack_file", lambda env: bad if env == "prod" else real(env))
    context, errors = policy_scan.policy_context()
    assert set(context) == {"dev", "staging"}
    assert "cannot be read safely" in errors["prod"] and str(bad) in errors["prod"]


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_path_that_is_no_file_or_folder_is_a_usage_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """Was `internal error: NotADirectoryError`."""
    if kind == "device":
        path = Path("/dev/zero")
    else:
        path = tmp_path / "pipe"
        os.mkfifo(path)
    assert validate.main([str(path), "--env", "dev", "--no-policy-scan"]) == 2
    err = capsys.readouterr().err
    assert f"mlplat validate: {path}: not a file or folder" in err, err
