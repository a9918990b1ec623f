"""The command line: target selection, --changed, exit codes, and no traceback on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlplat import validate
from mlplat.findings import Finding
from mlplat.validation import UsageError
from mlplat.validation.schemas import unknown_fields
from mlplat.validation.targets import changed_targets, resolve
from tests.support.checkout_copy import checkout_copy, mlplat
from tests.support.validate_helpers import REPO, copy_repo, run_json

BROKEN = REPO / "tests" / "fixtures" / "broken"


def cli(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlplat.validate", *argv, "--no-policy-scan"],
        cwd=cwd, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["no/such/path"], 2, "no/such/path: no such file or folder"),
        (["--env", "qa"], 2, "invalid choice: 'qa'"),
        (
            ["apps/iris-classifier/overlays/dev", "--env", "prod"],
            2,
            "is the dev overlay, but --env says prod",
        ),
        (["--changed", "apps"], 2, "give PATHs or --changed, not both"),
        (
            ["--schemas", "/no/such/crds", "apps/iris-classifier"],
            2,
            "--schemas /no/such/crds: no such folder",
        ),
        (["--changed", "--base", "no-such-ref"], 2, "--base 'no-such-ref': no such commit"),
        ([str(BROKEN / "invalid-yaml")], 1, "MLP-YAML"),
        ([str(BROKEN / "kustomize-error")], 1, "MLP-KUSTOMIZE"),
    ],
)
def test_exit_codes_and_no_traceback(argv: list[str], code: int, says: str) -> None:
    result = cli(*argv)
    assert result.returncode == code, result.stderr
    assert says in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_app_folder_expands_to_its_overlays() -> None:
    targets = resolve(["apps/llm-chat"], REPO, None)
    assert [(t.rel, t.env) for t in targets] == [
        (f"apps/llm-chat/overlays/{e}", e) for e in ("dev", "prod", "staging")
    ]
    assert [t.rel for t in resolve(["apps/llm-chat"], REPO, "prod")] == ["apps/llm-chat/overlays/prod"]
    with pytest.raises(UsageError):
        resolve(["apps/components/network-isolation/networkpolicies.yaml/x"], REPO, None)


def _commit_all(repo: Path) -> None:
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "change"],
        cwd=repo,
        check=True,
    )


def test_changed_selects_only_touched_apps(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path, git=True)
    assert changed_targets(repo, "main", None) == []
    subprocess.run(["git", "checkout", "-qb", "feature"], cwd=repo, check=True)
    version = repo / "apps" / "churn-gbm" / "overlays" / "prod" / "model-version.yaml"
    version.write_text(version.read_text().replace('"1"', '"2"').replace("/1\n", "/2\n"))
    _commit_all(repo)  # committed on the branch: found through REF...HEAD
    assert [t.rel for t in changed_targets(repo, "main", None)] == [
        f"apps/churn-gbm/overlays/{e}" for e in ("dev", "prod", "staging")
    ]
    assert [t.rel for t in changed_targets(repo, "main", "prod")] == ["apps/churn-gbm/overlays/prod"]
    (repo / "apps" / "llm-chat" / "base" / "notes.txt").write_text("untracked\n")  # uncommitted counts too
    assert {t.app for t in changed_targets(repo, "main", None)} == {"churn-gbm", "llm-chat"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("apps/components/network-isolation/networkpolicies.yaml", 9),
        ("platform/argocd/models.yaml", 9),  # every environment's AppProject and ApplicationSet
        ("environments/Pulumi.staging.yaml", 3),
    ],
)
def test_changed_shared_inputs_affect_every_app(tmp_path: Path, path: str, expected: int) -> None:
    repo = copy_repo(tmp_path, git=True)
    with (repo / path).open("a") as handle:
        handle.write("# touched\n")
    found = changed_targets(repo, "main", None)
    assert len(found) == expected
    assert len({t.app for t in found}) == 3


def test_a_change_to_the_argocd_renderer_revalidates_every_app(tmp_path: Path) -> None:
    """infra/gitops.py makes every environment's AppProject and ApplicationSet: a pull request that only
    changes it changes what every overlay is judged against."""
    (tmp_path / "infra").mkdir()
    renderer = tmp_path / "infra" / "gitops.py"
    renderer.write_text('"""Renders every environment\'s AppProject and ApplicationSet."""\n')
    repo = copy_repo(tmp_path, git=True)
    with renderer.open("a") as handle:
        handle.write("# touched\n")
    found = changed_targets(repo, "main", None)
    assert len(found) == 9 and len({t.app for t in found}) == 3, found


def test_changed_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = copy_repo(tmp_path, git=True)
    code, report = run_json(capsys, "--repo", str(repo), "--changed")
    assert (code, report["targets"], report["notes"]) == (
        0,
        [],
        ["nothing to validate (no app changed since main)"],
    )
    isvc = repo / "apps" / "iris-classifier" / "base" / "inferenceservice.yaml"
    isvc.write_text(
        isvc.read_text().replace("    maxReplicas: 2\n", "    maxReplicas: 2\n    maxReplica: 3\n")
    )
    code, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    assert code == 1
    assert report["targets"] == ["apps/iris-classifier/overlays/dev"]
    # The line of the misspelt key itself, not the object's first line.
    assert [(f["rule"], f["file"], f["line"]) for f in report["findings"]] == [
        ("MLP-UNKNOWN-FIELD", "apps/iris-classifier/base/inferenceservice.yaml", 22)
    ]


def test_strict_walk_honours_open_schemas() -> None:
    schema = {
        "type": "object",
        "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "closed": {"type": "object"},
            "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
        },
    }
    value = {
        "free": {"x": 1},
        "labels": {"y": "z"},
        "closed": {"k": 1},
        "port": 80,
        "items": [{"a": "1", "b": 2}],
    }
    assert unknown_fields(schema, value) == ["closed.k", "items[0].b"]


class RegistryUnavailable(Exception):
    pass


def _fake_gate(monkeypatch: pytest.MonkeyPatch, findings: list[Finding] | None) -> None:
    """Stands in for the registry's answers: None means the registry cannot be reached."""
    from mlplat import registry_gate

    def check(docs: object, url: str, *, repo_root: object) -> list[Finding]:
        if findings is None:
            raise registry_gate.RegistryUnavailable(f"registry down at {url}")
        return findings

    monkeypatch.setattr(registry_gate, "check", check)


def test_registry_gate_seam(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    target = str(BROKEN / "forbidden-kind")
    gate_finding = Finding(
        "apps/x", "InferenceService/models-x/x", "MLP-REGISTRY", "no such version", "register it"
    )
    _fake_gate(monkeypatch, [gate_finding])
    code, report = run_json(capsys, target, "--registry", "http://mlflow.invalid")
    assert code == 1 and "MLP-REGISTRY" in {f["rule"] for f in report["findings"]}
    _fake_gate(monkeypatch, None)
    assert validate.main([target, "--registry", "http://mlflow.invalid", "--no-policy-scan"]) == 2
    assert "registry down at http://mlflow.invalid" in capsys.readouterr().err


def test_without_the_crds_beside_the_clone_findings_and_note_both_say_custom_resources_were_not_checked(
    tmp_path: Path,
) -> None:
    """The note said custom resources "could not be schema-checked" while each of them was an MLP-SCHEMA
    finding claiming it was neither a Kubernetes kind nor a known CRD (a wrong kind, by its words)."""
    repo = checkout_copy(tmp_path / "clone")  # no ../shared/reference/crds beside it
    result = mlplat(repo, "validate", "--no-policy-scan", "--env", "dev", "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    schema = [f for f in report["findings"] if f["rule"] == "MLP-SCHEMA"]
    kinds = {f["resource"].split("/")[0] for f in schema}
    assert {"InferenceService", "ScaledObject", "VaultAuth"} <= kinds, kinds
    assert all("was not schema-checked" in f["message"] for f in schema), schema
    assert any(
        "custom resources were not schema-checked, and each is an MLP-SCHEMA finding" in n
        for n in report["notes"]
    )
