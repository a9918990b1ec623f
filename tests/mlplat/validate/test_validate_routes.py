"""Every app's route through the platform Gateway (issue 16), and the MLP-ROUTE-* rules with their
pass and fail fixtures (tests/fixtures/routes/<case>/app.yaml, one mistake each)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import canary
from tests.support.validate_helpers import REPO, copy_repo, copy_without, run_corpus, run_json

ROUTES = REPO / "tests" / "fixtures" / "routes"
EXPECTED = {
    "pass": set(),
    "parent-other-gateway": {"MLP-ROUTE-PARENT"},
    "parent-no-section": {"MLP-ROUTE-PARENT"},
    "backend-other-namespace": {"MLP-ROUTE-BACKEND"},
    "weights-not-100": {"MLP-ROUTE-WEIGHTS"},
    "version-filter-missing": {"MLP-ROUTE-VERSION"},
    "path-other-app": {"MLP-ROUTE-PATH"},
    "hostname-claims-the-domain": {"MLP-ROUTE-HOSTNAME"},
    "filter-redirect": {"MLP-ROUTE-FILTER"},
    "filter-extension-ref": {"MLP-ROUTE-FILTER"},
    "filter-mirror-on-backend": {"MLP-ROUTE-FILTER"},
    "schema-weight-string": {"MLP-SCHEMA"},  # HTTPRoutes are checked against the Gateway API CRD
}
APPS = ("iris-classifier", "churn-gbm", "llm-chat")
ENVS = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    """One validate run over every case (one schema load)."""
    return run_corpus(ROUTES / case for case in EXPECTED)


@pytest.mark.parametrize("case", EXPECTED)
def test_route_case_yields_exactly_its_rule(corpus: dict[str, Any], case: str) -> None:
    mine = [f for f in corpus["findings"] if f["file"] == f"tests/fixtures/routes/{case}/app.yaml"]
    assert {f["rule"] for f in mine} == EXPECTED[case], mine
    assert len(mine) == len(EXPECTED[case]), mine  # one mistake, one finding
    assert all(f["line"] for f in mine)  # each names its line


def test_route_rules_are_documented_in_the_apps_readme() -> None:
    readme = (REPO / "apps" / "README.md").read_text()
    rules = {r for rules in EXPECTED.values() for r in rules} | {"MLP-ROUTE-MISSING"}
    assert all(f"`{rule}`" in readme for rule in rules)


def render(app: str, env: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "apps" / app / "overlays" / env)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("env", ENVS)
def test_every_app_is_reachable_through_the_platform_gateway_with_its_version(app: str, env: str) -> None:
    """One HTTPRoute per app, attached to mlplat-gateway/inference, to the stable predictor Service;
    its version header is the overlay's version, not the base's (dev runs v2 of iris, the base says v1)."""
    docs = render(app, env)
    (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
    (route,) = [d for d in docs if d["kind"] == "HTTPRoute"]
    (namespace,) = [d for d in docs if d["kind"] == "Namespace"]
    assert (
        route["metadata"]["name"] == app and route["metadata"]["namespace"] == isvc["metadata"]["namespace"]
    )
    assert namespace["metadata"]["labels"]["mlplat/gateway-access"] == "true"  # the listener's selector
    ((parent,),) = [route["spec"]["parentRefs"]]
    assert (parent["namespace"], parent["name"], parent["sectionName"]) == (
        "mlplat-gateway",
        "inference",
        "https",
    )
    ((match,),) = [rule["matches"] for rule in route["spec"]["rules"]]
    assert match["path"] == {"type": "PathPrefix", "value": f"/{isvc['metadata']['namespace']}/{app}"}
    ((backend,),) = [rule["backendRefs"] for rule in route["spec"]["rules"]]
    (header,) = backend["filters"][0]["requestHeaderModifier"]["set"]
    assert (backend["name"], backend["port"], backend["weight"]) == (f"{app}-predictor", 80, 100)
    assert header == {
        "name": "x-mlplat-model-version",
        "value": isvc["metadata"]["annotations"]["mlplat/model-version"],
    }


def test_app_without_its_route_is_refused_as_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_without(
        tmp_path, ("apps/iris-classifier/base/kustomization.yaml", "  - ../../components/gateway-route\n")
    )
    overlay = repo / "apps" / "iris-classifier" / "overlays" / "dev"
    code, report = run_json(capsys, str(overlay), "--repo", str(repo), "--env", "dev")
    assert code == 1
    assert [(f["rule"], f["resource"]) for f in report["findings"]] == [
        ("MLP-ROUTE-MISSING", "InferenceService/models-core-ml/iris-classifier")
    ]


def test_overlay_routing_to_another_apps_service_is_refused_at_its_patch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A team points its route at another team's predictor: the Gateway would serve that model under
    this app's path (and this app's metrics)."""
    repo = copy_repo(tmp_path)
    kustomization = repo / "apps" / "iris-classifier" / "overlays" / "prod" / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text() + "  - target: {kind: HTTPRoute}\n"
        "    patch: |-\n"
        "      - {op: add, path: /spec/rules/0/backendRefs/0/namespace, value: models-growth}\n"
    )
    code, report = run_json(capsys, str(kustomization.parent), "--repo", str(repo), "--env", "prod")
    assert code == 1
    (finding,) = report["findings"]
    assert (finding["rule"], finding["file"]) == ("MLP-ROUTE-BACKEND", str(kustomization.relative_to(repo)))
    assert "models-growth/iris-classifier-predictor" in finding["message"]


def add_canary(
    repo: Path, version: str, percent: int, app: str = "iris-classifier", stable: str = "1"
) -> Path:
    """overlays/prod as `mlplat promote --canary` leaves it (no registry needed to write it)."""
    from mlplat import promote

    prod = repo / "apps" / app / "overlays" / "prod"
    uri = f"s3://mlplat-models/{app}/{version}"
    promote.apply_changes([
        promote.Change(prod / "canary.yaml", promote.canary_text(app, app, "prod", version, percent, uri, canary.stable(repo, app))),
        promote.Change(prod / "canary-route.yaml", promote.canary_route_text(app, app, "prod", stable, version, percent)),
        promote.Change(prod / "kustomization.yaml", promote.kustomization_with_canary(prod / "kustomization.yaml", repo, add=True)),
    ])  # fmt: skip
    return prod


def test_overlay_with_a_promoted_canary_passes_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What promote --canary writes must pass CI: the canary predictor inherits the stable one's
    security contexts (KServe merges it over spec.predictor), and the route carries its split."""
    repo = copy_repo(tmp_path)
    prod = add_canary(repo, "2", 10)
    code, report = run_json(capsys, str(prod), "--repo", str(repo), "--env", "prod")
    assert (code, report["findings"]) == (0, [])


def test_canary_that_sets_root_is_judged_as_kserve_runs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_repo(tmp_path)
    prod = add_canary(repo, "2", 10)
    canary = prod / "canary.yaml"
    canary.write_text(
        canary.read_text().replace(
            "      model:\n", "      securityContext:\n        runAsUser: 0\n      model:\n"
        )
    )
    code, report = run_json(capsys, str(prod), "--repo", str(repo), "--env", "prod")
    assert code == 1
    assert {(f["rule"], f["file"]) for f in report["findings"]} == {
        ("MLP-POD-SECURITY", str(canary.relative_to(repo)))
    }


def _seconds(duration: str) -> float:
    """A Gateway API Duration (`^([0-9]{1,5}(h|m|s|ms)){1,4}$`) in seconds."""
    import re

    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(int(n) * scale[unit] for n, unit in re.findall(r"(\d+)(ms|h|m|s)", duration))


@pytest.mark.parametrize("env", ENVS)
def test_a_long_llm_answer_is_not_cut_by_envoys_15_second_default(tmp_path: Path, env: str) -> None:
    """Envoy Gateway sets no route timeout unless the HTTPRoute asks (v1.9.0 route.go), and Envoy's
    default is 15 s: every rule that reaches llm-chat, the canary's and the A/B header's included,
    must allow minutes."""
    routes = [d for d in render("llm-chat", env) if d["kind"] == "HTTPRoute"]
    if env == "prod":
        repo = copy_repo(tmp_path)
        stable = yaml.safe_load((repo / "apps/llm-chat/overlays/prod/model-version.yaml").read_text())
        version = stable["metadata"]["annotations"]["mlplat/model-version"]
        prod = add_canary(repo, str(int(version) + 1), 0, app="llm-chat", stable=version)
        out = subprocess.run(
            ["kubectl", "kustomize", str(prod)], capture_output=True, text=True, check=True
        ).stdout
        routes += [d for d in yaml.safe_load_all(out) if d and d["kind"] == "HTTPRoute"]
    rules = [rule for route in routes for rule in route["spec"]["rules"]]
    assert len(rules) >= (3 if env == "prod" else 1)
    assert all(_seconds((rule.get("timeouts") or {}).get("request", "15s")) >= 120 for rule in rules), rules
