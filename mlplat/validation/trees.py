"""A target's kustomization tree as written in git: its patches, remote references and resource files.

Kustomize tells where an object came from, not which patch set a value, and it silently skips a
patch whose `target:` matches nothing. So validate walks the tree itself (local files only, each
parsed once per run however many overlays include it) to:
- find the file and line that set a rendered value: the last patch of the tree that sets the path
  for that object, else the resource file that declares the object (`Trees.locate`);
- list every `patches:` entry with its target selector, to judge whether it matched anything;
- list references validate refuses: remote content (URLs, git repositories), paths naming nothing
  inside the repository, and paths an app's kustomization takes from outside its app folder and the
  shared components (which `--changed` would not re-validate when they change);
- for an Argo CD app path (`apps/<app>/overlays/<env>`, the ApplicationSet's git directories), what
  would make Argo CD deploy something other than what validate renders (`AppPath`).

Selector semantics follow kustomize (kubernetes-sigs/kustomize api/types/selector.go, `anchorRegex`,
as vendored in kubernetes/kubernetes and kubectl): group, version, kind, name
and namespace are regular expressions anchored as `^(?:...)$`; labelSelector and
annotationSelector are Kubernetes label selector expressions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlplat.findings import RenderedDoc
from mlplat.validation import ENVIRONMENTS, rel, within
from mlplat.validation.targets import ARGOCD_SOURCE, COMPONENTS, KUSTOMIZATION_FILES, OVERLAY, PROMOTE_JOURNAL

FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# What kustomize fetches instead of reading a local path. Argo CD v3.4.4 (the argo-cd chart 10.1.1's
# appVersion, infra/versions.py) bundles kustomize 5.8.1 (argoproj/argo-cd hack/tool-versions.sh).
# kustomize api/internal/loader/fileloader.go `New` asks git.NewRepoSpecFromURL before looking for a
# local folder, and `Load` fetches http(s) files (IsRemoteFile); api/internal/git/repospec.go
# extractHost reads an optional `git::`, a scheme (ssh, https, http, file: all `://`), else the SCP
# style, accepted with any user `[a-zA-Z][a-zA-Z0-9-]*@` (extractUsername) or a `github.com/` or
# `github.com:` prefix (isStandardGithubHost); `?ref=` names a revision. A reference that is none of
# these must still name a file or folder inside the repository (`Trees._reference_problem`).
REMOTE = re.compile(r"://|^(?:git::)?(?:[a-z][a-z0-9-]*@|github\.com[/:])|[?&]ref=", re.I)
REFERENCE_KEYS = ("resources", "bases", "components")
# Keys that may name further kustomizations or files, where a reference is held to the same rules.
OTHER_REFERENCE_KEYS = ("transformers", "generators", "validators", "crds", "configurations")
GENERATOR_KEYS = ("configMapGenerator", "secretGenerator")
# argo-cd v3.4.4 util/app/discovery/discovery.go Discover: a file whose name ends in `Chart.yaml` makes
# the folder Helm, a kustomization file makes it Kustomize, whichever `filepath.Walk` meets last (files
# in lexical order), and AppType falls back to a plain Directory (every YAML applied) without either.
HELM_CHART_SUFFIX = "Chart.yaml"
APP_FOLDER = re.compile(r"^apps/(?P<app>[^/]+)$")
# The MLP-APP-LAYOUT problem of an overlays/ folder among the shared components (targets.stray_dirs).
COMPONENTS_AS_APP = "an overlays/ folder makes the shared components an app"
Path_ = tuple[str | int, ...]


def is_remote(ref: str) -> bool:
    """A kustomize reference to content outside this repository (kustomize fetches it at build time)."""
    return bool(REMOTE.search(ref.strip()))


def split_path(path: str) -> Path_:
    """A finding's key path (`spec/predictor/containers/[0]/image`) as keys and list indexes."""
    keys: list[str | int] = []
    for part in (p for p in path.split("/") if p):
        index = re.fullmatch(r"\[(\d+)\]", part)
        keys.append(int(index[1]) if index else part.replace("~1", "/").replace("~0", "~"))
    return tuple(keys)


def _node_at(node: yaml.Node | None, path: Path_) -> tuple[yaml.Node | None, int]:
    """The deepest node along `path` and how many keys of it were found."""
    depth = 0
    for key in path:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            child = node.value[key]
        else:
            break
        if child is None:
            break
        node, depth = child, depth + 1
    return node, depth


def _key_line(node: yaml.Node | None, path: Path_, offset: int) -> int | None:
    """Line of the key that holds the deepest node found along `path` (1-based, plus `offset`)."""
    if node is None:
        return None
    parent, depth = _node_at(node, path[:-1]) if path else (node, 0)
    if path and depth == len(path) - 1 and isinstance(parent, yaml.MappingNode):
        key = next((k for k, _ in parent.value if k.value == path[-1]), None)
        if key is not None:
            line: int = key.start_mark.line + 1 + offset
            return line
    found, _ = _node_at(node, path)
    return found.start_mark.line + 1 + offset if found is not None else None


@dataclass(frozen=True)
class Selector:
    """A patch target (kustomize `target:`), or the kind and name of a strategic-merge patch."""

    group: str = ""
    version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""
    label_selector: str = ""
    annotation_selector: str = ""

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in vars(self).items() if v]
        return "{" + ", ".join(parts) + "}"

    def matches(self, body: dict[str, Any]) -> bool:
        meta = body.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        group, _, version = str(body.get("apiVersion", "")).rpartition("/")
        checks = (
            (self.group, group),
            (self.version, version),
            (self.kind, str(body.get("kind", ""))),
            (self.name, str(meta.get("name", ""))),
            (self.namespace, str(meta.get("namespace", ""))),
        )
        for pattern, value in checks:
            try:
                if pattern and not re.fullmatch(f"(?:{pattern})", value):
                    return False
            except re.error:
                return False
        return _selects(self.label_selector, meta.get("labels")) and _selects(
            self.annotation_selector, meta.get("annotations")
        )


SELECTOR_TERM = re.compile(
    r"^\s*(!)?\s*([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$"
)


def _selects(expression: str, values: Any) -> bool:
    """A Kubernetes label selector expression against labels (or annotations)."""
    labels = {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {}
    for term in re.split(r",(?![^(]*\))", expression) if expression else []:
        match = SELECTOR_TERM.match(term)
        if match is None:
            return True  # kustomize would refuse an unparseable selector; do not guess it away
        negate, key, op, value, set_op, members = match.groups()
        if op in ("=", "=="):
            ok = labels.get(key) == value
        elif op == "!=":
            ok = labels.get(key) != value
        elif set_op:
            inside = labels.get(key) in {m.strip() for m in members.split(",")}
            ok = inside if set_op == "in" else not inside
        else:
            ok = key in labels
        if ok == bool(negate):
            return False
    return True


@dataclass(frozen=True)
class Patch:
    """One document of one `patches:` (or legacy) entry of a kustomization."""

    kustomization: str  # repo-relative kustomization file
    entry_line: int  # line of the entry in the kustomization
    file: str  # file holding the patch text (the kustomization itself for an inline patch)
    body: yaml.Node | None  # the patch document (a mapping, or a list of JSON patch operations)
    offset: int  # add to body lines: the inline patch's position in the kustomization
    selector: Selector | None  # None: a strategic-merge patch that names its own target
    explicit_target: bool  # `target:` given: kustomize skips it silently when nothing matches

    def applies_to(self, body: dict[str, Any]) -> bool:
        return self.selector is None or self.selector.matches(body)

    def sets(self, path: Path_) -> int | None:
        """Line in `file` where this patch sets (or removes) `path`, or None when it does not touch it."""
        if isinstance(self.body, yaml.SequenceNode):  # JSON 6902 operations; the last one wins
            for op in reversed(self.body.value):
                line = self._operation_sets(op, path)
                if line is not None:
                    return line
            return None
        if path[:2] == ("metadata", "name") or path[:1] in (("apiVersion",), ("kind",)):
            return None  # a strategic-merge patch names its target there; it sets none of them
        node: yaml.Node | None = self.body
        for depth, key in enumerate(path):
            child, found = _node_at(node, (key,))
            if not found:
                return None
            node = child
            if not isinstance(node, yaml.MappingNode) and depth < len(path) - 1:
                # the patch replaces (or, with null, deletes) this whole subtree
                return _key_line(self.body, path[: depth + 1], self.offset)
        return _key_line(self.body, path, self.offset)

    def _operation_sets(self, op: yaml.Node, path: Path_) -> int | None:
        if not isinstance(op, yaml.MappingNode):
            return None
        fields = {k.value: v for k, v in op.value}
        target = fields.get("path")
        if not isinstance(target, yaml.ScalarNode) or fields.get("op") is None:
            return None
        op_path = tuple(
            int(p) if p.isdigit() else p.replace("~1", "/").replace("~0", "~")
            for p in str(target.value).split("/")[1:]
        )
        if path[: len(op_path)] != op_path or fields["op"].value not in (
            "add",
            "replace",
            "remove",
            "copy",
            "move",
        ):
            return None
        value = fields.get("value")
        if value is not None and len(path) > len(op_path):
            return _key_line(value, path[len(op_path) :], self.offset)
        return (value or target).start_mark.line + 1 + self.offset


@dataclass(frozen=True)
class Reference:
    """A reference validate refuses: in `file` at `line`, `ref`; `outside` when it leaves the repository
    (remote, or no such path in it), else it leaves the app (`scope` is what it may read)."""

    file: str
    line: int
    ref: str
    outside: bool
    scope: str = ""


@dataclass(frozen=True)
class AppPath:
    """What is wrong with a folder Argo CD would (or could be expected to) make an Application of."""

    file: str  # the folder, or the file at fault
    rule: str  # MLP-OVERLAY-TOOL, MLP-ARGOCD-SOURCE, MLP-APP-LAYOUT or MLP-PROMOTE-JOURNAL
    problem: str


@dataclass
class Tree:
    """What one kustomization and everything it includes hold, in the order kustomize applies it."""

    patches: list[Patch] = field(default_factory=list)
    remote: list[Reference] = field(default_factory=list)
    # The folder's own problems as an Argo CD app path (never inherited from what it includes).
    app_path: list[AppPath] = field(default_factory=list)


class Trees:
    """Kustomization trees of a run; every file is read and parsed once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = root.resolve()
        self._files: dict[Path, list[yaml.Node]] = {}
        self._trees: dict[Path, Tree] = {}
        self._sources: dict[tuple[Path, bool], list[str]] = {}

    def nodes(self, path: Path) -> list[yaml.Node]:
        """The YAML documents of a file as nodes ([] when it cannot be read or parsed)."""
        if path not in self._files:
            try:
                self._files[path] = [n for n in yaml.compose_all(path.read_text(), Loader=FAST_LOADER) if n]
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                self._files[path] = []
        return self._files[path]

    def tree(self, folder: Path) -> Tree:
        folder = folder.resolve()
        if folder not in self._trees:
            self._trees[folder] = Tree()  # a cycle ends here (kustomize refuses it anyway)
            tree = self._walk(folder)
            tree.app_path = self._app_path(folder)
            self._trees[folder] = tree
        return self._trees[folder]

    def _app_path(self, folder: Path) -> list[AppPath]:
        """An overlay folder's problems as the app path Argo CD deploys, an app folder's layout, and an
        overlays/ folder of the shared components (or one of its overlays); nothing for any other folder."""
        name = rel(folder, self._real_root)
        components_overlays = f"{COMPONENTS}/overlays"
        if within(name, components_overlays):  # the folder or one of its overlays (targets.stray_dirs)
            return [AppPath(components_overlays, "MLP-APP-LAYOUT", COMPONENTS_AS_APP)]
        overlay, app = OVERLAY.match(name), APP_FOLDER.match(name)
        if overlay is None and (app is None or name == COMPONENTS):
            return []
        match = overlay or app
        assert match is not None
        apps = self._real_root / "apps"
        # Anywhere under the app, the shared components or apps/ itself: Argo CD reads them from the app
        # path only, but a file of that name elsewhere is one `mv` away from it.
        sources = self._argocd_sources(apps / match["app"]) + self._argocd_sources(
            self._real_root / COMPONENTS
        )
        found = [
            AppPath(source, "MLP-ARGOCD-SOURCE", "Argo CD merges it into the Application's source")
            for source in dict.fromkeys(sources + self._argocd_sources(apps, deep=False))
        ]
        journal = apps / match["app"] / "overlays" / PROMOTE_JOURNAL
        if journal.exists() or journal.is_symlink():
            found.append(AppPath(rel(journal, self._real_root), "MLP-PROMOTE-JOURNAL", "a promote journal"))
        if app is not None:
            if not (folder / "overlays").is_dir():
                found.append(AppPath(name, "MLP-APP-LAYOUT", "no overlays/ folder"))
            return found
        assert overlay is not None
        if overlay["env"] not in ENVIRONMENTS:
            found.append(AppPath(name, "MLP-APP-LAYOUT", f"{overlay['env']!r} is no environment"))
        files = _files(folder)
        if not any(f in KUSTOMIZATION_FILES for f in files):
            found.append(AppPath(name, "MLP-OVERLAY-TOOL", "no kustomization"))
        found += [
            AppPath(f"{name}/{f}", "MLP-OVERLAY-TOOL", "a Helm chart file")
            for f in files
            if f.endswith(HELM_CHART_SUFFIX)
        ]
        return found

    def _argocd_sources(self, folder: Path, deep: bool = True) -> list[str]:
        """`.argocd-source*` files under `folder` (or in it only), repo-relative; each folder listed once."""
        if (folder, deep) not in self._sources:
            walk = os.walk(folder) if deep else [(str(folder), [], _files(folder))]
            self._sources[(folder, deep)] = sorted(
                rel(Path(top) / f, self._real_root)
                for top, _, files in walk
                for f in files
                if f.startswith(ARGOCD_SOURCE)
            )
        return self._sources[(folder, deep)]

    def _kustomization(self, folder: Path) -> tuple[Path, yaml.Node | None, dict[str, Any]] | None:
        kfile = next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)
        if kfile is None:
            return None
        nodes = self.nodes(kfile)
        node = nodes[0] if nodes else None
        spec = construct(node)
        return kfile, node, spec if isinstance(spec, dict) else {}

    def _walk(self, folder: Path) -> Tree:
        found = self._kustomization(folder)
        tree = Tree()
        if found is None:
            return tree
        kfile, node, spec = found
        name = rel(kfile, self.root)
        # The kustomization file itself first: a symlink is read where it points.
        for keys, ref in [((), kfile.name), *_references(spec)]:
            line = _key_line(node, keys, 0) or 1
            problem = self._reference_problem(name, line, folder, ref)
            if problem is not None:
                tree.remote.append(problem)
                continue
            path = (folder / ref).resolve()
            if keys and keys[0] in REFERENCE_KEYS + OTHER_REFERENCE_KEYS and path.is_dir():
                sub = self.tree(path)
                # A transformer's or generator's kustomization makes its configuration: its patches
                # apply there, not to this tree's objects; what it reads is held to the same rules.
                tree.patches += sub.patches if keys[0] in REFERENCE_KEYS else []
                tree.remote += sub.remote
        for key in ("helmCharts", "helmChartInflationGenerator"):
            for i, chart in enumerate(spec.get(key) or [] if isinstance(spec.get(key), list) else []):
                repo = chart.get("repo") if isinstance(chart, dict) else None
                if isinstance(repo, str) and repo:
                    tree.remote.append(Reference(name, _key_line(node, (key, i, "repo"), 0) or 1, repo, True))
        tree.patches += self._patches(folder, name, node, spec)
        return tree

    def _reference_problem(self, kfile: str, line: int, folder: Path, ref: str) -> Reference | None:
        """Why validate refuses a reference of the kustomization `kfile`, or None: kustomize would fetch
        it, it names no file or folder of the repository, or (from an app's kustomization) it reads
        outside the app and the shared components."""
        if is_remote(ref):
            return Reference(kfile, line, ref, True)
        path = (folder / ref).resolve()
        # (A kustomization outside the repository, a PATH argument, is only held to local content.)
        leaves = folder.is_relative_to(self._real_root) and not path.is_relative_to(self._real_root)
        if leaves or not path.exists():
            return Reference(kfile, line, ref, True)
        # The folder's app, not the file's: a symlinked kustomization is judged where it is used.
        where = rel(folder, self._real_root)
        app = re.match(r"apps/[^/]+", where)
        if app is None:
            return None
        # What `--changed` re-validates a kustomization for (targets.changed_targets): a retraining
        # pipeline for its own folder only, the components for theirs, an app for its own (but its
        # pipeline's: a change there re-validates the pipeline alone) and theirs.
        pipeline = f"{app[0]}/training"
        if app[0] == COMPONENTS:
            scopes, barred = [COMPONENTS], None
        elif within(where, pipeline):
            scopes, barred = [pipeline], None
        else:
            scopes, barred = [app[0], COMPONENTS], pipeline
        # Anything else an app reads must be its own: a change to it is a change to the app (--changed).
        read = rel(path, self._real_root)
        if any(within(read, s) for s in scopes) and not (barred and within(read, barred)):
            return None
        allowed = [f"{s}/" for s in scopes]
        if barred:
            allowed[0] += f" (not its retraining pipeline, {barred}/)"
        return Reference(kfile, line, ref, False, " or ".join(allowed))

    def _patches(self, folder: Path, name: str, node: yaml.Node | None, spec: dict[str, Any]) -> list[Patch]:
        patches: list[Patch] = []
        for key in ("patchesStrategicMerge", "patchesJson6902", "patches"):
            entries = spec.get(key)
            for i, entry in enumerate(entries if isinstance(entries, list) else []):
                line = _key_line(node, (key, i), 0) or 1
                target = entry.get("target") if isinstance(entry, dict) else None
                selector = _selector(target) if isinstance(target, dict) else None
                for file, body, offset in self._patch_bodies(folder, name, node, key, i, entry):
                    own = (
                        _own_selector(body)
                        if selector is None and isinstance(body, yaml.MappingNode)
                        else selector
                    )
                    patches.append(Patch(name, line, file, body, offset, own, selector is not None))
        return patches

    def _patch_bodies(
        self, folder: Path, kfile: str, node: yaml.Node | None, key: str, i: int, entry: Any
    ) -> Iterator[tuple[str, yaml.Node | None, int]]:
        """(file, patch document, line offset) of one entry: a patch file's documents, or inline text."""
        text = entry if isinstance(entry, str) else entry.get("patch") if isinstance(entry, dict) else None
        path = entry.get("path") if isinstance(entry, dict) else None
        if isinstance(entry, str) and "\n" not in entry and key == "patchesStrategicMerge":
            path, text = entry, None
        if isinstance(path, str):
            file = (folder / path).resolve()
            bodies: list[yaml.Node | None] = [*self.nodes(file)] or [None]
            for body in bodies:
                yield rel(file, self.root), body, 0
        elif isinstance(text, str):
            value, _ = _node_at(node, (key, i, "patch") if isinstance(entry, dict) else (key, i))
            # A block scalar's text starts on the line after its indicator.
            offset = (
                value.start_mark.line + (1 if getattr(value, "style", None) in ("|", ">") else 0)
                if value
                else 0
            )
            try:
                inline: list[yaml.Node | None] = [n for n in yaml.compose_all(text, Loader=FAST_LOADER) if n]
            except yaml.YAMLError:
                inline = []
            for body in inline or [None]:
                yield kfile, body, offset

    def locate(self, target: Path, doc: RenderedDoc, path: str) -> tuple[str, int | None]:
        """File and line that set `path` of a rendered object: the last patch of the target's tree
        that touches it, else its deepest key in the file that declares the object."""
        keys = split_path(path)
        tree = self.tree(target) if target.is_dir() else Tree()
        for patch in reversed(tree.patches):
            if patch.applies_to(doc.doc):
                line = patch.sets(keys)
                if line is not None:
                    return patch.file, line
        return doc.source_file, self.declared_line(doc, keys)

    def declared_line(self, doc: RenderedDoc, keys: Path_) -> int | None:
        meta = doc.doc.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        kind, name = doc.doc.get("kind"), meta.get("name")
        nodes = [n for n in self.nodes(self.root / doc.source_file) if isinstance(n, yaml.MappingNode)]
        same_kind = [n for n in nodes if _scalar(n, ("kind",)) == kind]
        match = [n for n in same_kind if _scalar(n, ("metadata", "name")) == name]
        if not match and len(same_kind) == 1:  # renamed by a replacement (e.g. a placeholder name)
            match = same_kind
        if len(match) != 1:
            return None
        return _key_line(match[0], keys, 0) if keys else match[0].start_mark.line + 1


def _references(spec: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    """(key path, reference) of every file or folder a kustomization names (kustomize's Kustomization
    fields, api/types/kustomization.go): what it includes, its patches, replacements and generator
    inputs. Inline text (a patch, a transformer written out) names nothing."""

    def strings(key: str, items: Any) -> Iterator[tuple[Path_, str]]:
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, str) and "\n" not in item:
                yield (key, i), item

    for key in REFERENCE_KEYS + OTHER_REFERENCE_KEYS + ("patchesStrategicMerge",):
        yield from strings(key, spec.get(key))
    for key in ("patches", "patchesJson6902", "replacements"):
        for i, entry in enumerate(spec.get(key) or [] if isinstance(spec.get(key), list) else []):
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                yield (key, i, "path"), entry["path"]
    for key in GENERATOR_KEYS:
        for i, generator in enumerate(spec.get(key) or [] if isinstance(spec.get(key), list) else []):
            if not isinstance(generator, dict):
                continue
            # `files` entries may be `key=path` (api/types/kvpairsources.go); `env` is the older `envs`.
            for (_, j), item in strings("files", generator.get("files")):
                yield (key, i, "files", j), item.split("=", 1)[-1]
            for (_, j), item in strings("envs", generator.get("envs")):
                yield (key, i, "envs", j), item
            if isinstance(generator.get("env"), str):
                yield (key, i, "env"), generator["env"]
    openapi = spec.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield ("openapi", "path"), openapi["path"]


def _files(folder: Path) -> list[str]:
    """Names of what is directly in `folder` but folders, as Argo CD's discovery sees them (a symlink is
    a file there: `filepath.Walk` does not follow it); [] when it is no folder."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if not e.is_dir(follow_symlinks=False))


def key_line(node: yaml.Node | None, path: Path_) -> int | None:
    """Line of `path` in a parsed document (its deepest existing key when the path is not all there)."""
    return _key_line(node, path, 0)


def _scalar(node: yaml.Node, path: Path_) -> Any:
    found, depth = _node_at(node, path)
    return found.value if depth == len(path) and isinstance(found, yaml.ScalarNode) else None


def construct(node: yaml.Node | None) -> Any:
    """The Python value of a parsed document (None when it cannot be built)."""
    if node is None:
        return None
    loader = FAST_LOADER("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()


def _selector(target: dict[str, Any]) -> Selector:
    return Selector(
        group=str(target.get("group") or ""),
        version=str(target.get("version") or ""),
        kind=str(target.get("kind") or ""),
        name=str(target.get("name") or ""),
        namespace=str(target.get("namespace") or ""),
        label_selector=str(target.get("labelSelector") or ""),
        annotation_selector=str(target.get("annotationSelector") or ""),
    )


def _own_selector(body: yaml.MappingNode) -> Selector:
    """A strategic-merge patch without `target:` applies to the object of its own kind and name."""
    kind, name = _scalar(body, ("kind",)), _scalar(body, ("metadata", "name"))
    return Selector(kind=re.escape(str(kind or "")), name=re.escape(str(name or "")))
