"""MLP-NAMESPACE-SHARED and MLP-OBJECT-SHARED (mlplat/validation/ownership.py) on rendered objects:
Argo CD syncs with FailOnSharedResource=true, so a second app declaring an object fails its sync."""

from __future__ import annotations

from pathlib import Path

from mlplat.findings import Finding, RenderedDoc
from mlplat.validation.ownership import check
from mlplat.validation.trees import Trees


def _doc(app: str, kind: str, name: str, namespace: str | None = None) -> RenderedDoc:
    meta = {"name": name} | ({"namespace": namespace} if namespace else {})
    return RenderedDoc(
        "dev", f"apps/{app}/overlays/dev", f"apps/{app}/base/x.yaml", {"kind": kind, "metadata": meta}
    )


def _check(root: Path, rendered: dict[str, list[RenderedDoc]]) -> list[Finding]:
    for app in rendered:
        (root / "apps" / app / "overlays").mkdir(parents=True)
    return check(root, rendered, Trees(root), lambda doc, path: (doc.source_file, 1))


def test_the_fix_names_the_first_other_app_when_three_share_a_namespace(tmp_path: Path) -> None:
    """The message lists every other app; the fix points at one folder to move into, the first by name."""
    found = _check(
        tmp_path, {app: [_doc(app, "InferenceService", app, "models-x")] for app in ("c", "a", "b")}
    )
    (finding,) = [f for f in found if f.file.startswith("apps/c/")]
    assert finding.rule == "MLP-NAMESPACE-SHARED", finding
    assert "namespace models-x is also used by app(s) a, b;" in finding.message, finding
    assert finding.fix.startswith("one app per team namespace: put this model into apps/a/ "), finding


def test_an_object_without_a_namespace_declared_by_two_apps_is_reported_on_both(tmp_path: Path) -> None:
    found = _check(
        tmp_path,
        {
            app: [_doc(app, "InferenceService", "m", f"models-{app}"), _doc(app, "ConfigMap", "shared")]
            for app in "ab"
        },
    )
    assert sorted((f.rule, f.file, f.resource, f.path) for f in found) == [
        ("MLP-OBJECT-SHARED", "apps/a/base/x.yaml", "ConfigMap/-/shared", "metadata/name"),
        ("MLP-OBJECT-SHARED", "apps/b/base/x.yaml", "ConfigMap/-/shared", "metadata/name"),
    ], found
    assert found[0].message.startswith(
        "ConfigMap shared (without a namespace) is also declared by app(s) "
    ), found


def test_objects_of_the_same_name_in_each_apps_own_namespace_are_not_shared(tmp_path: Path) -> None:
    found = _check(
        tmp_path,
        {
            app: [
                _doc(app, "InferenceService", "m", f"models-{app}"),
                _doc(app, "ConfigMap", "shared", f"models-{app}"),
            ]
            for app in "ab"
        },
    )
    assert found == []
