"""Holes a reviewer found in validate's verdict (issue 14), each tried on a copy of this repository."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.validate_helpers import copy_repo, run_json

APP = "apps/iris-classifier"
PROD = f"{APP}/overlays/prod"


def findings(report: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["rule"] == rule]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1))


def add_patch(kustomization: Path, patch: str) -> None:
    kustomization.write_text(kustomization.read_text() + patch)


def test_typo_in_prod_patch_target_is_refused_not_silently_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kustomize skipped the version patch; prod would serve the base's version with no finding."""
    repo = copy_repo(tmp_path)
    edit(repo / PROD / "kustomization.yaml", "name: iris-classifier", "name: iris-clasifier")
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "prod")
    assert code == 1
    (finding,) = report["findings"]  # one mistake, one finding (no version drift on top)
    assert (finding["rule"], finding["file"], finding["line"]) == (
        "MLP-PATCH-UNMATCHED",
        f"{PROD}/kustomization.yaml",
        25,
    )
    assert "InferenceService/iris-classifier" in finding["fix"]


def test_later_patch_overriding_the_declared_version_is_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """model-version.yaml says v1, a later patch makes the render serve v7: the gate judged v1."""
    repo = copy_repo(tmp_path)
    add_patch(
        repo / PROD / "kustomization.yaml",
        "  - target: {kind: InferenceService}\n"
        "    patch: |-\n"
        "      - {op: replace, path: /spec/predictor/model/storageUri, value: s3://mlplat-models/iris-classifier/7}\n",
    )
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "prod")
    assert code == 1
    (drift,) = findings(report, "MLP-VERSION-DRIFT")
    assert (drift["file"], drift["line"]) == (f"{PROD}/model-version.yaml", 10)
    assert "s3://mlplat-models/iris-classifier/7" in drift["message"]


def _second_app(repo: Path, namespace: str = "models-core-ml") -> Path:
    """A copy of iris-classifier named `second`, in `namespace`."""
    second = repo / "apps" / "second"
    subprocess.run(["cp", "-r", str(repo / APP), str(second)], check=True)
    for path in second.rglob("*.yaml"):
        text = path.read_text().replace("iris-classifier", "second").replace("models-core-ml", namespace)
        path.write_text(text)
    return second


def test_second_app_in_a_team_namespace_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    _second_app(repo)
    code, report = run_json(capsys, "--repo", str(repo), "--env", "dev")
    assert code == 1
    shared = {(f["file"], f["line"], f["env"]) for f in findings(report, "MLP-NAMESPACE-SHARED")}
    assert shared == {
        ("apps/iris-classifier/base/namespace.yaml", 4, "dev"),
        ("apps/iris-classifier/base/inferenceservice.yaml", 6, "dev"),
        ("apps/second/base/namespace.yaml", 4, "dev"),
        ("apps/second/base/inferenceservice.yaml", 6, "dev"),
    }


def test_changed_app_is_compared_with_every_unchanged_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--changed renders only the new app, yet finds the namespace iris-classifier already owns."""
    repo = copy_repo(tmp_path, git=True)
    _second_app(repo)
    code, report = run_json(capsys, "--repo", str(repo), "--changed")
    assert code == 1
    assert all(t.startswith("apps/second/") for t in report["targets"])
    messages = {
        (f["file"], f["env"], f["message"].split(";")[0]) for f in findings(report, "MLP-NAMESPACE-SHARED")
    }
    assert messages == {
        ("apps/second/base/namespace.yaml", "dev,staging,prod", "namespace models-core-ml is also used by app(s) iris-classifier"),
        ("apps/second/base/inferenceservice.yaml", "dev,staging,prod", "namespace models-core-ml is also used by app(s) iris-classifier"),
    }  # fmt: skip


def test_second_app_in_its_own_namespace_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = copy_repo(tmp_path)
    _second_app(repo, "models-second")
    code, report = run_json(capsys, str(repo / "apps" / "second"), "--repo", str(repo))
    assert (code, report["findings"]) == (0, [])


def test_app_without_restricted_pod_component_fails_pod_security(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Removing the component that sets the security contexts used to pass; it is one finding for
    all three environments, at the model container in the base."""
    repo = copy_repo(tmp_path)
    edit(repo / APP / "base" / "kustomization.yaml", "  - ../../components/restricted-pod\n", "")
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo))
    assert code == 1
    assert [(f["rule"], f["file"], f["line"], f["env"]) for f in report["findings"]] == [
        ("MLP-POD-SECURITY", f"{APP}/base/inferenceservice.yaml", 19, "dev,staging,prod")
    ]


def test_overlay_relabelling_its_namespace_privileged_is_refused_at_the_patch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    add_patch(
        repo / PROD / "kustomization.yaml",
        "  - target: {kind: Namespace}\n"
        "    patch: |-\n"
        "      - op: replace\n"
        "        path: /metadata/labels/pod-security.kubernetes.io~1enforce\n"
        "        value: privileged\n",
    )
    code, report = run_json(capsys, str(repo / PROD), "--repo", str(repo))
    assert code == 1
    assert [(f["rule"], f["file"], f["line"]) for f in report["findings"]] == [
        ("MLP-POD-SECURITY-LABEL", f"{PROD}/kustomization.yaml", 33)
    ]


def test_allow_all_network_policy_from_an_overlay_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    add_patch(
        repo / PROD / "kustomization.yaml",
        "  - target: {kind: NetworkPolicy, name: allow-egress-model-store}\n"
        "    patch: |-\n"
        "      - {op: replace, path: /spec/egress/0/to/0, value: {ipBlock: {cidr: 0.0.0.0/0}}}\n",
    )
    code, report = run_json(capsys, str(repo / PROD), "--repo", str(repo))
    assert code == 1
    assert [(f["rule"], f["file"], f["line"]) for f in report["findings"]] == [
        ("MLP-NETPOL-WIDENS", f"{PROD}/kustomization.yaml", 31)
    ]


def test_bare_float_cpu_in_an_overlay_points_at_the_overlay_and_says_how_to_quote_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    add_patch(
        repo / PROD / "kustomization.yaml",
        "  - target: {kind: InferenceService}\n"
        "    patch: |-\n"
        "      - op: replace\n"
        "        path: /spec/predictor/model/resources/requests/cpu\n"
        "        value: 0.25\n",
    )
    code, report = run_json(capsys, str(repo / PROD), "--repo", str(repo))
    assert code == 1
    (finding,) = report["findings"]
    assert (finding["rule"], finding["file"], finding["line"]) == (
        "MLP-SCHEMA",
        f"{PROD}/kustomization.yaml",
        33,
    )
    assert finding["fix"].startswith('quote it, e.g. `cpu: "250m"`')


def test_one_mistake_in_the_base_is_one_finding_listing_every_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    edit(repo / APP / "base" / "inferenceservice.yaml", "cpu: 500m", "cpu: 0.5")
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo))
    assert code == 1
    assert [(f["rule"], f["file"], f["line"], f["env"]) for f in report["findings"]] == [
        ("MLP-SCHEMA", f"{APP}/base/inferenceservice.yaml", 25, "dev,staging,prod")
    ]


def test_checkov_findings_carry_the_line_of_the_overlay_that_set_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from mlplat import validate

    repo = copy_repo(tmp_path)
    add_patch(
        repo / PROD / "kustomization.yaml",
        "  - target: {kind: InferenceService}\n"
        "    patch: |-\n"
        "      - {op: add, path: /spec/predictor/model/image, value: 'docker.io/library/python:latest'}\n",
    )
    code = validate.main([str(repo / PROD), "--repo", str(repo), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    image = [f for f in report["findings"] if f["rule"] == "CKV_MLP_7"]
    assert [(f["file"], f["line"]) for f in image] == [(f"{PROD}/kustomization.yaml", 31)]
