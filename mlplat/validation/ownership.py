"""MLP-NAMESPACE-SHARED and MLP-OBJECT-SHARED: one app per team namespace, no object in two apps.

Argo CD syncs every app with `FailOnSharedResource=true` (the ApplicationSet of platform/argocd/models.yaml):
the second Application that declares an object another one already manages fails its sync. The check
spans the whole repository in every mode: apps rendered in this run are judged from their rendered
objects; every other app is indexed from its files (resources of its kustomization trees, no
kustomize run), so `--changed` stays cheap. Objects without a namespace in the files take the
namespace of their tree's InferenceService, which is what the shared components do (replacements).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mlplat.findings import Finding, Locate, RenderedDoc
from mlplat.validation.targets import KUSTOMIZATION_FILES, app_dirs
from mlplat.validation.trees import Trees, construct, is_remote

Key = tuple[str, str, str]  # kind, namespace ("" when cluster-scoped), name
CLUSTER_SCOPED = frozenset({"Namespace"})  # the only cluster-scoped kind the AppProject lets apps declare
# An app owns the namespaces it declares and the ones its models run in; a shared one is reported on
# these objects (once), any other object of the app in someone else's namespace is reported itself.
OWNING_KINDS = ("Namespace", "InferenceService")


def rendered_keys(docs: Iterable[RenderedDoc]) -> set[Key]:
    keys = set()
    for doc in docs:
        meta = doc.doc.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        kind = str(doc.doc.get("kind"))
        namespace = "" if kind in CLUSTER_SCOPED else str(meta.get("namespace") or "")
        keys.add((kind, namespace, str(meta.get("name"))))
    return keys


Declared = tuple[
    tuple[tuple[str, str | None, str], ...], str | None
]  # (kind, namespace, name)s, `namespace:`


def declared_keys(app: Path, trees: Trees, cache: dict[Path, Declared]) -> set[Key]:
    """What an app's overlays declare, read from its files (an over-approximation of the render).
    `cache` holds each kustomization folder's answer: the shared components are read once per run."""
    keys: set[Key] = set()
    overlays = app / "overlays"
    for overlay in sorted(p for p in overlays.iterdir() if p.is_dir()) if overlays.is_dir() else []:
        raw, override = _walk(overlay.resolve(), trees, cache)
        homes = {ns for kind, ns, _ in raw if kind == "InferenceService" and ns}
        home = override or (next(iter(homes)) if len(homes) == 1 else None)
        for kind, namespace, name in raw:
            if kind in CLUSTER_SCOPED:
                keys.add((kind, "", name))
            elif override or namespace or home:
                keys.add((kind, str(override or namespace or home), name))
    return keys


def _walk(folder: Path, trees: Trees, cache: dict[Path, Declared]) -> Declared:
    """(kind, namespace, name) of every resource a kustomization includes, and its `namespace:`."""
    if folder in cache:
        return cache[folder]
    cache[folder] = ((), None)  # a cycle ends here (kustomize refuses it anyway)
    kfile = next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)
    spec = construct(trees.nodes(kfile)[0]) if kfile is not None and trees.nodes(kfile) else None
    if not isinstance(spec, dict):
        return cache[folder]
    found: list[tuple[str, str | None, str]] = []
    inner: str | None = None
    for key in ("resources", "bases", "components"):
        for ref in spec.get(key) or [] if isinstance(spec.get(key), list) else []:
            if not isinstance(ref, str) or is_remote(ref):
                continue
            path = (folder / ref).resolve()
            if path.is_dir():
                sub, namespace = _walk(path, trees, cache)
                found += sub
                inner = namespace or inner
            elif path.is_file():
                found += _file_objects(path, trees, cache)
    namespace = spec.get("namespace")
    cache[folder] = (tuple(found), str(namespace) if isinstance(namespace, str) and namespace else inner)
    return cache[folder]


def _file_objects(
    path: Path, trees: Trees, cache: dict[Path, Declared]
) -> tuple[tuple[str, str | None, str], ...]:
    if path not in cache:
        found = []
        for node in trees.nodes(path):
            doc = construct(node)
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            if isinstance(meta, dict) and meta.get("name"):
                namespace = meta.get("namespace")
                found.append((str(doc.get("kind")), str(namespace) if namespace else None, str(meta["name"])))
        cache[path] = (tuple(found), None)
    return cache[path][0]


def check(
    root: Path,
    rendered: Mapping[str, Sequence[RenderedDoc]],
    trees: Trees,
    locate: Locate,
) -> list[Finding]:
    """`rendered`: app name -> its rendered objects (all environments of this run)."""
    owners: dict[Key, set[str]] = {}
    cache: dict[Path, Declared] = {}
    for app_dir in app_dirs(root):
        keys = (
            rendered_keys(rendered[app_dir.name])
            if app_dir.name in rendered
            else declared_keys(app_dir, trees, cache)
        )
        for key in keys:
            owners.setdefault(key, set()).add(app_dir.name)
    by_namespace: dict[str, set[str]] = {}
    for (kind, namespace, name), apps in owners.items():
        by_namespace.setdefault(name if kind == "Namespace" else namespace, set()).update(apps)
    by_namespace.pop("", None)
    findings = []
    for app, docs in rendered.items():
        objects = [(doc, next(iter(rendered_keys([doc])))) for doc in docs]
        own = {n if k == "Namespace" else ns for _, (k, ns, n) in objects if k in OWNING_KINDS}
        for doc, (kind, namespace, name) in objects:
            home = name if kind == "Namespace" else namespace
            others = sorted(by_namespace.get(home, set()) - {app})
            if others and (kind in OWNING_KINDS or home not in own):
                file, line = locate(doc, "metadata/name" if kind == "Namespace" else "metadata/namespace")
                findings.append(
                    Finding(
                        file,
                        doc.ref,
                        "MLP-NAMESPACE-SHARED",
                        f"namespace {home} is also used by app(s) {', '.join(others)}; Argo CD syncs with "
                        "FailOnSharedResource=true, so the second app's sync fails on the shared objects",
                        f"one app per team namespace: put this model into apps/{others[0]}/ (an app may hold "
                        "several models) or give it its own team namespace models-<team>",
                        doc.env,
                        line,
                        "metadata/name" if kind == "Namespace" else "metadata/namespace",
                    )
                )
                continue
            # Only an object without a namespace gets here: a namespaced one another app declares puts
            # that app into its namespace, which is MLP-NAMESPACE-SHARED above.
            sharing = sorted(owners.get((kind, namespace, name), set()) - {app})
            if sharing and not others:
                file, line = locate(doc, "metadata/name")
                findings.append(
                    Finding(
                        file,
                        doc.ref,
                        "MLP-OBJECT-SHARED",
                        f"{kind} {name} (without a namespace) is also declared by app(s) "
                        f"{', '.join(sharing)}; Argo CD fails the second app's sync (FailOnSharedResource=true)",
                        "declare the object in one app only (rename it, or move it)",
                        doc.env,
                        line,
                        "metadata/name",
                    )
                )
    return findings
