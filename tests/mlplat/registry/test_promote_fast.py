"""promote and rollback end to end against the loopback fake registry (`support/fake_mlflow.py`).

The same journeys run against a real MLflow in test_promote.py and test_canary.py (`slow`: the server
takes ~15 s to start). Here the registry answers from a dict in milliseconds, so these tests are what
a mutation run of mlplat/promote.py (scripts/mutation/run.py) can afford for every mutant, and they
reach what the real server would not do on demand: a version stuck in registration, a registry
answering 5xx halfway through a rollout, an approval moved away before a rollback.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlplat import registry_gate
from tests.support import lineage
from tests.support.fake_mlflow import FakeRegistry, Raw, serve

from .conftest import APP, tree_digest
from .conftest import promote_cli as cli

PROD = f"apps/{APP}/overlays/prod"
STAGING_VERSION = f"apps/{APP}/overlays/staging/model-version.yaml"
PROD_VERSION = f"{PROD}/model-version.yaml"
CANARY = f"{PROD}/canary.yaml"
CANARY_ROUTE = f"{PROD}/canary-route.yaml"
KUSTOMIZATION = f"{PROD}/kustomization.yaml"
# Evaluated, and registered with the lineage staging and prod require (MLP-REGISTRY-LINEAGE).
PASSED = {
    registry_gate.EVALUATION_TAG: registry_gate.EVALUATION_PASSED,
    "mlplat.metric.accuracy": "0.97",
    **lineage.COMPLETE,
}


def move_alias(registry: FakeRegistry, alias: str, version: str | None) -> None:
    """Point `alias` at `version` (None: delete it), as MLflow's set/delete alias calls do."""
    model = registry.models[APP]
    model["aliases"] = [a for a in model["aliases"] if a["alias"] != alias]
    for (_, number), answer in registry.versions.items():
        answer["aliases"] = [a for a in answer["aliases"] if a != alias]
        if number == version:
            answer["aliases"].append(alias)
    if version is not None:
        model["aliases"].append({"alias": alias, "version": version})


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    """The iris registry as the demo leaves it: v1 (prod) and v2 (dev, staging) evaluated, v1 approved."""
    registry = FakeRegistry()
    for version in ("1", "2"):
        registry.add_version(APP, version, source=f"s3://mlplat-models/{APP}/{version}", tags=PASSED)
    move_alias(registry, registry_gate.APPROVAL_ALIAS, "1")
    with serve(registry) as served:
        yield served


def run(fake: FakeRegistry, root: Path, *argv: str) -> int:
    return cli(*argv, "--registry", fake.url, "--repo-root", str(root))


def promote_to_prod(fake: FakeRegistry, root: Path, *canary: str) -> int:
    return run(fake, root, "promote", APP, "--from", "staging", "--to", "prod", *canary)


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def test_promotion_writes_one_file_and_rollback_restores_its_bytes(
    fake: FakeRegistry, repo_copy: Path
) -> None:
    before = tree_digest(repo_copy)
    original = (repo_copy / STAGING_VERSION).read_text()
    assert run(fake, repo_copy, "promote", APP, "--from", "prod", "--to", "staging") == 0
    assert changed(before, tree_digest(repo_copy)) == {STAGING_VERSION}
    text = (repo_copy / STAGING_VERSION).read_text()
    assert 'mlplat/model-version: "1"' in text and 'mlplat/rollback-version: "2"' in text
    assert f"storageUri: s3://mlplat-models/{APP}/1" in text
    # Promoting the same version again changes nothing.
    promoted = tree_digest(repo_copy)
    assert run(fake, repo_copy, "promote", APP, "--from", "prod", "--to", "staging") == 0
    assert tree_digest(repo_copy) == promoted

    assert run(fake, repo_copy, "rollback", APP, "--env", "staging") == 0
    assert (repo_copy / STAGING_VERSION).read_text() == original
    assert tree_digest(repo_copy) == before
    # The record is cleared: no ping-pong, a second rollback is refused and changes nothing.
    assert run(fake, repo_copy, "rollback", APP, "--env", "staging") == 1
    assert tree_digest(repo_copy) == before


@pytest.mark.parametrize(
    ("status", "rule"),
    [("PENDING_REGISTRATION", "MLP-REGISTRY-NOT-READY"), ("READY", "MLP-REGISTRY-APPROVAL")],
    ids=["still-registering", "not-approved-for-prod"],
)
def test_version_the_gate_rejects_is_refused_with_its_rule_and_changes_nothing(
    fake: FakeRegistry, repo_copy: Path, capsys: pytest.CaptureFixture[str], status: str, rule: str
) -> None:
    fake.versions[(APP, "2")]["status"] = status
    if status != "READY":  # approved, so only the status can be what refuses it
        move_alias(fake, registry_gate.APPROVAL_ALIAS, "2")
    before = tree_digest(repo_copy)
    assert promote_to_prod(fake, repo_copy) == 1
    err = capsys.readouterr().err
    assert "refused" in err and rule in err and f"{APP} v2" in err, err
    assert tree_digest(repo_copy) == before


def test_registry_failing_mid_promotion_exits_2_and_writes_nothing(
    fake: FakeRegistry, repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.override = Raw(503, b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "db is down"}')
    before = tree_digest(repo_copy)
    assert run(fake, repo_copy, "promote", APP, "--from", "prod", "--to", "staging") == 2
    assert "db is down" in capsys.readouterr().err
    assert tree_digest(repo_copy) == before


def test_canary_ramps_rolls_out_and_every_step_undoes(
    fake: FakeRegistry, repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole prod journey: a refused canary, an approved one, a ramp, a refused and an approved full
    rollout, a refused and a gated rollback; each refusal leaves every byte."""
    before = tree_digest(repo_copy)
    original_kustomization = (repo_copy / KUSTOMIZATION).read_text()
    assert promote_to_prod(fake, repo_copy, "--canary", "10") == 1  # v2 holds no canary approval
    assert "canary-approved" in capsys.readouterr().err
    assert tree_digest(repo_copy) == before

    move_alias(fake, registry_gate.CANARY_APPROVAL_ALIAS, "2")
    assert promote_to_prod(fake, repo_copy, "--canary", "10") == 0
    canary = tree_digest(repo_copy)
    assert changed(before, canary) == {CANARY, CANARY_ROUTE, KUSTOMIZATION}
    text = (repo_copy / CANARY).read_text()
    assert 'mlplat/canary-version: "2"' in text and "trafficPercent: 10" in text
    assert "{" not in text  # block style, one field a line: the file is reviewed as a diff
    assert f"storageUri: s3://mlplat-models/{APP}/2" in text
    kustomization = (repo_copy / KUSTOMIZATION).read_text()
    assert "path: canary.yaml" in kustomization and "path: canary-route.yaml" in kustomization

    assert promote_to_prod(fake, repo_copy, "--canary", "25") == 0  # a ramp: only the canary's files
    assert changed(canary, tree_digest(repo_copy)) == {CANARY, CANARY_ROUTE}
    assert "trafficPercent: 25" in (repo_copy / CANARY).read_text()
    ramped = tree_digest(repo_copy)
    assert promote_to_prod(fake, repo_copy, "--canary", "25") == 0  # same percent: nothing to do
    assert tree_digest(repo_copy) == ramped
    assert promote_to_prod(fake, repo_copy, "--canary", "5") == 0  # a ramp down is a change too
    assert "trafficPercent: 5" in (repo_copy / CANARY).read_text()
    ramped = tree_digest(repo_copy)

    assert promote_to_prod(fake, repo_copy) == 1  # the full rollout needs `approved` on v2
    assert tree_digest(repo_copy) == ramped
    move_alias(fake, registry_gate.APPROVAL_ALIAS, "2")
    capsys.readouterr()
    assert promote_to_prod(fake, repo_copy) == 0
    assert changed(before, tree_digest(repo_copy)) == {PROD_VERSION}
    assert (repo_copy / KUSTOMIZATION).read_text() == original_kustomization
    text = (repo_copy / PROD_VERSION).read_text()
    assert 'mlplat/model-version: "2"' in text and 'mlplat/rollback-version: "1"' in text

    rolled_out = tree_digest(repo_copy)
    assert run(fake, repo_copy, "rollback", APP, "--env", "prod") == 1  # v1 no longer approved
    err = capsys.readouterr().err
    assert "MLP-REGISTRY-APPROVAL" in err and f"{APP} v1" in err, err
    assert tree_digest(repo_copy) == rolled_out
    move_alias(fake, registry_gate.APPROVAL_ALIAS, "1")
    assert run(fake, repo_copy, "rollback", APP, "--env", "prod") == 0
    assert tree_digest(repo_copy) == before


def test_promotion_that_fails_mid_write_undoes_every_file_and_exits_2(
    fake: FakeRegistry, repo_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The undo path, end to end: canary.yaml is swapped in, the kustomization is not; both go back."""
    before = tree_digest(repo_copy)
    move_alias(fake, registry_gate.CANARY_APPROVAL_ALIAS, "2")  # the gate lets the canary through
    real_replace, swapped = os.replace, []

    def disk_full_on_second_file(src: str, dst: Path) -> None:
        swapped.append(Path(dst).name)
        if swapped.count("kustomization.yaml") == 1:  # once: the undo's own writes go through
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", disk_full_on_second_file)
    assert promote_to_prod(fake, repo_copy, "--canary", "10") == 2
    assert "No space left on device" in capsys.readouterr().err
    assert "canary.yaml" in swapped  # the first file really was written, and then undone
    assert tree_digest(repo_copy) == before


def test_promotion_into_an_overlay_that_routes_nothing_to_the_model_is_refused(
    fake: FakeRegistry, repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An approved version is refused when the overlay it lands in has no HTTPRoute to its predictor:
    promote judges the rendered overlay as `mlplat validate` does (MLP-ROUTE-MISSING), so it never
    ships a model the Gateway cannot reach."""
    base = repo_copy / "apps" / APP / "base" / "kustomization.yaml"
    text = base.read_text()
    assert text.count("  - ../../components/gateway-route\n") == 1
    base.write_text(text.replace("  - ../../components/gateway-route\n", ""))
    before = tree_digest(repo_copy)
    assert run(fake, repo_copy, "promote", APP, "--from", "prod", "--to", "staging") == 1
    err = capsys.readouterr().err
    assert "traffic split" in err and "MLP-ROUTE-MISSING" in err, err
    assert tree_digest(repo_copy) == before


@pytest.mark.parametrize("percent", ["0", "99"], ids=["ab-by-header-only", "all-but-one-percent"])
def test_canary_at_either_bound_is_written_and_stopped_without_a_registry(
    fake: FakeRegistry, repo_copy: Path, percent: str
) -> None:
    before = tree_digest(repo_copy)
    move_alias(fake, registry_gate.CANARY_APPROVAL_ALIAS, "2")
    assert promote_to_prod(fake, repo_copy, "--canary", percent) == 0
    assert f"trafficPercent: {percent}" in (repo_copy / CANARY).read_text()
    fake.override = Raw(503, b"down")
    assert run(fake, repo_copy, "rollback", APP, "--env", "prod") == 0
    assert tree_digest(repo_copy) == before


@pytest.mark.parametrize("breakage", ["missing-base", "kubectl-killed-by-a-signal"])
def test_overlay_that_does_not_render_is_refused_and_nothing_is_written(
    fake: FakeRegistry,
    repo_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    breakage: str,
) -> None:
    """The target overlay must render as Argo CD would render it, or nothing is written: kustomize's own
    reason is what the author fixes. A kubectl killed by a signal (negative return code, output cut
    short) is no render either."""
    if breakage == "missing-base":
        kustomization = repo_copy / f"apps/{APP}/overlays/staging/kustomization.yaml"
        kustomization.write_text(kustomization.read_text().replace("../../base", "../../no-such-base"))
    else:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "kubectl").write_text("#!/bin/sh\nkill -KILL $$\n")
        (bin_dir / "kubectl").chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    before = tree_digest(repo_copy)
    assert run(fake, repo_copy, "promote", APP, "--from", "prod", "--to", "staging") == 1
    err = capsys.readouterr().err
    assert f"apps/{APP}/overlays/staging does not render" in err, err
    assert breakage != "missing-base" or "no-such-base" in err, err
    assert tree_digest(repo_copy) == before


def test_canary_entries_follow_a_last_line_without_a_newline(fake: FakeRegistry, repo_copy: Path) -> None:
    """The model-version.yaml entry ends prod's kustomization.yaml; an editor may leave its last line
    without a newline, and the canary's entries must still start on lines of their own."""
    kustomization = repo_copy / KUSTOMIZATION
    kustomization.write_text(kustomization.read_text().rstrip("\n"))
    move_alias(fake, registry_gate.CANARY_APPROVAL_ALIAS, "2")
    assert promote_to_prod(fake, repo_copy, "--canary", "10") == 0
    assert f"      name: {APP}\n  - path: canary.yaml\n" in kustomization.read_text()


@pytest.mark.parametrize(
    "lines", ["      kind: InferenceService\n" * 2, ""], ids=["two-kind-lines", "target-by-name-only"]
)
def test_model_version_entry_without_exactly_one_inference_service_target_is_refused(
    fake: FakeRegistry, repo_copy: Path, capsys: pytest.CaptureFixture[str], lines: str
) -> None:
    """The canary's entries copy model-version.yaml's entry and retarget its one `kind:
    InferenceService` line at the HTTPRoute; an entry with two such lines, or none (a target by name
    alone, which kustomize accepts), has no single line to retarget."""
    kustomization = repo_copy / KUSTOMIZATION
    text = kustomization.read_text()
    target = "    target:\n      kind: InferenceService\n"
    assert text.count(target) == 1
    kustomization.write_text(text.replace(target, "    target:\n" + lines))
    move_alias(fake, registry_gate.CANARY_APPROVAL_ALIAS, "2")
    before = tree_digest(repo_copy)
    assert promote_to_prod(fake, repo_copy, "--canary", "10") == 1
    assert "no single `kind: InferenceService` target" in capsys.readouterr().err
    assert tree_digest(repo_copy) == before


def test_pin_gives_an_environment_a_registered_version_once(fake: FakeRegistry, repo_copy: Path) -> None:
    """`mlplat retrain propose` pins a version through promote.pin: gated like a promotion, one file
    written, and pinning the version the environment already runs writes nothing."""
    from mlplat import promote

    before = tree_digest(repo_copy)
    message = promote.pin(repo_copy, APP, "staging", "1", fake.url)
    assert message.endswith(f"staging now runs version 1 (was 2); wrote {STAGING_VERSION}"), message
    assert changed(before, tree_digest(repo_copy)) == {STAGING_VERSION}
    pinned = tree_digest(repo_copy)
    assert "already runs version 1; nothing to do" in promote.pin(repo_copy, APP, "staging", "1", fake.url)
    assert tree_digest(repo_copy) == pinned


DEV_VERSION = f"apps/{APP}/overlays/dev/model-version.yaml"


@pytest.mark.parametrize(
    ("annotations", "named"),
    [
        ('"xy"', "metadata.annotations is a str"),  # was a ValueError traceback (dict("xy"))
        ('[["mlplat/model-version", "1"]]', "metadata.annotations is a list"),  # was read as version 1
        ("\n    mlplat/model-version: 2", "metadata.annotations.mlplat/model-version is 2"),  # an int
    ],
    ids=["a-string", "a-list-of-pairs", "an-unquoted-version"],
)
@pytest.mark.parametrize(
    "command", [("promote", APP, "--from", "dev", "--to", "staging"), ("rollback", APP, "--env", "dev")]
)
def test_overlay_annotations_that_are_not_strings_are_a_usage_error_naming_file_and_key(
    fake: FakeRegistry,
    repo_copy: Path,
    capsys: pytest.CaptureFixture[str],
    annotations: str,
    named: str,
    command: tuple[str, ...],
) -> None:
    overlay = repo_copy / DEV_VERSION
    text = overlay.read_text()
    overlay.write_text(
        text.replace('annotations:\n    mlplat/model-version: "2"', f"annotations: {annotations}")
    )
    assert overlay.read_text() != text
    before = tree_digest(repo_copy)
    assert run(fake, repo_copy, *command) == 2
    err = capsys.readouterr().err
    assert f"{DEV_VERSION}: {named}" in err, err
    assert tree_digest(repo_copy) == before


def link_prod_overlay_outside(root: Path, outside: Path) -> str:
    """prod's model-version.yaml a link to a copy of it outside the checkout; the link's repo path."""
    (outside / "model-version.yaml").write_bytes((root / PROD_VERSION).read_bytes())
    (root / PROD_VERSION).unlink()
    (root / PROD_VERSION).symlink_to(outside / "model-version.yaml")
    return PROD_VERSION


def link_an_app_to_another_clone(root: Path, outside: Path) -> str:
    """apps/evil a link to another clone's iris app; the link's repo path."""
    shutil.copytree(root / "apps" / APP, outside / APP)
    (root / "apps" / "evil").symlink_to(outside / APP, target_is_directory=True)
    return "apps/evil"


@pytest.mark.parametrize("plant", [link_prod_overlay_outside, link_an_app_to_another_clone])
def test_promote_through_a_symlink_is_refused_before_anything_outside_changes(
    fake: FakeRegistry,
    repo_copy: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    plant: Callable[[Path, Path], str],
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    link = plant(repo_copy, outside)
    app = link.split("/")[1]
    before, outside_before = tree_digest(repo_copy), tree_digest(outside)
    # v2 is not approved for prod: without the refusal the gate refuses it, after the trial render wrote.
    assert run(fake, repo_copy, "promote", app, "--from", "staging", "--to", "prod") == 2
    err = capsys.readouterr().err
    assert f"{link} is a symbolic link" in err, err
    assert tree_digest(outside) == outside_before
    assert tree_digest(repo_copy) == before
