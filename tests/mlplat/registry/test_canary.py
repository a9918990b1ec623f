"""Canary to prod (KServe >= 0.20 `spec.canary`, Standard mode) on a copy of the repository.

`promote --canary` adds exactly canary.yaml, canary-route.yaml (the split on the app's HTTPRoute) and
their two kustomization entries; the full rollout and the rollback leave the tree as promote/rollback
always did; every refusal leaves every byte in place.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra.contract import MODEL_VERSION_ANNOTATION
from mlplat import promote, registry_gate
from mlplat.findings import RenderedDoc
from mlplat.validation.capacity import AUTOSCALER_CLASS, autoscaler_class
from mlplat.validation.scaling import EXTERNAL
from tests.support.canary import CANARY, CANARY_ROUTE, KUSTOMIZATION, PROD, add_canary_by_hand, stable, uri
from tests.support.validate_helpers import REPO, copy_repo, run_json

from .conftest import APP, Registry, tree_digest
from .conftest import promote_cli as cli

MODEL_VERSION = f"{PROD}/model-version.yaml"
CRD = "crds/kserve/serving.kserve.io_inferenceservices.yaml"


def canary_cli(registry: Registry, root: Path, percent: str = "10", *extra: str) -> int:
    return cli(
        "promote",
        APP,
        "--from",
        "staging",
        "--to",
        "prod",
        "--canary",
        percent,
        "--registry",
        registry.url,
        "--repo-root",
        str(root),
        *extra,
    )


def render(root: Path, kind: str = "InferenceService", app: str = APP) -> dict[str, Any]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(root / "apps" / app / "overlays" / "prod")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (found,) = [d for d in yaml.safe_load_all(out) if d and d.get("kind") == kind]
    doc: dict[str, Any] = found
    return doc


def split(root: Path) -> list[tuple[str | None, list[tuple[str, int, str]]]]:
    """The rendered HTTPRoute's rules: (variant header or None, [(Service, weight, version header)])."""
    route = render(root, "HTTPRoute")
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "mlplat-gateway",
         "name": "inference", "sectionName": "https"}
    ]  # fmt: skip
    rules = []
    for rule in route["spec"]["rules"]:
        (match,) = rule["matches"]
        assert match["path"] == {"type": "PathPrefix", "value": f"/models-core-ml/{APP}"}
        variant = next(
            (h["value"] for h in match.get("headers", []) if h["name"] == "x-mlplat-variant"), None
        )
        backends = []
        for ref in rule["backendRefs"]:
            ((header,),) = [f["requestHeaderModifier"]["set"] for f in ref["filters"]]
            assert header["name"] == "x-mlplat-model-version" and ref["port"] == 80
            backends.append((ref["name"], ref["weight"], header["value"]))
        rules.append((variant, backends))
    return rules


STABLE_ONLY = [(None, [(f"{APP}-predictor", 100, "1")])]  # prod runs v1, every request to it


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def client(registry: Registry):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=registry.url, registry_uri=registry.url)


@pytest.fixture
def canary_approved(registry: Registry) -> Iterator[None]:
    """v2 (what staging runs) approved for a prod canary, for this test only."""
    mlflow = client(registry)
    mlflow.set_registered_model_alias(APP, registry_gate.CANARY_APPROVAL_ALIAS, "2")
    try:
        yield
    finally:
        mlflow.delete_registered_model_alias(APP, registry_gate.CANARY_APPROVAL_ALIAS)


@pytest.mark.slow
def test_canary_promote_writes_two_files_renders_valid_and_rolls_back(
    registry: Registry, repo_copy: Path, reference: Path, canary_approved: None
) -> None:
    before = tree_digest(repo_copy)
    original_kustomization = (repo_copy / KUSTOMIZATION).read_text()
    original_render = render(repo_copy)
    assert split(repo_copy) == STABLE_ONLY

    assert canary_cli(registry, repo_copy, "10") == 0
    after = tree_digest(repo_copy)
    assert changed(before, after) == {CANARY, CANARY_ROUTE, KUSTOMIZATION}
    assert set(after) - set(before) == {CANARY, CANARY_ROUTE}

    text = (repo_copy / CANARY).read_text()
    assert 'mlplat/canary-version: "2"' in text
    body = yaml.safe_load(text)
    assert body["spec"] == {
        # prod's two stable replicas plus the canary's one (10 % of two, rounded up)
        "predictor": {"minReplicas": 3, "maxReplicas": 3},
        "canary": [
            {
                "trafficPercent": 10,
                "predictor": {
                    "name": "v2",
                    # its own version, and replicas fixed at minReplicas whatever the app's autoscaler
                    "annotations": {"mlplat/model-version": "2", AUTOSCALER_CLASS: "none"},
                    "model": {
                        "name": "kserve-container",
                        "modelFormat": {"name": "mlflow"},  # the stable predictor's
                        "storageUri": f"s3://mlplat-models/{APP}/2",
                    },
                    "minReplicas": 1,
                },
            }
        ],
    }
    # Two entries right after model-version.yaml's: the canary (same target), its split (the HTTPRoute).
    new_kustomization = (repo_copy / KUSTOMIZATION).read_text()
    entry = f"  - path: canary.yaml\n    target:\n      kind: InferenceService\n      name: {APP}\n"
    route_entry = f"  - path: canary-route.yaml\n    target:\n      kind: HTTPRoute\n      name: {APP}\n"
    anchor = f"  - path: model-version.yaml\n    target:\n      kind: InferenceService\n      name: {APP}\n"
    assert new_kustomization == original_kustomization.replace(anchor, anchor + entry + route_entry)
    # The gateway splits 90/10 between the two predictor Services KServe v0.20.0 creates, each its own
    # backend with its version header; a variant header pins either version (A/B).
    stable, canary_service = f"{APP}-predictor", f"{APP}-v2-predictor"
    assert split(repo_copy) == [
        (None, [(stable, 90, "1"), (canary_service, 10, "2")]),
        ("v2", [(stable, 0, "1"), (canary_service, 100, "2")]),
        ("v1", [(stable, 100, "1"), (canary_service, 0, "2")]),
    ]

    rendered = render(repo_copy)
    canary = rendered["spec"]["canary"]
    assert canary[0]["trafficPercent"] == 10 and canary[0]["predictor"]["name"] == "v2"
    # Everything else is what it was; only spec.canary, its annotation and the replicas differ.
    expected = copy.deepcopy(original_render)
    expected["spec"]["canary"] = canary
    expected["spec"]["predictor"].update(body["spec"]["predictor"])
    expected["metadata"]["annotations"]["mlplat/canary-version"] = "2"
    assert rendered == expected
    # The CRD's own schema for spec.canary (KServe v0.20.0) accepts what we render.
    crd = yaml.safe_load((reference / CRD).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["canary"]
    jsonschema.validate(canary, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{**canary[0], "trafficPercent": 101}], schema)
    # ... and the gate, as `mlplat validate --registry` would run it, too.
    doc = RenderedDoc("prod", PROD, f"{PROD}/model-version.yaml", rendered)
    assert registry_gate.check([doc], registry.url, repo_root=repo_copy) == []

    # Same version again, other percent: only canary.yaml changes (a ramp), same percent: nothing to do.
    assert canary_cli(registry, repo_copy, "25") == 0
    assert changed(after, tree_digest(repo_copy)) == {CANARY, CANARY_ROUTE}
    assert "trafficPercent: 25" in (repo_copy / CANARY).read_text()
    assert split(repo_copy)[0] == (None, [(stable, 75, "1"), (canary_service, 25, "2")])
    ramped = tree_digest(repo_copy)
    assert canary_cli(registry, repo_copy, "25") == 0
    assert tree_digest(repo_copy) == ramped

    # Rollback with a canary present removes it (no registry needed) and restores every byte: one
    # commit, and the route sends everything to the stable version again.
    assert cli("rollback", APP, "--env", "prod", "--repo-root", str(repo_copy)) == 0
    assert tree_digest(repo_copy) == before
    assert split(repo_copy) == STABLE_ONLY
    # Then there is nothing to roll back (prod records no previous version).
    assert (
        cli("rollback", APP, "--env", "prod", "--registry", registry.url, "--repo-root", str(repo_copy)) == 1
    )
    assert tree_digest(repo_copy) == before


@pytest.mark.slow
def test_canary_output_is_deterministic(
    registry: Registry, tmp_path: Path, repo_copy: Path, canary_approved: None
) -> None:
    other = tmp_path / "other"
    shutil.copytree(repo_copy / "apps", other / "apps")
    for root in (repo_copy, other):
        promote.promote(root, APP, "staging", "prod", registry.url, canary=10)
    assert tree_digest(repo_copy / "apps") == tree_digest(other / "apps")


@pytest.mark.slow
def test_full_rollout_after_canary(registry: Registry, repo_copy: Path, canary_approved: None) -> None:
    before = tree_digest(repo_copy)
    original = (repo_copy / MODEL_VERSION).read_text()
    assert canary_cli(registry, repo_copy, "10") == 0
    mlflow = client(registry)
    # The full rollout needs `approved` on v2 (moving it away from v1), as any prod promotion.
    assert cli("promote", APP, "--from", "staging", "--to", "prod", "--registry", registry.url,
               "--repo-root", str(repo_copy)) == 1  # fmt: skip
    mlflow.set_registered_model_alias(APP, registry_gate.APPROVAL_ALIAS, "2")
    try:
        assert cli("promote", APP, "--from", "staging", "--to", "prod", "--registry", registry.url,
                   "--repo-root", str(repo_copy)) == 0  # fmt: skip
    finally:
        mlflow.set_registered_model_alias(APP, registry_gate.APPROVAL_ALIAS, "1")
    rolled = tree_digest(repo_copy)
    assert changed(before, rolled) == {MODEL_VERSION}  # canary files gone, kustomization as before
    assert split(repo_copy) == [(None, [(f"{APP}-predictor", 100, "2")])]  # all of it to the new stable
    text = (repo_copy / MODEL_VERSION).read_text()
    assert 'mlplat/model-version: "2"' in text and 'mlplat/rollback-version: "1"' in text
    assert f"storageUri: s3://mlplat-models/{APP}/2" in text
    assert "canary" not in render(repo_copy)["spec"]
    # The usual rollback (v1 holds `approved` again) restores the original bytes.
    assert (
        cli("rollback", APP, "--env", "prod", "--registry", registry.url, "--repo-root", str(repo_copy)) == 0
    )
    assert (repo_copy / MODEL_VERSION).read_text() == original
    assert tree_digest(repo_copy) == before


@pytest.mark.slow
def test_unapproved_canary_is_refused_and_changes_nothing(
    registry: Registry, repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree_digest(repo_copy)
    assert canary_cli(registry, repo_copy, "10") == 1
    err = capsys.readouterr().err
    assert "MLP-REGISTRY-APPROVAL" in err and "canary 'v2'" in err and "canary-approved" in err
    assert f"{CANARY}" in err  # the finding points at the canary's file
    assert tree_digest(repo_copy) == before


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (("--from", "dev", "--to", "staging", "--canary", "10"), "prod only"),
        (("--from", "staging", "--to", "prod", "--canary", "100"), "0-99"),
        (("--from", "staging", "--to", "prod", "--canary", "-5"), "0-99"),
    ],
)
def test_canary_usage_errors_exit_2(
    repo_copy: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], reason: str
) -> None:
    before = tree_digest(repo_copy)
    assert cli("promote", APP, *argv, "--registry", "http://127.0.0.1:9", "--repo-root", str(repo_copy)) == 2
    assert reason in capsys.readouterr().err
    assert tree_digest(repo_copy) == before


@pytest.mark.parametrize("canary", [["--canary", "10"], []])
def test_canary_of_another_version_blocks_promotion(
    repo_copy: Path, capsys: pytest.CaptureFixture[str], canary: list[str]
) -> None:
    add_canary_by_hand(repo_copy, "3")
    before = tree_digest(repo_copy)
    argv = ("promote", APP, "--from", "staging", "--to", "prod", *canary)
    assert cli(*argv, "--registry", "http://127.0.0.1:9", "--repo-root", str(repo_copy)) == 2
    assert "already runs a canary of version 3" in capsys.readouterr().err
    assert tree_digest(repo_copy) == before


def test_canary_rollback_needs_no_registry(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = tree_digest(repo_copy)
    add_canary_by_hand(repo_copy, "3")
    assert changed(before, tree_digest(repo_copy)) == {CANARY, CANARY_ROUTE, KUSTOMIZATION}
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert cli("rollback", APP, "--env", "prod", "--repo-root", str(repo_copy)) == 0
    assert tree_digest(repo_copy) == before


@pytest.mark.parametrize(
    "broken", ["file-only", "entry-only", "hand-edited", "route-missing", "route-hand-edited"]
)
def test_inconsistent_canary_is_refused(
    repo_copy: Path, capsys: pytest.CaptureFixture[str], broken: str
) -> None:
    add_canary_by_hand(repo_copy, "3")
    if broken == "file-only":
        original = promote.kustomization_with_canary(repo_copy / KUSTOMIZATION, repo_copy, add=False)
        (repo_copy / KUSTOMIZATION).write_text(original)
    elif broken == "entry-only":
        (repo_copy / CANARY).unlink()
    elif broken == "route-missing":
        (repo_copy / CANARY_ROUTE).unlink()
    elif broken == "route-hand-edited":  # the split changed by hand, the canary left at 10 %
        text = (repo_copy / CANARY_ROUTE).read_text().replace("value: 90", "value: 50")
        (repo_copy / CANARY_ROUTE).write_text(text)
    else:
        text = (repo_copy / CANARY).read_text().replace("name: v3", "name: experimental")
        (repo_copy / CANARY).write_text(text)
    before = tree_digest(repo_copy)
    assert cli("rollback", APP, "--env", "prod", "--registry", "http://127.0.0.1:9",
               "--repo-root", str(repo_copy)) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert ("canary-route.yaml" if broken.startswith("route") else "canary.yaml") in err
    assert "fix the overlay by hand first" in err or "is not a canary patch" in err
    assert tree_digest(repo_copy) == before


def test_a_failed_step_undoes_the_earlier_ones(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = tree_digest(repo_copy)
    kustomization = repo_copy / KUSTOMIZATION
    changes = [
        promote.Change(
            repo_copy / CANARY, promote.canary_text(APP, APP, "prod", "3", 10, "s3://x/3", stable(repo_copy))
        ),
        promote.Change(repo_copy / CANARY_ROUTE, promote.canary_route_text(APP, APP, "prod", "1", "3", 10)),
        promote.Change(kustomization, promote.kustomization_with_canary(kustomization, repo_copy, add=True)),
    ]
    real_replace, calls = promote.os.replace, []

    def failing_replace(src: str, dst: Path) -> None:
        calls.append(Path(dst).name)
        if calls.count("kustomization.yaml") == 1:  # once, after the journal and canary.yaml
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(promote.os, "replace", failing_replace)
    with pytest.raises(promote.UsageError, match=r"disk full.*every file is as it was"):
        promote.apply_changes(changes)
    assert calls[:4] == [promote.JOURNAL, "canary.yaml", "canary-route.yaml", "kustomization.yaml"]
    monkeypatch.undo()
    assert tree_digest(repo_copy) == before  # canary.yaml removed again, no staged temp file left


# --- the gate on canaries, against the real registry -------------------------------------------------


def prod_with_canary(name: str, storage_uri: str, annotation: str | None = None) -> RenderedDoc:
    doc = promote.render_inference_service(promote.REPO, APP, "prod")
    doc.doc["spec"]["canary"] = [
        {"trafficPercent": 10, "predictor": {"name": name, "model": {"storageUri": storage_uri}}}
    ]
    if annotation is not None:
        doc.doc["metadata"]["annotations"][registry_gate.CANARY_VERSION_ANNOTATION] = annotation
    return doc


@pytest.mark.slow
def test_gate_canary_wrong_storage_uri(registry: Registry, canary_approved: None) -> None:
    findings = registry_gate.check([prod_with_canary("v2", uri("1"))], registry.url)
    assert [f.rule for f in findings] == ["MLP-REGISTRY-STORAGE-URI"]
    assert findings[0].message.startswith("canary 'v2': ")
    assert findings[0].file == CANARY and uri("2") in findings[0].fix
    assert "spec.canary[0].predictor.model.storageUri" in findings[0].fix


@pytest.mark.slow
def test_gate_canary_needs_approval(registry: Registry) -> None:
    findings = registry_gate.check([prod_with_canary("v2", uri("2"))], registry.url)
    assert [f.rule for f in findings] == ["MLP-REGISTRY-APPROVAL"]
    assert "canary 'v2'" in findings[0].message and "(v1 holds 'approved')" in findings[0].message
    # The stable version's `approved` is enough for a canary too (v1 as canary of itself).
    assert registry_gate.check([prod_with_canary("v1", uri("1"))], registry.url) == []


@pytest.mark.slow
def test_gate_canary_approved_alias_passes(registry: Registry, canary_approved: None) -> None:
    assert registry_gate.check([prod_with_canary("v2", uri("2"), "2")], registry.url) == []
    # canary-approved does not make v2 a prod stable version.
    stable = promote.with_version(promote.render_inference_service(promote.REPO, APP, "prod"), "2", uri("2"))
    assert [f.rule for f in registry_gate.check([stable], registry.url)] == ["MLP-REGISTRY-APPROVAL"]


@pytest.mark.slow
def test_gate_canary_evaluation_and_version(registry: Registry) -> None:
    findings = registry_gate.check([prod_with_canary("v3", uri("3"))], registry.url)
    assert [f.rule for f in findings] == ["MLP-REGISTRY-EVALUATION", "MLP-REGISTRY-APPROVAL"]
    assert all(f.message.startswith("canary 'v3': ") for f in findings)
    findings = registry_gate.check([prod_with_canary("v99", uri("99"))], registry.url)
    assert [f.rule for f in findings] == ["MLP-REGISTRY-VERSION"]


@pytest.mark.slow
def test_gate_canary_name_and_annotation(registry: Registry, canary_approved: None) -> None:
    findings = registry_gate.check([prod_with_canary("experimental", uri("2"))], registry.url)
    assert [f.rule for f in findings] == ["MLP-REGISTRY-CANARY"]
    assert "'experimental'" in findings[0].message
    findings = registry_gate.check([prod_with_canary("v2", uri("2"), "4")], registry.url)
    assert [f.rule for f in findings] == ["MLP-REGISTRY-CANARY"]


# --- the split on the app's HTTPRoute (issue 16) ----------------------------------------------------


def test_canary_gets_its_percent_on_the_rendered_route_not_just_in_the_inference_service(
    repo_copy: Path,
) -> None:
    """KServe v0.20.0 creates the canary's Service but no route to it: without canary-route.yaml the
    canary got no traffic whatever trafficPercent said."""
    add_canary_by_hand(repo_copy, "3", percent=30)
    stable, canary = f"{APP}-predictor", f"{APP}-v3-predictor"
    assert split(repo_copy) == [
        (None, [(stable, 70, "1"), (canary, 30, "3")]),
        ("v3", [(stable, 0, "1"), (canary, 100, "3")]),
        ("v1", [(stable, 100, "1"), (canary, 0, "3")]),
    ]
    assert render(repo_copy)["spec"]["canary"][0]["trafficPercent"] == 30  # the sizing KServe reads


def test_ab_version_at_zero_percent_answers_only_its_header_and_keeps_a_replica(repo_copy: Path) -> None:
    """--canary 0: side by side for an A/B experiment. KServe sizes a 0 % canary at 0 replicas
    (v0.20.0 canaryReplicaCount) unless minReplicas is set, so the header would reach no pod."""
    add_canary_by_hand(repo_copy, "3", percent=0)
    stable, canary = f"{APP}-predictor", f"{APP}-v3-predictor"
    rules = split(repo_copy)
    assert rules[0] == (None, [(stable, 100, "1"), (canary, 0, "3")])
    assert rules[1] == ("v3", [(stable, 0, "1"), (canary, 100, "3")])
    (entry,) = render(repo_copy)["spec"]["canary"]
    assert (entry["trafficPercent"], entry["predictor"]["minReplicas"]) == (0, 1)


def test_promote_refuses_a_split_the_overlay_route_would_not_carry(
    repo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An overlay that lost its version-header replacement would serve the canary's split with the
    stable backend labelled with the base's version: promote refuses before asking the registry."""
    kustomization = repo_copy / KUSTOMIZATION
    text = kustomization.read_text()
    start = text.index("# The stable backend's")
    kustomization.write_text(text[:start] + text[text.index("patches:") :])
    (repo_copy / MODEL_VERSION).write_text((repo_copy / MODEL_VERSION).read_text().replace('"1"', '"5"'))
    before = tree_digest(repo_copy)
    assert canary_cli_offline(repo_copy) == 1
    err = capsys.readouterr().err
    assert "MLP-ROUTE-VERSION" in err and "traffic split" in err
    assert tree_digest(repo_copy) == before


def canary_cli_offline(root: Path) -> int:
    """promote --canary 10 with a registry that is never reached (the route check comes first)."""
    return cli("promote", APP, "--from", "staging", "--to", "prod", "--canary", "10",
               "--registry", "http://127.0.0.1:9", "--repo-root", str(root))  # fmt: skip


@pytest.mark.slow
def test_promote_canary_zero_is_an_ab_split(
    registry: Registry, repo_copy: Path, canary_approved: None
) -> None:
    before = tree_digest(repo_copy)
    assert canary_cli(registry, repo_copy, "0") == 0
    stable, canary = f"{APP}-predictor", f"{APP}-v2-predictor"
    assert split(repo_copy)[:2] == [
        (None, [(stable, 100, "1"), (canary, 0, "2")]),
        ("v2", [(stable, 0, "1"), (canary, 100, "2")]),
    ]
    assert cli("rollback", APP, "--env", "prod", "--repo-root", str(repo_copy)) == 0
    assert tree_digest(repo_copy) == before


def add_canary(repo: Path, app: str, percent: int) -> Path:
    """A prod canary of the next version of `app` as promote --canary writes it; the prod overlay."""
    prod = repo / "apps" / app / "overlays" / "prod"
    stable_version = promote.read_overlay(repo, app, "prod").version
    version = str(int(stable_version) + 1)
    text = promote.canary_text(
        app, app, "prod", version, percent, f"s3://mlplat-models/{app}/{version}", stable(repo, app)
    )
    promote.apply_changes([
        promote.Change(prod / promote.CANARY_FILE, text),
        promote.Change(prod / promote.CANARY_ROUTE_FILE, promote.canary_route_text(app, app, "prod", stable_version, version, percent)),
        promote.Change(prod / promote.KUSTOMIZATION, promote.kustomization_with_canary(prod / promote.KUSTOMIZATION, repo, add=True)),
    ])  # fmt: skip
    return prod


def kserve_replicas(isvc: dict[str, Any]) -> tuple[int, list[int]]:
    """(stable, [each canary]) minimum replicas KServe v0.20.0 runs for a rendered InferenceService
    (pkg/controller/v1beta1/inferenceservice/): a canary asks for its minReplicas or
    ceil(stable * percent / 100) (components/predictor.go canaryReplicaCount); its Deployment has the
    isvc's annotations under its predictor's (predictor.go buildObjectMeta), and gets those replicas
    under class `none` (reconcilers/deployment/deployment_reconciler.go createRawDefaultDeployment) or
    `hpa` (an HPA at min = max: predictor.go buildCanaryPredictor zeroes maxReplicas, hpa/hpa_reconciler.go
    createHPA raises max to min), but Kubernetes' default of one under `external`, where no ScaledObject
    names it. The stable Deployment runs minReplicas less every canary's ask, floor 1
    (reconcileRawDeployment), except under `external`, where KEDA holds it at its ScaledObject's
    minimum, which validate keeps equal to minReplicas (MLP-SCALING-BOUNDS)."""
    annotations = isvc["metadata"].get("annotations", {})
    stable = isvc["spec"]["predictor"].get("minReplicas", 1)
    asked: list[int] = []
    runs: list[int] = []
    for canary in isvc["spec"].get("canary", []):
        asked.append(canary["predictor"].get("minReplicas", -(-stable * canary["trafficPercent"] // 100)))
        klass = {**annotations, **canary["predictor"].get("annotations", {})}.get(AUTOSCALER_CLASS, "hpa")
        assert klass in ("none", "hpa", EXTERNAL), f"canary autoscaler class {klass} is not modelled here"
        runs.append(1 if klass == EXTERNAL else asked[-1])
    if autoscaler_class(isvc) == EXTERNAL or not asked:
        return stable, runs
    return max(stable - sum(asked), 1), runs


@pytest.mark.parametrize("app", sorted(p.parent.parent.name for p in REPO.glob("apps/*/overlays/prod")))
def test_a_canary_runs_the_replicas_it_asks_for_whatever_the_apps_autoscaler(
    app: str, tmp_path: Path
) -> None:
    """llm-chat's canary inherited the InferenceService's autoscalerClass external: KServe left its
    Deployment at one pod and no ScaledObject scaled it, so a 60 % canary ran on one GPU pod."""
    repo = copy_repo(tmp_path)
    add_canary(repo, app, 60)
    isvc = render(repo, app=app)
    (canary,) = isvc["spec"]["canary"]
    assert kserve_replicas(isvc)[1] == [canary["predictor"]["minReplicas"]]


@pytest.mark.parametrize("percent", [0, 10, 60])
def test_the_stable_version_keeps_its_prod_replicas_while_a_canary_runs(
    repo_copy: Path, percent: int
) -> None:
    """KServe lowers the stable Deployment's minimum by the canary's replicas: prod's two became one,
    and the PodDisruptionBudget (stable and canary pods together) let a drain take that one."""
    (prod_stable, _) = kserve_replicas(render(repo_copy))
    add_canary_by_hand(repo_copy, "3", percent=percent)
    stable_replicas, (canary_replicas,) = kserve_replicas(render(repo_copy))
    assert stable_replicas == prod_stable and canary_replicas >= 1, (stable_replicas, canary_replicas)
    raised = render(repo_copy)["spec"]["predictor"]
    assert raised["minReplicas"] <= raised["maxReplicas"], raised  # KServe refuses min above max
    # A new percent for the running canary is sized against the stable predictor without it.
    assert kserve_replicas(stable(repo_copy)) == (prod_stable, [])


def test_canary_pods_carry_the_canarys_model_version_not_the_stable_one(repo_copy: Path) -> None:
    """KServe builds the canary from a copy of the InferenceService: without an annotation of its own the
    canary's pods said the stable version, and its inference logs and drift were counted under it."""
    add_canary_by_hand(repo_copy, "3", percent=10)
    isvc = render(repo_copy)
    (canary,) = isvc["spec"]["canary"]
    # Pod annotations: the InferenceService's, overridden by the predictor's (predictor.go buildObjectMeta).
    pod = {**isvc["metadata"]["annotations"], **canary["predictor"].get("annotations", {})}
    assert pod[MODEL_VERSION_ANNOTATION] == "3"
    assert isvc["metadata"]["annotations"][MODEL_VERSION_ANNOTATION] == "1"  # the stable pods' version


@pytest.mark.parametrize("app", sorted(p.parent.parent.name for p in REPO.glob("apps/*/overlays/prod")))
@pytest.mark.parametrize("percent", [0, 60])
def test_every_apps_prod_canary_passes_validate(
    app: str, percent: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The canary's raised replicas stay inside what validate holds prod to: a KEDA-scaled app keeps
    its InferenceService minimum equal to its ScaledObject's (MLP-SCALING-BOUNDS), the others min <= max."""
    repo = copy_repo(tmp_path)
    prod = add_canary(repo, app, percent)
    code, report = run_json(capsys, str(prod), "--repo", str(repo), "--env", "prod")
    assert (code, report["findings"]) == (0, [])
