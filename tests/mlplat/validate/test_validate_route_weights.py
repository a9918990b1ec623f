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
        ("namespace: mlplat-gateway,", "namespace: mlplat-gateway-test,"),
        ("name: inference,", "name: inference-internal,"),
    ],
    ids=["listener-set", "mesh-service", "other-namespace", "other-name"],
)
def test_a_parent_that_is_not_exactly_the_platform_gateway_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, other: str
) -> None:
    text = PASS.read_text()
    assert text.count(field) == 1
    assert [f["rule"] for f in findings_of(text.replace(field, other), tmp_path, capsys)] == [
        "MLP-ROUTE-PARENT"
    ]
