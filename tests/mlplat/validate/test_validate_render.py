"""How validate renders: the fast origin path (objects matched to the file that declares them)
must give the same answer as kustomize's own origin annotations, and must not be skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlplat.validation import render
from mlplat.validation.targets import OVERLAY, Target
from tests.support.validate_helpers import REPO


def _overlays() -> list[Target]:
    return [
        Target(path.relative_to(REPO).as_posix(), path.name, True, path.parent.parent.name)
        for path in sorted(REPO.glob("apps/*/overlays/*"))
        if OVERLAY.match(path.relative_to(REPO).as_posix())
    ]


# kubectl as render runs it (`kubectl kustomize <folder>`), seen from outside: each build is logged as
# `origins` (asked kustomize for its origin annotations, the slow path) or `fast`; with
# KUBECTL_EMPTY_FAST set, a fast build renders nothing, which sends render to kustomize's own origins.
KUBECTL_SHIM = """#!/bin/sh
if grep -q originAnnotations "$2/kustomization.yaml"; then build=origins; else build=fast; fi
echo "$build" >> "$KUBECTL_LOG"
if [ "$build" = fast ] && [ -n "$KUBECTL_EMPTY_FAST" ]; then exit 0; fi
exec "$REAL_KUBECTL" "$@"
"""


class Kubectl:
    """The kubectl render runs, replaced by KUBECTL_SHIM for one test."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        real = shutil.which("kubectl")
        assert real, "kubectl is not on the PATH"
        (folder / "kubectl").write_text(KUBECTL_SHIM)
        (folder / "kubectl").chmod(0o755)
        self.log = folder / "builds.log"
        self.log.touch()
        self.monkeypatch = monkeypatch
        path = f"{folder}:{render.KUBECTL_ENV.get('PATH', '')}"
        for key, value in (("PATH", path), ("KUBECTL_LOG", str(self.log)), ("REAL_KUBECTL", real)):
            monkeypatch.setitem(render.KUBECTL_ENV, key, value)

    def builds(self) -> list[str]:
        return self.log.read_text().split()

    def without_fast_path(self) -> None:
        self.monkeypatch.setitem(render.KUBECTL_ENV, "KUBECTL_EMPTY_FAST", "1")


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Kubectl:
    return Kubectl(tmp_path, monkeypatch)


def test_a_generator_in_a_base_does_not_send_every_overlay_to_the_slow_origin_build(
    kubectl: Kubectl,
) -> None:
    """An app base generating its logging policy ConfigMap doubled kustomize's CPU for every overlay
    of every logged app (the whole-repository benchmark went from 31 s to 59 s)."""
    out = render.render([t for t in _overlays() if t.app == "iris-classifier"], REPO)
    assert not out.findings
    assert any(d.doc["kind"] == "ConfigMap" for d in out.docs)
    assert kubectl.builds() and set(kubectl.builds()) == {"fast"}, kubectl.builds()


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_fast_origins_agree_with_kustomizes_own_for_every_example_overlay(env: str, kubectl: Kubectl) -> None:
    """Same file for every object either way; a generated ConfigMap points at the kustomization
    whose generator makes it, not at the overlay folder."""
    targets = [t for t in _overlays() if t.env == env]  # one chunk per environment, as render makes them
    fast = render.render(targets, REPO)
    assert set(kubectl.builds()) == {"fast"}, kubectl.builds()  # every object matched its one file
    kubectl.without_fast_path()
    slow = render.render(targets, REPO)
    assert "origins" in kubectl.builds()
    assert fast.docs and not fast.findings and not slow.findings, (fast.findings, slow.findings)

    def origins(docs: list[render.RenderedDoc]) -> list[tuple[str, str, str, str]]:
        return sorted((d.target, d.doc["kind"], d.doc["metadata"]["name"], d.source_file) for d in docs)

    assert origins(fast.docs) == origins(slow.docs)
    generated = [
        o for o in origins(slow.docs) if o[1] == "ConfigMap" and o[2].startswith("inference-log-policy-")
    ]
    assert generated and all(o[3].endswith("/base/kustomization.yaml") for o in generated), generated


def test_the_same_schema_error_in_many_apps_is_reported_for_each_with_its_own_place() -> None:
    """Schema verdicts are computed once per distinct object body (apart from metadata): a verdict
    must still reach every object that has it, and metadata is still judged object by object."""
    from mlplat.findings import RenderedDoc
    from mlplat.validation.schemas import SchemaSet

    def policy(app: str, labels: object) -> RenderedDoc:
        body = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": f"models-{app}", "labels": labels},
            "spec": {"podSelector": {}, "policyTypes": ["Sideways"], "ingres": []},
        }
        return RenderedDoc("dev", f"apps/{app}/overlays/dev", f"apps/{app}/base/np.yaml", body)

    schemas = SchemaSet("1.33", None)
    good, bad = policy("a", {"team": "x"}), policy("b", {"team": 7})
    first, second = (sorted((f.rule, f.path) for f in schemas.check(d, 3)) for d in (good, bad))
    assert ("MLP-UNKNOWN-FIELD", "spec/ingres") in first and first == [
        f for f in second if f[1] != "metadata/labels/team"
    ]
    assert ("MLP-SCHEMA", "metadata/labels/team") in second
    assert {f.file for f in schemas.check(bad, 3)} == {"apps/b/base/np.yaml"}
    # Names, labels and annotations are blanked in the metadata verdict's key only where ObjectMeta
    # accepts any string: a name that is not a string still gets its finding after a good one.
    numbered = policy("c", {"team": "y"})
    numbered.doc["metadata"]["name"] = 5
    assert ("MLP-SCHEMA", "metadata/name") in {(f.rule, f.path) for f in schemas.check(numbered, 3)}


def test_an_unknown_custom_resource_field_is_reported_for_every_app_that_has_it(tmp_path: Path) -> None:
    """The fields a CRD does not declare are found once per distinct body apart from metadata, and
    reported for each app under its own file."""
    import yaml

    from mlplat.findings import RenderedDoc
    from mlplat.validation.schemas import SchemaSet

    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.org"},
        "spec": {"group": "example.org", "scope": "Namespaced",
                 "names": {"kind": "Widget", "plural": "widgets"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {
                         "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                         "spec": {"type": "object", "properties": {
                         "size": {"type": "integer"}}}}}}}]},
    }  # fmt: skip
    (tmp_path / "widget.yaml").write_text(yaml.safe_dump(crd))
    schemas = SchemaSet("1.33", tmp_path)

    def widget(app: str) -> RenderedDoc:
        body = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": app, "namespace": app},
                "spec": {"size": 1, "colour": "red"}}  # fmt: skip
        return RenderedDoc("dev", f"apps/{app}", f"apps/{app}/widget.yaml", body)

    for app in ("a", "b"):
        found = [(f.rule, f.path, f.file) for f in schemas.check(widget(app), 1)]
        assert found == [("MLP-UNKNOWN-FIELD", "spec/colour", f"apps/{app}/widget.yaml")]


def test_an_overlay_generator_replacing_a_base_configmap_is_placed_in_the_overlay(tmp_path: Path) -> None:
    """`behavior: replace` keeps the base object's name but kustomize says the overlay made it; the
    fast path must not credit the base file (found in review)."""
    (tmp_path / "base").mkdir()
    (tmp_path / "ov").mkdir()
    (tmp_path / "base" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '1'}\n"
    )
    (tmp_path / "base" / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (tmp_path / "ov" / "kustomization.yaml").write_text(
        "resources: [../base]\nconfigMapGenerator:\n  - {name: cfg, behavior: replace, literals: [a=2]}\n"
    )
    out = render.render([Target("ov", "dev", True, None)], tmp_path)
    assert not out.findings and [(d.doc["metadata"]["name"], d.source_file) for d in out.docs] == [
        ("cfg", "ov/kustomization.yaml")
    ]


def test_a_string_the_schema_constrains_is_judged_in_every_document(tmp_path: Path) -> None:
    """Documents equal apart from strings the schema accepts whatever they say share one clean
    verdict; a string under an enum, a pattern or a uniqueItems list is never blanked, so the
    document that breaks it gets its finding after others passed."""
    import yaml

    from mlplat.findings import RenderedDoc
    from mlplat.validation.schemas import SchemaSet

    spec_schema = {"type": "object", "properties": {
        "note": {"type": "string"},
        "colour": {"type": "string", "enum": ["red", "blue"]},
        "path": {"type": "string", "pattern": "^/"},
        "tags": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
    }}  # fmt: skip
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.org"},
        "spec": {"group": "example.org", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                      "metadata": {"type": "object"}, "spec": spec_schema}}}}]},
    }  # fmt: skip
    (tmp_path / "widget.yaml").write_text(yaml.safe_dump(crd))
    schemas = SchemaSet("1.33", tmp_path)

    def judged(app: str, **spec: object) -> set[tuple[str, str | None]]:
        body = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": app, "namespace": app},
                "spec": {"note": app, "colour": "red", "path": "/a", "tags": ["x", "y"], **spec}}  # fmt: skip
        return {(f.rule, f.path) for f in schemas.check(RenderedDoc("dev", app, f"{app}.yaml", body), 1)}

    assert judged("a") == set() and judged("b") == set()
    assert judged("c", colour="green") == {("MLP-SCHEMA", "spec/colour")}
    assert judged("d", path="a") == {("MLP-SCHEMA", "spec/path")}
    assert judged("e", tags=["x", "x"]) == {("MLP-SCHEMA", "spec/tags")}
    assert judged("f", note=7) == {("MLP-SCHEMA", "spec/note")}


def test_values_that_print_alike_do_not_share_a_verdict() -> None:
    """A date YAML reads from an unquoted 2024-01-01 is not the string "2024-01-01", and keys of mixed
    types (`{9000: a, ssh: b}`) are legal YAML: the verdict memo tells them apart and never crashes."""
    import datetime

    from mlplat.findings import RenderedDoc
    from mlplat.validation.schemas import SchemaSet

    schemas = SchemaSet("1.33", None)

    def config_map(
        name: str, data: dict[object, object], created: object = "2024-01-01T00:00:00Z"
    ) -> RenderedDoc:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
                "metadata": {"name": name, "namespace": "models-a", "creationTimestamp": created}}  # fmt: skip
        return RenderedDoc("dev", "t", f"{name}.yaml", body)

    assert schemas.check(config_map("quoted", {"a": "2024-01-01"}), 1) == []
    dated = schemas.check(config_map("unquoted", {"a": datetime.date(2024, 1, 1)}), 1)
    assert [(f.rule, f.path) for f in dated] == [("MLP-SCHEMA", "data/a")], dated
    mixed = schemas.check(config_map("mixed", {9000: "x", "ssh": "y"}), 1)
    assert all(f.rule == "MLP-SCHEMA" for f in mixed), mixed
