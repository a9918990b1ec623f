"""MLP-ROUTE-WEIGHTS names what each backend gets against what it should get, a missing one included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlplat import validate
from tests.support.validate_helpers import REPO

CASE = REPO / "tests" / "fixtures" / "routes" / "weights-not-100" / "app.yaml"
CANARY_REF = """        - name: fixture-v3-predictor
          port: 80
          weight: 20
          filters:
            - type: RequestHeaderModifier
              requestHeaderModifier: {set: [{name: x-mlplat-model-version, value: "3"}]}
"""


def test_a_backend_missing_from_the_split_is_reported_as_getting_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default rule sends all of it to the stable predictor: the total is 100, but the canary's
    backend gets 0 % of the 10 % its InferenceService declares."""
    text = CASE.read_text()
    assert text.count(CANARY_REF) == 1
    app = tmp_path / "app" / "app.yaml"
    app.parent.mkdir()
    app.write_text(text.replace("weight: 90\n", "weight: 100\n", 1).replace(CANARY_REF, "", 1))
    code = validate.main([str(app.parent), "--env", "dev", "--format", "json", "--no-policy-scan"])
    findings = json.loads(capsys.readouterr().out)["findings"]
    weights = [f for f in findings if f["rule"] == "MLP-ROUTE-WEIGHTS"]
    assert code == 1 and len(weights) == 1, findings
    assert "fixture-v3-predictor 0 (want 10)" in weights[0]["message"], weights


PASS = REPO / "tests" / "fixtures" / "routes" / "pass" / "app.yaml"
PARENT = "{group: gateway.networking.k8s.io, kind: Gateway, namespace: mlplat-gateway, name: inference, sectionName: https}"


def findings_of(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    app = tmp_path / "app" / "app.yaml"
    app.parent.mkdir(exist_ok=True)
    app.write_text(text)
    validate.main([str(app.parent), "--env", "dev", "--format", "json", "--no-policy-scan"])
    found: list[dict[str, object]] = json.loads(capsys.readouterr().out)["findings"]
    return found


def test_a_route_leaving_out_default_fields_or_spelling_them_out_means_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Gateway API defaults a parentRef's group and kind (gateway.networking.k8s.io, Gateway) and a
    backendRef's group and kind ("", Service): a route leaving them out, or spelling them out, attaches
    to the same Gateway and routes to the same Services (HTTPRoute CRD, gateway-api v1.6.1)."""
    text = PASS.read_text()
    assert text.count(PARENT) == 1
    text = text.replace(PARENT, "{namespace: mlplat-gateway, name: inference, sectionName: https}")
    text = text.replace(
        "        - name: fixture-predictor\n",
        '        - group: ""\n          kind: Service\n          name: fixture-predictor\n',
    )
    assert findings_of(text, tmp_path, capsys) == []


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("kind: Gateway,", "kind: ListenerSet,"),
        ("kind: Gateway,", "kind: Service,"),  # a mesh (GAMMA) attachment
        ("kind: Gateway,", "kind: Backend,"),  # a kind sorting before Gateway
        ("namespace: mlplat-gateway,", "namespace: mlplat-gateway-test,"),
        ("name: inference,", "name: inference-internal,"),
    ],
    ids=["listener-set", "mesh-service", "kind-sorting-before-gateway", "other-namespace", "other-name"],
)
def test_a_parent_that_is_not_exactly_the_platform_gateway_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, other: str
) -> None:
    text = PASS.read_text()
    assert text.count(field) == 1
    assert [f["rule"] for f in findings_of(text.replace(field, other), tmp_path, capsys)] == [
        "MLP-ROUTE-PARENT"
    ]


VARIANT_STABLE_REF = """        - name: fixture-predictor
          port: 80
          weight: 0
"""


def test_a_backend_that_should_get_nothing_may_be_left_out_of_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The header rule pinning v3 sends the stable predictor 0 %: leaving its backendRef out says the
    same (a backend left out counts as weight 0), so the route passes."""
    text = PASS.read_text()
    start = text.index(VARIANT_STABLE_REF)
    end = text.index("        - name: fixture-v3-predictor", start)
    assert findings_of(text[:start] + text[end:], tmp_path, capsys) == []


OTHER_APP = """---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: other
  namespace: models-other
  annotations: {mlplat/model-version: "1"}
spec:
  predictor:
    model: {modelFormat: {name: mlflow}, storageUri: s3://mlplat-models/other/1}
"""


def test_a_route_cannot_reach_the_predictor_of_an_app_in_another_namespace_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One render holding two namespaces' apps: the route in models-fixture names `other-predictor`,
    which exists only in models-other. A backendRef without a namespace means the route's own, so it
    names no Service this app owns."""
    text = PASS.read_text()
    stable = "        - name: fixture-predictor\n          port: 80\n          weight: 90\n"
    assert text.count(stable) == 1
    text = text.replace(stable, stable.replace("fixture-predictor", "other-predictor"))
    found = findings_of(text + OTHER_APP, tmp_path, capsys)
    backend = [f for f in found if f["rule"] == "MLP-ROUTE-BACKEND"]
    assert len(backend) == 1, found
    assert "models-fixture/other-predictor, not a predictor Service of this app" in str(backend[0]["message"])


def test_a_path_outside_the_apps_prefix_is_named_with_its_type_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PASS.read_text()
    prefix = "value: /models-fixture/fixture}\n      filters"
    assert text.count(prefix) == 1
    found = findings_of(text.replace(prefix, prefix.replace("/fixture}", "/other}"), 1), tmp_path, capsys)
    assert [f["message"] for f in found if f["rule"] == "MLP-ROUTE-PATH"] == [
        "HTTPRoute spec/rules/[0]/matches/[0] matches path PathPrefix /models-fixture/other, not the app's "
        "prefix (/models-fixture/fixture)"
    ], found


def test_a_parent_finding_names_the_platform_gateway_it_should_be(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PASS.read_text().replace("name: inference,", "name: inference-internal,")
    (finding,) = findings_of(text, tmp_path, capsys)
    assert finding["message"] == (
        "HTTPRoute parentRefs[0] is Gateway mlplat-gateway/inference-internal section https, not the platform "
        "Gateway mlplat-gateway/inference (listener https)"
    ), finding


STABLE_PORT = "        - name: fixture-predictor\n          port: 80\n"


@pytest.mark.parametrize("port", [8, 8080], ids=["below-80", "above-80"])
def test_a_backend_on_any_port_but_80_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], port: int
) -> None:
    """KServe v0.20.0's predictor Services listen on 80 only (CommonDefaultHttpPort)."""
    text = PASS.read_text()
    assert text.count(STABLE_PORT) == 2
    found = findings_of(text.replace(STABLE_PORT, STABLE_PORT.replace("80", str(port)), 1), tmp_path, capsys)
    assert [(f["rule"], f["message"]) for f in found] == [
        (
            "MLP-ROUTE-BACKEND",
            f"HTTPRoute spec/rules/[0]/backendRefs/[0] uses port {port}; KServe's predictor Services listen on 80",
        )
    ], found


URL_REWRITE = "        - type: URLRewrite\n          urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}\n"


def test_a_mirror_to_another_apps_predictor_is_refused_at_the_mirror(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A RequestMirror copies every request to its backend: to another app's predictor it would leak
    this app's requests, so its backendRef is held to the same rule as the route's own. The finding
    points at the mirror (the rule's second filter), not at the URLRewrite before it."""
    text = PASS.read_text()
    assert text.count(URL_REWRITE) == 2
    mirror = (
        "        - type: RequestMirror\n"
        "          requestMirror: {backendRef: {name: other-predictor, namespace: models-other, port: 80}}\n"
    )
    text = text.replace(URL_REWRITE, URL_REWRITE + mirror, 1)
    found = findings_of(text, tmp_path, capsys)
    assert [(f["rule"], f["path"]) for f in found] == [
        ("MLP-ROUTE-BACKEND", "spec/rules/[0]/filters/[1]/requestMirror/backendRef/namespace")
    ], found
    assert found[0]["line"] == text.splitlines().index(mirror.splitlines()[1]) + 1, found


def test_a_route_with_an_empty_parent_list_attaches_to_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PASS.read_text()
    parents = f"  parentRefs:\n    - {PARENT}\n"
    assert text.count(parents) == 1
    found = findings_of(text.replace(parents, "  parentRefs: []\n"), tmp_path, capsys)
    assert [(f["rule"], f["message"]) for f in found if f["rule"] == "MLP-ROUTE-PARENT"] == [
        ("MLP-ROUTE-PARENT", "HTTPRoute has no parentRefs: it attaches to no Gateway")
    ], found


PREFIX_MATCH = "        - path: {type: PathPrefix, value: /models-fixture/fixture}\n      filters"


@pytest.mark.parametrize("path_type", ["Exact", "RegularExpression"])  # sorting before and after PathPrefix
def test_a_match_on_the_apps_prefix_of_another_type_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path_type: str
) -> None:
    """Only a PathPrefix match on the app's prefix is the app's: Exact or a regular expression on the same
    value claims other paths of the Gateway, or fewer than the app serves."""
    text = PASS.read_text()
    assert text.count(PREFIX_MATCH) == 1  # the first rule's (the second also matches a header)
    found = findings_of(
        text.replace(PREFIX_MATCH, PREFIX_MATCH.replace("PathPrefix", path_type), 1), tmp_path, capsys
    )
    assert [(f["rule"], f["path"]) for f in found] == [("MLP-ROUTE-PATH", "spec/rules/[0]/matches/[0]")], (
        found
    )


STABLE_REF = "        - name: fixture-predictor\n          port: 80\n          weight: 90\n"


@pytest.mark.parametrize(
    ("spelled", "key"),
    [
        ("group: example.com", "group"),  # any group but the core one ("")
        ("kind: InferenceService", "kind"),  # kinds sorting before and after Service
        ("kind: ServiceImport", "kind"),
        ("namespace: models-aaa", "namespace"),  # namespaces sorting before and after the route's
        ("namespace: models-zzz", "namespace"),
    ],
)
def test_a_backend_that_is_not_a_core_service_of_the_routes_namespace_is_refused_at_the_key_that_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spelled: str, key: str
) -> None:
    """The finding also lists the predictors the app owns, so the fix is in the message."""
    text = PASS.read_text()
    assert text.count(STABLE_REF) == 1
    found = findings_of(text.replace(STABLE_REF, STABLE_REF + f"          {spelled}\n"), tmp_path, capsys)
    backend = [f for f in found if f["rule"] == "MLP-ROUTE-BACKEND"]
    assert [f["path"] for f in backend] == [f"spec/rules/[0]/backendRefs/[0]/{key}"], found
    assert str(backend[0]["message"]).endswith(
        "not a predictor Service of this app (in models-fixture: fixture-predictor, fixture-v3-predictor)"
    ), backend


def test_a_mirror_on_a_backend_is_told_to_move_to_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The filter's type is read from YAML, as a rendered manifest's is."""
    text = (REPO / "tests" / "fixtures" / "routes" / "filter-mirror-on-backend" / "app.yaml").read_text()
    found = findings_of(text, tmp_path, capsys)
    assert [f["message"] for f in found if f["rule"] == "MLP-ROUTE-FILTER"] == [
        "HTTPRoute filter RequestMirror: on a backendRef mirrors where no rule of this gate looks; put the "
        "mirror on the rule"
    ], found
