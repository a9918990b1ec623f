"""Promotion and rollback on a copy of the repository: exactly one file changes, or none."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplat import promote

from .conftest import APP, Registry, tree_digest
from .conftest import promote_cli as cli

STAGING = f"apps/{APP}/overlays/staging/model-version.yaml"


def promote_app(source: str, target: str, registry: str, root: Path) -> int:
    """`mlplat promote` of the app's `source` version to `target`, gated by `registry`, in `root`."""
    return cli(
        "promote", APP, "--from", source, "--to", target, "--registry", registry, "--repo-root", str(root)
    )


@pytest.mark.slow
def test_promote_then_rollback_round_trip(registry: Registry, repo_copy: Path) -> None:
    root = str(repo_copy)
    before = tree_digest(repo_copy)
    original = (repo_copy / STAGING).read_text()

    assert promote_app("prod", "staging", registry.url, repo_copy) == 0
    promoted = tree_digest(repo_copy)
    assert {k for k in before if before[k] != promoted[k]} == {STAGING}
    assert set(promoted) == set(before)
    text = (repo_copy / STAGING).read_text()
    assert 'mlplat/model-version: "1"' in text and 'mlplat/rollback-version: "2"' in text
    assert f"storageUri: s3://mlplat-models/{APP}/1" in text

    assert cli("rollback", APP, "--env", "staging", "--registry", registry.url, "--repo-root", root) == 0
    assert (repo_copy / STAGING).read_text() == original  # the record is cleared, the bytes restored
    assert tree_digest(repo_copy) == before
    # Nothing recorded any more: a second rollback is refused and changes nothing.
    assert cli("rollback", APP, "--env", "staging", "--registry", registry.url, "--repo-root", root) == 1
    assert tree_digest(repo_copy) == before


@pytest.mark.slow
def test_promotion_output_is_deterministic(registry: Registry, tmp_path: Path, repo_copy: Path) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(repo_copy / "apps", other / "apps")
    for root in (repo_copy, other):
        promote.promote(root, APP, "prod", "staging", registry.url)
    assert (repo_copy / STAGING).read_bytes() == (other / STAGING).read_bytes()


@pytest.mark.slow
def test_gate_failure_refuses_and_changes_nothing(
    registry: Registry, repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree_digest(repo_copy)
    # dev runs v2, which is not approved for prod.
    assert promote_app("dev", "prod", registry.url, repo_copy) == 1
    assert "MLP-REGISTRY-APPROVAL" in capsys.readouterr().err
    assert tree_digest(repo_copy) == before


def test_same_version_is_a_no_op(repo_copy: Path) -> None:
    before = tree_digest(repo_copy)
    message = promote.promote(repo_copy, APP, "dev", "staging", "http://127.0.0.1:9")  # never asked
    assert "nothing to do" in message
    assert tree_digest(repo_copy) == before


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (("promote", "no-such-app", "--from", "dev", "--to", "prod"), "unknown app"),
        (("promote", APP, "--from", "dev", "--to", "dev"), "both dev"),
        (("promote", APP, "--from", "dev", "--to", "qa"), "unknown environment"),
        (("rollback", APP, "--env", "qa"), "unknown environment"),
        (("rollback", "no-such-app", "--env", "dev"), "unknown app"),  # README: 2, not a refusal
    ],
)
def test_usage_errors_exit_2(
    repo_copy: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], reason: str
) -> None:
    before = tree_digest(repo_copy)
    assert cli(*argv, "--registry", "http://127.0.0.1:9", "--repo-root", str(repo_copy)) == 2
    assert reason in capsys.readouterr().err
    assert tree_digest(repo_copy) == before


def test_missing_registry_is_a_usage_error(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert cli("promote", APP, "--from", "prod", "--to", "staging", "--repo-root", str(repo_copy)) == 2
    assert "--registry" in capsys.readouterr().err


def test_unreachable_registry_exits_2_without_writing(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlplat.mlflow_server import free_port

    before = tree_digest(repo_copy)
    url = f"http://127.0.0.1:{free_port()}"
    assert promote_app("prod", "staging", url, repo_copy) == 2
    assert url in capsys.readouterr().err
    assert tree_digest(repo_copy) == before


BOMB = 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10)
)


@pytest.mark.parametrize(
    ("file", "text", "reason"),
    [
        (f"apps/{APP}/base/namespace.yaml", BOMB, "once its aliases are expanded"),  # kustomize parses it
        (STAGING, "x: " + "[" * 200_000 + "]" * 200_000 + "\n", "nested more than 100 levels"),
    ],
    ids=["yaml-bomb-in-base", "deep-nesting-in-model-version"],
)
def test_unsafe_input_refuses_promotion_naming_the_file(
    repo_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    file: str,
    text: str,
    reason: str,
) -> None:
    (repo_copy / file).write_text(text)
    before = tree_digest(repo_copy)
    monkeypatch.setattr(promote.registry_gate, "check", lambda *args, **kwargs: [])  # no registry here
    assert promote_app("prod", "staging", "http://127.0.0.1:9", repo_copy) == 1
    err = capsys.readouterr().err
    assert f"{file}" in err and "cannot be read safely" in err and reason in err, err
    assert tree_digest(repo_copy) == before


@pytest.mark.parametrize("kind", ["Deployment", "Service"])  # sorting before and after InferenceService
def test_model_version_file_of_another_kind_is_refused_not_promoted(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A model-version.yaml that patches another kind (same annotation, same storageUri field) is no
    InferenceService patch: promoting into it would change nothing KServe serves."""
    path = repo_copy / STAGING
    text = path.read_text()
    assert text.count("kind: InferenceService\n") == 1
    path.write_text(text.replace("kind: InferenceService\n", f"kind: {kind}\n"))
    before = tree_digest(repo_copy)
    monkeypatch.setattr(promote.registry_gate, "check", lambda *args, **kwargs: [])  # no registry here
    assert promote_app("prod", "staging", "http://127.0.0.1:9", repo_copy) == 1
    err = capsys.readouterr().err
    assert f"{STAGING} is not a model-version patch" in err, err
    assert tree_digest(repo_copy) == before
