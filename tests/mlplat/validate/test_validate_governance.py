"""Holes a reviewer found in validate's verdict (issue 14), each tried on a copy of this repository."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.validate_helpers import copy_repo, edit, run_json

APP = "apps/iris-classifier"
PROD = f"{APP}/overlays/prod"


def findings(report: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["rule"] == rule]


def prod_patched(tmp_path: Path, patch: str) -> Path:
    """A copy of the repository whose prod overlay gets `patch` appended to its kustomization's patches."""
    repo = copy_repo(tmp_path)
    kustomization = repo / PROD / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + patch)
    return repo


def isvc_patch(operation: str) -> str:
    """A `patches:` entry applying one JSON-patch `operation` (flow style) to the InferenceService."""
    return "  - target: {kind: InferenceService}\n    patch: |-\n      - " + operation + "\n"


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
    repo = prod_patched(
        tmp_path,
        isvc_patch(
            "{op: replace, path: /spec/predictor/model/storageUri, value: s3://mlplat-models/iris-classifier/7}"
        ),
    )
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "prod")
    assert code == 1
    (drift,) = findings(report, "MLP-VERSION-DRIFT")
    assert (drift["file"], drift["line"]) == (f"{PROD}/model-version.yaml", 10)
    assert "s3://mlplat-models/iris-classifier/7" in drift["message"]
    # both values shown whole (only a value past 120 characters is shortened)
    assert (
        "but the rendered InferenceService carries 's3://mlplat-models/iris-classifier/7':"
        in drift["message"]
    )


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


# One mistake in the base: one finding at its line in the base, listing every environment it breaks.
BASE_MISTAKES = [
    # Removing the component that sets the security contexts used to pass: the finding is at the model container.
    pytest.param("kustomization.yaml", "  - ../../components/restricted-pod\n", "", "MLP-POD-SECURITY", 23, id="app-without-restricted-pod-component"),
    pytest.param("inferenceservice.yaml", "cpu: 500m", "cpu: 0.5", "MLP-SCHEMA", 29, id="bare-float-cpu-in-the-base"),
]  # fmt: skip


@pytest.mark.parametrize(("file", "old", "new", "rule", "line"), BASE_MISTAKES)
def test_one_mistake_in_the_base_is_one_finding_listing_every_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, old: str, new: str, rule: str, line: int
) -> None:
    repo = copy_repo(tmp_path)
    edit(repo / APP / "base" / file, old, new)
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo))
    assert code == 1
    assert [(f["rule"], f["file"], f["line"], f["env"]) for f in report["findings"]] == [
        (rule, f"{APP}/base/inferenceservice.yaml", line, "dev,staging,prod")
    ]


def _validate_prod_with_patch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], patch: str
) -> tuple[int, list[dict[str, Any]]]:
    """Exit code and findings of validate on the prod overlay of a copy whose kustomization gets `patch`."""
    repo = prod_patched(tmp_path, patch)
    code, report = run_json(capsys, str(repo / PROD), "--repo", str(repo))
    return code, report["findings"]


# An overlay patch that weakens a rule: one finding, at the line of the patch that does it.
WEAKENING_PATCHES = [
    pytest.param("  - target: {kind: Namespace}\n    patch: |-\n      - op: replace\n        path: /metadata/labels/pod-security.kubernetes.io~1enforce\n        value: privileged\n", "MLP-POD-SECURITY-LABEL", 33, id="overlay-relabelling-its-namespace-privileged"),
    pytest.param("  - target: {kind: NetworkPolicy, name: allow-egress-model-store}\n    patch: |-\n      - {op: replace, path: /spec/egress/0/to/0, value: {ipBlock: {cidr: 0.0.0.0/0}}}\n", "MLP-NETPOL-WIDENS", 31, id="allow-all-network-policy-from-an-overlay"),
]  # fmt: skip


@pytest.mark.parametrize(("patch", "rule", "line"), WEAKENING_PATCHES)
def test_an_overlay_patch_weakening_a_rule_is_refused_at_the_patch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], patch: str, rule: str, line: int
) -> None:
    code, found = _validate_prod_with_patch(tmp_path, capsys, patch)
    assert code == 1
    assert [(f["rule"], f["file"], f["line"]) for f in found] == [(rule, f"{PROD}/kustomization.yaml", line)]


def test_bare_float_cpu_in_an_overlay_points_at_the_overlay_and_says_how_to_quote_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, found = _validate_prod_with_patch(
        tmp_path,
        capsys,
        "  - target: {kind: InferenceService}\n"
        "    patch: |-\n"
        "      - op: replace\n"
        "        path: /spec/predictor/model/resources/requests/cpu\n"
        "        value: 0.25\n",
    )
    assert code == 1
    (finding,) = found
    assert (finding["rule"], finding["file"], finding["line"]) == (
        "MLP-SCHEMA",
        f"{PROD}/kustomization.yaml",
        33,
    )
    assert finding["fix"].startswith('quote it, e.g. `cpu: "250m"`')


def test_checkov_findings_carry_the_line_of_the_overlay_that_set_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from mlplat import validate

    repo = prod_patched(
        tmp_path,
        isvc_patch("{op: add, path: /spec/predictor/model/image, value: 'docker.io/library/python:latest'}"),
    )
    code = validate.main([str(repo / PROD), "--repo", str(repo), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    image = [f for f in report["findings"] if f["rule"] == "CKV_MLP_7"]
    assert [(f["file"], f["line"]) for f in image] == [(f"{PROD}/kustomization.yaml", 31)]


RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}


def _psa(kind: str, labels: dict[str, str]) -> list[tuple[str, str]]:
    """(path, message) of MLP-POD-SECURITY-LABEL for one object with `labels`."""
    from mlplat.findings import RenderedDoc
    from mlplat.validation.governance import pod_security_labels

    doc = RenderedDoc(
        "dev",
        "apps/x/overlays/dev",
        "apps/x/base/ns.yaml",
        {"kind": kind, "metadata": {"name": "models-x", "labels": labels}},
    )
    found = pod_security_labels([doc], lambda d, path: (d.source_file, 1))
    assert all(f.rule == "MLP-POD-SECURITY-LABEL" for f in found), found
    return [(str(f.path), f.message) for f in found]


@pytest.mark.parametrize(
    "labels",
    [RESTRICTED, {**RESTRICTED, "pod-security.kubernetes.io/enforce-version": "latest", "team": "x"}],
    ids=["restricted", "restricted-at-latest"],
)
def test_a_restricted_namespace_passes(labels: dict[str, str]) -> None:
    assert _psa("Namespace", labels) == []


WEAKENING_LABELS = [
    pytest.param({**RESTRICTED, "pod-security.kubernetes.io/enforce": "baseline"}, "enforce", "enforce is 'baseline', not 'restricted'", id="enforce-baseline"),
    pytest.param({k: v for k, v in RESTRICTED.items() if not k.endswith("warn")}, "warn", "warn is None, not 'restricted'", id="warn-missing"),
    pytest.param({**RESTRICTED, "pod-security.kubernetes.io/audit-version": "v1.29"}, "audit-version", "audit-version is 'v1.29'", id="pinned-old-version"),
    pytest.param({**RESTRICTED, "pod-security.kubernetes.io/enforce-version": "1.29"}, "enforce-version", "enforce-version is '1.29'", id="version-sorting-before-latest"),  # a version sorting before `latest`
    pytest.param({**RESTRICTED, "pod-security.kubernetes.io/exempt": "true"}, "exempt", "exempt is 'true'", id="unknown-psa-label"),
]  # fmt: skip


@pytest.mark.parametrize(("labels", "path", "says"), WEAKENING_LABELS)
def test_a_namespace_that_weakens_pod_security_is_refused_at_its_label(
    labels: dict[str, str], path: str, says: str
) -> None:
    ((where, message),) = _psa("Namespace", labels)
    assert where == f"metadata/labels/pod-security.kubernetes.io~1{path}" and says in message, (
        where,
        message,
    )


@pytest.mark.parametrize("kind", ["ConfigMap", "Pod"])  # sorting before and after Namespace
def test_pod_security_labels_are_judged_on_namespaces_only(kind: str) -> None:
    assert _psa(kind, {"pod-security.kubernetes.io/enforce": "privileged"}) == []


GATEWAY_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}}}


def _widens(direction: str, rule: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) of MLP-NETPOL-WIDENS for one rule, against two component rules: ingress from the
    gateway on TCP 8080, egress to 10.0.0.0/8 on any port."""
    from mlplat.findings import RenderedDoc
    from mlplat.validation.governance import Rule, network_policies

    allowed = [
        Rule("ingress", (GATEWAY_PEER,), frozenset({("TCP", "8080")}), "a"),
        Rule("egress", ({"ipBlock": {"cidr": "10.0.0.0/8"}},), None, "b"),
    ]
    policy = {"kind": "NetworkPolicy", "metadata": {"name": "p"}, "spec": {direction: [rule]}}
    doc = RenderedDoc("dev", "apps/x/overlays/dev", "apps/x/base/np.yaml", policy)
    found = network_policies([doc], allowed, lambda d, path: (d.source_file, 1))
    return [(str(f.path), f.message) for f in found]


@pytest.mark.parametrize(
    ("direction", "rule"),
    [
        ("ingress", {"from": [GATEWAY_PEER], "ports": [{"port": 8080}]}),  # protocol defaults to TCP
        ("ingress", {"from": [GATEWAY_PEER], "ports": [{"protocol": "TCP", "port": 8080}]}),
        ("egress", {"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}),  # inside 10.0.0.0/8
        ("egress", {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 5432}]}),
    ],
    ids=["gateway-8080", "gateway-tcp-8080", "subnet-of-allowed-block", "allowed-block-one-port"],
)
def test_a_rule_within_what_the_components_allow_passes(direction: str, rule: dict[str, Any]) -> None:
    assert _widens(direction, rule) == []


WIDENING_RULES = [
    pytest.param("ingress", {"ports": [{"port": 8080}]}, "spec/ingress/[0]", "has no `from`", id="no-peers"),
    pytest.param("ingress", {"from": [{}]}, "spec/ingress/[0]/from/[0]", "empty peer", id="empty-peer"),
    pytest.param("ingress", {"from": [GATEWAY_PEER], "ports": [{"port": 9090}]}, "spec/ingress/[0]/ports", "TCP 9090 beyond", id="another-port"),
    pytest.param("ingress", {"from": [GATEWAY_PEER]}, "spec/ingress/[0]/ports", "allows every port beyond", id="every-port"),
    pytest.param("ingress", {"from": [GATEWAY_PEER], "ports": [{"port": 8080, "endPort": 8090}]}, "spec/ingress/[0]/ports", "TCP 8080-8090", id="port-range"),
    pytest.param("ingress", {"from": [{"podSelector": {}}]}, "spec/ingress/[0]/from/[0]", "which no component rule allows", id="other-peer"),
    pytest.param("egress", {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}, "spec/egress/[0]/to/[0]/ipBlock/cidr", "opens ipBlock 0.0.0.0/0", id="ipv4-everything"),
    pytest.param("egress", {"to": [{"ipBlock": {"cidr": "::/0"}}]}, "spec/egress/[0]/to/[0]/ipBlock/cidr", "opens ipBlock ::/0", id="ipv6-everything"),
    pytest.param("egress", {"to": [{"ipBlock": {"cidr": "11.0.0.0/8"}}]}, "spec/egress/[0]/to/[0]", "ipBlock 11.0.0.0/8", id="block-outside"),
    pytest.param("egress", {"to": [{"ipBlock": {"cidr": "10.0.0.0/7"}}]}, "spec/egress/[0]/to/[0]", "ipBlock 10.0.0.0/7", id="block-around-the-allowed-one"),
    pytest.param("egress", {"to": [{"ipBlock": {"cidr": "::a00:0/104"}}]}, "spec/egress/[0]/to/[0]", "ipBlock ::a00:0/104", id="ipv6-block"),
    pytest.param("egress", {"to": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}, "spec/egress/[0]/to/[0]", "ipBlock 10.0.0.0/33", id="not-a-cidr"),
    pytest.param("egress", {"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}, "podSelector": {}}]}, "spec/egress/[0]/to/[0]", "which no component rule allows", id="block-with-a-selector"),
]  # fmt: skip


@pytest.mark.parametrize(("direction", "rule", "path", "says"), WIDENING_RULES)
def test_a_rule_widening_what_the_components_allow_is_refused_where_it_widens(
    direction: str, rule: dict[str, Any], path: str, says: str
) -> None:
    ((where, message),) = _widens(direction, rule)
    assert where == path and says in message, (where, message)


@pytest.mark.parametrize(("length", "shown"), [(118, 120), (119, 120)], ids=["fits-at-120", "cut-past-120"])
def test_a_value_in_a_drift_message_is_shown_whole_up_to_120_characters(
    tmp_path: Path, length: int, shown: int
) -> None:
    """A drift message quotes both values; one longer than 120 characters (quotes included) is cut to
    117 and an ellipsis, so a long patch value cannot flood the report."""
    import yaml

    from mlplat.findings import RenderedDoc
    from mlplat.validation.governance import version_drift
    from mlplat.validation.trees import Trees

    def isvc(note: str) -> dict[str, Any]:
        return {"kind": "InferenceService", "metadata": {"name": "m"}, "spec": {"note": note}}

    (tmp_path / "model-version.yaml").write_text(yaml.safe_dump(isvc("x" * length)))
    rendered = RenderedDoc("dev", "ov", "ov/isvc.yaml", isvc("y"))
    (drift,) = version_drift(tmp_path, "ov", Trees(tmp_path), [rendered], "dev", set())
    text = drift.message.split("spec.note = ", 1)[1].split(", but the rendered", 1)[0]  # repr adds quotes
    assert len(text) == shown and text.endswith("..." if length + 2 > 120 else "'"), text


def test_only_the_components_network_policies_make_rules(tmp_path: Path) -> None:
    """The components' other objects (a kustomization, a list, a Service with `spec.ingress`-like keys)
    allow no traffic: only NetworkPolicy rules are what an app's policies are held to."""
    from mlplat.validation.governance import component_rules
    from mlplat.validation.trees import Trees

    folder = tmp_path / "components" / "c"
    folder.mkdir(parents=True)
    (folder / "kustomization.yaml").write_text("kind: Component\nresources: [np.yaml]\n")
    (folder / "np.yaml").write_text(
        "- a list, not an object\n---\n"
        "kind: Service\nmetadata: {name: s}\nspec: {ingress: [{from: [{podSelector: {}}]}]}\n---\n"
        "kind: NetworkPolicy\nmetadata: {name: allow}\nspec: {ingress: [{ports: [{port: 8080}]}]}\n"
    )
    rules = component_rules(tmp_path / "components", Trees(tmp_path))
    assert [(r.direction, r.peers, r.ports, r.where) for r in rules] == [
        ("ingress", None, frozenset({("TCP", "8080")}), "np.yaml allow")
    ]


def test_a_model_version_file_naming_another_inference_service_is_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The patch entry targets iris-classifier, so kustomize applies it, but the file names an object
    the overlay does not render: what it declares is compared with nothing, so it is refused."""
    repo = copy_repo(tmp_path)
    path = repo / PROD / "model-version.yaml"
    text = path.read_text()
    assert text.count("  name: iris-classifier\n") == 1
    path.write_text(text.replace("  name: iris-classifier\n", "  name: iris-classifier-old\n"))
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "prod")
    (drift,) = findings(report, "MLP-VERSION-DRIFT")
    assert (
        "names InferenceService 'iris-classifier-old', which this overlay does not render" in drift["message"]
    )
    assert code == 1


def test_a_patch_without_a_target_does_not_end_the_search_for_unmatched_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A strategic-merge patch names its object itself (no `target:`); a targeted patch after it that
    matches nothing is still found."""
    repo = prod_patched(
        tmp_path,
        "  - patch: |-\n"
        "      apiVersion: v1\n      kind: ServiceAccount\n      metadata: {name: iris-classifier, namespace: models-core-ml}\n"
        "      automountServiceAccountToken: false\n"
        "  - target: {kind: ConfigMap, name: no-such-map}\n"
        "    patch: |-\n      - {op: add, path: /data/x, value: y}\n",
    )
    code, report = run_json(capsys, str(repo / APP), "--repo", str(repo), "--env", "prod")
    assert [f["rule"] for f in report["findings"]] == ["MLP-PATCH-UNMATCHED"], report["findings"]
    assert "ConfigMap" in report["findings"][0]["message"] and code == 1


def _app(root: Path, files: dict[str, str], kustomization: str) -> Path:
    overlay = root / "apps" / "a" / "overlays" / "dev"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(kustomization)
    for name, text in files.items():
        (overlay / name).write_text(text)
    return overlay.parent.parent


def test_an_unrendered_apps_objects_without_a_namespace_land_in_its_inference_services(
    tmp_path: Path,
) -> None:
    """An app not rendered in this run is indexed from its files: an object without a namespace takes
    the namespace of its tree's one InferenceService (what the components' replacements do), even when
    another object names a namespace of its own."""
    from mlplat.validation.ownership import declared_keys
    from mlplat.validation.trees import Trees

    app = _app(
        tmp_path,
        {
            "isvc.yaml": "kind: InferenceService\nmetadata: {name: m, namespace: models-a}\n",
            "role.yaml": "kind: Role\nmetadata: {name: r, namespace: models-b}\n",
            "cm.yaml": "kind: ConfigMap\nmetadata: {name: c, namespace: models-b}\n",  # a kind sorting first
            "sa.yaml": "kind: ServiceAccount\nmetadata: {name: sa}\n",
            "ns.yaml": "kind: Namespace\nmetadata: {name: models-a}\n",
        },
        "resources: [isvc.yaml, role.yaml, cm.yaml, sa.yaml, ns.yaml]\n",
    )
    (app / "overlays" / "notes").mkdir()  # a folder without a kustomization declares nothing
    assert declared_keys(app, Trees(tmp_path), {}) == {
        ("InferenceService", "models-a", "m"),
        ("Role", "models-b", "r"),
        ("ConfigMap", "models-b", "c"),
        ("ServiceAccount", "models-a", "sa"),
        ("Namespace", "", "models-a"),
    }


def test_the_kustomization_namespace_decides_every_objects_namespace(tmp_path: Path) -> None:
    from mlplat.validation.ownership import declared_keys
    from mlplat.validation.trees import Trees

    app = _app(
        tmp_path,
        {"isvc.yaml": "kind: InferenceService\nmetadata: {name: m, namespace: models-a}\n",
         "sa.yaml": "kind: ServiceAccount\nmetadata: {name: sa}\n"},
        "namespace: models-c\nresources: [isvc.yaml, sa.yaml]\n",
    )  # fmt: skip
    assert declared_keys(app, Trees(tmp_path), {}) == {
        ("InferenceService", "models-c", "m"),
        ("ServiceAccount", "models-c", "sa"),
    }


def test_an_object_put_into_another_apps_namespace_makes_both_apps_share_it(tmp_path: Path) -> None:
    """App b declares only a ServiceAccount in app a's namespace: Argo CD would sync two apps into
    models-a, so both are told, a on the objects that own the namespace, b on the intruding object."""
    from mlplat.findings import RenderedDoc
    from mlplat.validation.ownership import check
    from mlplat.validation.trees import Trees

    for app in ("a", "b"):
        (tmp_path / "apps" / app / "overlays").mkdir(parents=True)

    def doc(app: str, kind: str, name: str, namespace: str | None = None) -> RenderedDoc:
        meta = {"name": name} | ({"namespace": namespace} if namespace else {})
        return RenderedDoc(
            "dev", f"apps/{app}/overlays/dev", f"apps/{app}/base/x.yaml", {"kind": kind, "metadata": meta}
        )

    rendered = {
        "a": [doc("a", "Namespace", "models-a"), doc("a", "InferenceService", "m", "models-a")],
        "b": [doc("b", "InferenceService", "n", "models-b"), doc("b", "ServiceAccount", "sa", "models-a")],
    }
    lines = {"metadata/name": 4, "metadata/namespace": 6}  # the line of the key that says the namespace
    found = check(tmp_path, rendered, Trees(tmp_path), lambda d, path: (d.source_file, lines[path]))
    assert sorted((f.rule, f.resource, f.line, f.path) for f in found) == [
        ("MLP-NAMESPACE-SHARED", "InferenceService/models-a/m", 6, "metadata/namespace"),
        ("MLP-NAMESPACE-SHARED", "Namespace/-/models-a", 4, "metadata/name"),
        ("MLP-NAMESPACE-SHARED", "ServiceAccount/models-a/sa", 6, "metadata/namespace"),
    ], found
    assert [f.fix.split(" (")[0] for f in found if f.resource.startswith("ServiceAccount/")] == [
        "one app per team namespace: put this model into apps/a/"
    ], found

    # App a owns models-a by its Namespace alone (its model elsewhere): its ServiceAccount there is not
    # reported again; b's model in models-a is.
    rendered = {
        "a": [doc("a", "Namespace", "models-a"), doc("a", "ServiceAccount", "sa", "models-a")],
        "b": [doc("b", "InferenceService", "n", "models-a")],
    }
    found = check(tmp_path, rendered, Trees(tmp_path), lambda d, path: (d.source_file, 1))
    assert sorted((f.rule, f.resource) for f in found) == [
        ("MLP-NAMESPACE-SHARED", "InferenceService/models-a/n"),
        ("MLP-NAMESPACE-SHARED", "Namespace/-/models-a"),
    ], found


SAFE_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _pod_security(
    pod: dict[str, Any] | None = None, container: dict[str, Any] | None = None, **extra: Any
) -> list[str]:
    """Paths of the restricted controls a predictor breaks: the pod runs as non-root, its model
    container has SAFE_CONTAINER's context updated with `container` (a None value removes the key)."""
    from mlplat.validation.podsecurity import problems

    context = {k: v for k, v in {**SAFE_CONTAINER, **(container or {})}.items() if v is not None}
    predictor = {
        "securityContext": {"runAsNonRoot": True, **(pod or {})},
        "model": {"securityContext": context},
        **extra,
    }
    return [path for path, _, _ in problems({"kind": "InferenceService", "spec": {"predictor": predictor}})]


M = "spec/predictor/model/securityContext"
P = "spec/predictor"


RESTRICTED_CONTROLS = [
    pytest.param({}, {}, {}, [], id="restricted"),
    pytest.param({"seccompProfile": {"type": "Localhost"}}, {"seccompProfile": None}, {}, [], id="seccomp-from-the-pod"),  # the pod's profile
    pytest.param({}, {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}, {}, [], id="net-bind-service"),  # the one allowed add
    pytest.param({}, {"procMount": "Default", "seLinuxOptions": {"type": "container_t"}}, {}, [], id="default-proc-mount-and-container-t"),
    pytest.param({}, {"appArmorProfile": {"type": "RuntimeDefault"}}, {}, [], id="apparmor-runtime-default"),
    pytest.param({}, {}, {"hostNetwork": True}, [f"{P}/hostNetwork"], id="host-network"),
    pytest.param({}, {}, {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, [f"{P}/volumes/[0]/hostPath"], id="host-path"),
    pytest.param({"runAsUser": 0}, {}, {}, [f"{P}/securityContext/runAsUser"], id="root-uid"),
    pytest.param({"seccompProfile": {"type": "Unconfined"}}, {}, {}, [f"{P}/securityContext/seccompProfile/type"], id="pod-unconfined"),
    pytest.param({}, {"privileged": True}, {}, [f"{M}/privileged"], id="privileged"),
    pytest.param({}, {"allowPrivilegeEscalation": None}, {}, [f"{M}/allowPrivilegeEscalation"], id="escalation-unset"),
    pytest.param({}, {"runAsNonRoot": False}, {}, [f"{M}/runAsNonRoot"], id="run-as-root-allowed"),
    pytest.param({"runAsNonRoot": None}, {}, {}, [f"{M}/runAsNonRoot"], id="non-root-nowhere"),
    pytest.param({}, {"seccompProfile": None}, {}, [f"{M}/seccompProfile"], id="seccomp-nowhere"),
    pytest.param({}, {"seccompProfile": {"type": "Unconfined"}}, {}, [f"{M}/seccompProfile/type"], id="container-unconfined"),
    pytest.param({}, {"capabilities": {"drop": ["NET_RAW"]}}, {}, [f"{M}/capabilities/drop"], id="drop-not-all"),
    pytest.param({}, {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}, {}, [f"{M}/capabilities/add"], id="add-sys-admin"),
    pytest.param({}, {"procMount": "Unmasked"}, {}, [f"{M}/procMount"], id="unmasked-proc"),
    pytest.param({}, {"seLinuxOptions": {"user": "system_u"}}, {}, [f"{M}/seLinuxOptions"], id="selinux-user"),
    pytest.param({}, {"appArmorProfile": {"type": "Unconfined"}}, {}, [f"{M}/appArmorProfile/type"], id="apparmor-unconfined"),
    pytest.param({}, {"windowsOptions": {"hostProcess": True}}, {}, [f"{M}/windowsOptions/hostProcess"], id="windows-host-process"),
]  # fmt: skip


@pytest.mark.parametrize(("pod", "container", "extra", "paths"), RESTRICTED_CONTROLS)
def test_each_restricted_control_is_one_finding_at_its_key(
    pod: dict[str, Any], container: dict[str, Any], extra: dict[str, Any], paths: list[str]
) -> None:
    """Pod Security Standards, restricted (https://kubernetes.io/docs/concepts/security/pod-security-standards/)."""
    assert _pod_security(pod, container, **extra) == paths


def test_a_container_without_a_security_context_is_one_finding() -> None:
    from mlplat.validation.podsecurity import problems

    doc = {"kind": "InferenceService", "spec": {"predictor": {"model": {"name": "m"}}}}
    assert [path for path, _, _ in problems(doc)] == [M]


def test_a_host_port_is_refused_on_the_port_that_sets_it() -> None:
    from mlplat.validation.podsecurity import problems

    model = {
        "securityContext": SAFE_CONTAINER | {"runAsNonRoot": True},
        "ports": [{"containerPort": 8080}, {"containerPort": 9090, "hostPort": 9090}],
    }
    doc = {"kind": "InferenceService", "spec": {"predictor": {"model": model}}}
    assert [path for path, _, _ in problems(doc)] == ["spec/predictor/model/ports/[1]/hostPort"]


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet"])  # sorting before and after InferenceService
def test_a_workloads_pod_template_is_held_to_restricted_too(kind: str) -> None:
    """A Deployment or StatefulSet an app ships is judged on its pod template, like a predictor."""
    from mlplat.validation.podsecurity import problems

    container = {"name": "c", "securityContext": {**SAFE_CONTAINER, "runAsNonRoot": True, "privileged": True}}
    doc = {"kind": kind, "spec": {"template": {"spec": {"containers": [container]}}}}
    assert [path for path, _, _ in problems(doc)] == [
        "spec/template/spec/containers/[0]/securityContext/privileged"
    ]


def test_a_canarys_own_security_context_is_judged_where_the_stable_predictor_has_none() -> None:
    """KServe merges the canary over spec.predictor; a mapping the stable predictor does not have is
    the canary's alone, and judged as it is written."""
    from mlplat.validation.podsecurity import problems

    stable = {"model": {"securityContext": {**SAFE_CONTAINER, "runAsNonRoot": True}}}
    canary = {"name": "v2", "securityContext": {"runAsUser": 0}, "model": {"storageUri": "s3://m/x/2"}}
    doc = {"kind": "InferenceService", "spec": {"predictor": stable, "canary": [{"predictor": canary}]}}
    assert [path for path, _, _ in problems(doc)] == ["spec/canary/[0]/predictor/securityContext/runAsUser"]
