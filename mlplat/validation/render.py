"""Rendering: kustomize targets through `kubectl kustomize`, plain manifests through PyYAML.

One kubectl process per chunk of same-environment overlays: a throwaway kustomization lists
each target through a wrapper that stamps every object with its target and origin file, so one
process does the work of many and still says where each object came from. A chunk that fails
(a broken overlay, two apps declaring the same object) is rendered again one target at a time,
so every error is pinned to its target. Nothing is cached across runs.

Which file an object came from: kustomize can say (`buildMetadata: [originAnnotations]`), but that
doubles its CPU time. So a chunk is first built without it, and each object is matched by kind and
name to the one resource file of its target's kustomization tree that declares it (`_declared`);
a chunk where any object does not match exactly one file (renamed, generated, remote, anything the
walk does not model) is built again with kustomize's origin annotations. Same answer, either way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlplat import safe_yaml, scratch
from mlplat.findings import Finding, RenderedDoc
from mlplat.validation import UsageError, rel
from mlplat.validation.targets import KUSTOMIZATION_FILES, MANIFEST_SUFFIXES, Target

TARGET_KEY = "mlplat.validate/target"
ORIGIN_KEY = "config.kubernetes.io/origin"
# Overlays per kubectl process. A process costs ~130 ms before its first overlay (start-up and the
# built-in OpenAPI schema), while appending a resource checks every resource already in the chunk for
# a clashing ID (kustomize api/resmap reswrangler.go Append -> GetMatchingResourcesByCurrentId), so a
# chunk's CPU grows with the square of its size: 60 overlays (~1,100 objects) spent a third of their
# time there. 20 balances the two (measured with kubectl's --profile=cpu, kustomize v5.5.0).
CHUNK = 20
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
WORKERS = max(2, min(4, os.cpu_count() or 2))
# Go's collector at its default (GOGC=100) costs kustomize a fifth of its CPU on a chunk; 400 trades
# that for ~200 MB per process instead of ~100 MB (measured on 60 overlays; https://go.dev/doc/gc-guide
# "GOGC"). A GOGC the caller set wins.
KUBECTL_ENV = {"GOGC": "400", **os.environ}


@dataclass
class Rendered:
    """Objects and render findings of one run, plus the object start line in each source file."""

    docs: list[RenderedDoc] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def load_yaml(text: str, name: str) -> Iterator[tuple[Any, int]]:
    """(document, start line) pairs; raises YamlError naming file and line."""
    loader = FAST_LOADER(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            yield loader.construct_document(node), node.start_mark.line + 1
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
        if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
            problem += f" ({context} at line {context_mark.line + 1})"
        raise YamlError(name, mark.line + 1 if mark else None, str(problem)) from None
    finally:
        loader.dispose()


class YamlError(Exception):
    def __init__(self, file: str, line: int | None, problem: str) -> None:
        super().__init__(f"{file}:{line}: {problem}")
        self.file, self.line, self.problem = file, line, problem

    def finding(self, env: str | None) -> Finding:
        return Finding(
            self.file,
            "-",
            "MLP-YAML",
            f"not valid YAML: {self.problem}",
            "fix the YAML syntax",
            env,
            self.line,
        )


class SourceIndex:
    """Start line of each object in its source file, looked up by kind and name (best effort)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, dict[tuple[str, str], int]] = {}

    def line(self, doc: RenderedDoc) -> int | None:
        if doc.source_file not in self._files:
            self._files[doc.source_file] = self._index(doc.source_file)
        meta = doc.doc.get("metadata") or {}
        return self._files[doc.source_file].get((str(doc.doc.get("kind")), str(meta.get("name"))))

    def _index(self, name: str) -> dict[tuple[str, str], int]:
        try:
            docs = list(load_yaml((self.root / name).read_text(), name))
        except (OSError, YamlError, UnicodeDecodeError):
            return {}
        return {
            (str(d.get("kind")), str((d.get("metadata") or {}).get("name"))): line
            for d, line in docs
            if isinstance(d, dict)
        }


def render(targets: Sequence[Target], root: Path) -> Rendered:
    """Render every target; kustomize chunks run concurrently (each is a subprocess)."""
    if any(t.kustomize for t in targets) and shutil.which("kubectl") is None:
        raise UsageError("kubectl is not on the PATH; it renders kustomizations (kubectl kustomize)")
    out = Rendered()
    for target in targets:
        if not target.kustomize:
            _read_manifests(target, root, out)
    chunks = _chunks([t for t in targets if t.kustomize])
    files = _Files()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for result in pool.map(lambda chunk: _render_chunk(chunk, root, files), chunks):
            out.docs += result.docs
            out.findings += result.findings
    return out


def _chunks(targets: list[Target]) -> list[list[Target]]:
    """Same-env groups (dev and prod of one app declare the same objects), split for the pool."""
    by_env: dict[str | None, list[Target]] = {}
    for target in targets:
        by_env.setdefault(target.env, []).append(target)
    chunks: list[list[Target]] = []
    for group in by_env.values():
        size = max(1, min(CHUNK, -(-len(group) // WORKERS)))  # at least one chunk per worker
        chunks += [group[i : i + size] for i in range(0, len(group), size)]
    return chunks


def _render_chunk(chunk: list[Target], root: Path, files: _Files) -> Rendered:
    ok, docs, error = _kustomize(chunk, root, files)
    if ok:
        return Rendered(docs=docs)
    if len(chunk) > 1:
        out = Rendered()
        for target in chunk:
            part = _render_chunk([target], root, files)
            out.docs += part.docs
            out.findings += part.findings
        return out
    return Rendered(findings=[_kustomize_finding(chunk[0], root, error)])


# Kustomization keys that never rename nor create an object: any other key (namePrefix, generators,
# helm, transformers, replacements, ...) sends the chunk to kustomize's own origins.
PLAIN_KEYS = frozenset(
    {
        "apiVersion", "kind", "metadata", "resources", "bases", "components", "namespace", "commonLabels",
        "labels", "commonAnnotations", "images", "replicas", "patches", "patchesStrategicMerge",
        "patchesJson6902", "sortOptions", "buildMetadata", "replacements",
        # Generators create ConfigMaps and Secrets named `<name>-<hash>` (modelled by `_generated`);
        # `configurations` only says which fields reference names, and renames nothing by itself.
        "configMapGenerator", "secretGenerator", "generatorOptions", "configurations",
    }
)  # fmt: skip
GENERATORS = {
    "configMapGenerator": "ConfigMap",
    "secretGenerator": "Secret",  # pragma: allowlist secret (a kind, no value)
}
# kustomize appends `-` and ten characters of a content hash (api/hasher/hasher.go Encode, kustomize v5.5.0).
HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}")


RENAME = re.compile(r"/metadata/name\b")  # a JSON patch path (or `from`) on an object's name
SAFE_FIELDS = ("metadata.namespace", "metadata.labels", "metadata.annotations", "spec.", "data.")


@dataclass
class Declared:
    """What a kustomization tree declares: kind -> [(name, file)], and the kinds whose names a
    replacement rewrites (an object of such a kind is matched by kind alone, when it is alone)."""

    by_kind: dict[str, list[tuple[str, Path]]] = field(default_factory=dict)
    renamed: set[str] = field(default_factory=set)
    generated: list[tuple[str, str, bool, Path]] = field(
        default_factory=list
    )  # kind, name, hashed, kustomization

    def source(self, kind: str, name: str) -> Path | None:
        makers = {kfile for gen_kind, gen_name, hashed, kfile in self.generated
                  if gen_kind == kind and _generated_name(name, gen_name, hashed)}  # fmt: skip
        if makers:  # a generated object: kustomize's origin names the kustomization that configured it
            return next(iter(makers)) if len(makers) == 1 and not self._declares(kind, name) else None
        entries = self.by_kind.get(kind, [])
        if kind in self.renamed:
            files = {path for _, path in entries} if len(entries) == 1 else set()
        else:
            files = {path for n, path in entries if n == name}
            files = files if sum(1 for n, _ in entries if n == name) == 1 else set()
        return next(iter(files)) if len(files) == 1 else None

    def _declares(self, kind: str, name: str) -> bool:
        return any(n == name for n, _ in self.by_kind.get(kind, []))


def _generated_name(name: str, generator: str, hashed: bool) -> bool:
    """Whether kustomize names an object `name` when its generator says `generator`."""
    if not hashed:
        return name == generator
    return name.startswith(generator) and HASH_SUFFIX.fullmatch(name, len(generator)) is not None


def _generated(spec: dict[str, Any], kfile: Path) -> list[tuple[str, str, bool, Path]] | None:
    """The objects a kustomization's generators make; None when one is not plainly named."""
    default_hashed = not (spec.get("generatorOptions") or {}).get("disableNameSuffixHash", False)
    made = []
    for key, kind in GENERATORS.items():
        for generator in spec.get(key) or []:
            if not isinstance(generator, dict) or not isinstance(generator.get("name"), str):
                return None
            if generator.get("behavior", "create") != "create":  # merge/replace: kustomize's origins decide
                return None
            options = generator.get("options") or {}
            hashed = not options.get("disableNameSuffixHash", not default_hashed)
            made.append((kind, generator["name"], hashed, kfile))
    return made


def _renamed_kinds(replacement: Any) -> set[str] | None:
    """Kinds whose metadata.name an (inline) replacement may write; None when that is unclear."""
    if not isinstance(replacement, dict) or "path" in replacement:
        return None
    kinds: set[str] = set()
    for target in replacement.get("targets") or []:
        paths = target.get("fieldPaths") if isinstance(target, dict) else None
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            return None
        if all(p.startswith(SAFE_FIELDS) for p in paths):
            continue
        if not all(p.startswith(SAFE_FIELDS) or p == "metadata.name" for p in paths):
            return None
        kind = (target.get("select") or {}).get("kind") if isinstance(target.get("select"), dict) else None
        if not isinstance(kind, str):
            return None
        kinds.add(kind)
    return kinds


class _Files:
    """Each file read and parsed once per run: every overlay walks the same components and bases.
    Shared by the render threads; a race only parses a file twice."""

    def __init__(self) -> None:
        self._texts: dict[Path, str | None] = {}
        self._docs: dict[Path, list[Any] | None] = {}

    def text(self, path: Path) -> str | None:
        if path not in self._texts:
            try:
                self._texts[path] = path.read_text()
            except (OSError, UnicodeDecodeError):
                self._texts[path] = None
        return self._texts[path]

    def docs(self, path: Path) -> list[Any] | None:
        if path not in self._docs:
            text = self.text(path)
            try:
                self._docs[path] = None if text is None else list(yaml.load_all(text, Loader=FAST_LOADER))
            except yaml.YAMLError:
                self._docs[path] = None
        return self._docs[path]


def _declared(folder: Path, files: _Files, found: Declared | None = None) -> Declared | None:
    """What a kustomization and everything it includes declare, and where; None when the tree does
    anything that could make that answer wrong (then kustomize's origin annotations decide)."""
    found = Declared() if found is None else found
    kfile = next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)
    if kfile is None:
        return None
    text, parsed = files.text(kfile), files.docs(kfile)
    if text is None or parsed is None:
        return None
    spec = parsed[0] if len(parsed) == 1 else None
    if not isinstance(spec, dict) or not set(spec) <= PLAIN_KEYS or RENAME.search(text):
        return None  # e.g. a JSON patch renaming an object
    generated = _generated(spec, kfile.resolve())
    if generated is None:
        return None
    found.generated += generated
    for replacement in spec.get("replacements") or []:
        kinds = _renamed_kinds(replacement)
        if kinds is None:
            return None
        found.renamed |= kinds
    for key in ("patches", "patchesStrategicMerge", "patchesJson6902"):
        for patch in spec.get(key) or []:
            path = patch.get("path") if isinstance(patch, dict) else patch
            if isinstance(path, str) and "\n" not in path:
                patch_text = files.text(folder / path)
                if patch_text is None or RENAME.search(patch_text):
                    return None
    for key in ("resources", "bases", "components"):
        refs = spec.get(key) or []
        if not isinstance(refs, list):
            return None
        for ref in refs:
            if not isinstance(ref, str) or "://" in ref or ref.startswith(("git@", "github.com/")):
                return None
            path = (folder / ref).resolve()
            if path.is_dir():
                if _declared(path, files, found) is None:
                    return None
                continue
            docs = files.docs(path)
            if docs is None:
                return None
            for doc in docs:
                meta = doc.get("metadata") if isinstance(doc, dict) else None
                if isinstance(meta, dict):
                    found.by_kind.setdefault(str(doc.get("kind")), []).append((str(meta.get("name")), path))
    return found


def _kustomize(chunk: list[Target], root: Path, files: _Files) -> tuple[bool, list[RenderedDoc], str]:
    declared = {t.rel: _declared(t.path(root), files) for t in chunk}
    if all(d is not None for d in declared.values()):
        ok, docs, error = _build(chunk, root, declared)  # type: ignore[arg-type]
        if not ok or docs:
            return ok, docs, error
    return _build(chunk, root, None)


def _build(
    chunk: list[Target], root: Path, declared: dict[str, Declared] | None
) -> tuple[bool, list[RenderedDoc], str]:
    """Build a chunk: with origins from `declared`, or from kustomize when None. With `declared`,
    an object no single file declares gives (True, [], "") and the caller builds again."""
    with scratch.folder("mlplat-validate-") as tmp:
        top = Path(tmp)
        wrappers = []
        for i, target in enumerate(chunk):
            wrapper = top / f"t{i}"
            wrapper.mkdir()
            source = os.path.relpath(target.path(root), wrapper)
            (wrapper / "kustomization.yaml").write_text(
                yaml.safe_dump({"resources": [source], "transformers": ["mark.yaml"]})
            )
            (wrapper / "mark.yaml").write_text(yaml.safe_dump(_marker(target.rel)))
            wrappers.append(wrapper.name)
        top_spec: dict[str, Any] = {"resources": wrappers}
        if declared is None:
            top_spec["buildMetadata"] = ["originAnnotations"]
        (top / "kustomization.yaml").write_text(yaml.safe_dump(top_spec))
        result = subprocess.run(
            ["kubectl", "kustomize", str(top)], capture_output=True, text=True, check=False, env=KUBECTL_ENV
        )
        if result.returncode != 0:
            return False, [], _clean_error(result.stderr, top, root)
        try:
            bodies = [d for d in yaml.load_all(result.stdout, Loader=FAST_LOADER) if isinstance(d, dict)]
        except yaml.YAMLError as err:  # kustomize printed something PyYAML cannot read
            return False, [], f"unreadable kustomize output: {err}"
        by_rel = {t.rel: t for t in chunk}
        if declared is None:
            return True, [_rendered(body, by_rel, top, root) for body in bodies], ""
        docs = []
        for body in bodies:
            doc = _rendered(body, by_rel, top, root)
            meta = body.get("metadata") or {}
            declaring = declared[doc.target].source(str(body.get("kind")), str(meta.get("name")))
            if declaring is None:
                return True, [], ""
            docs.append(RenderedDoc(doc.env, doc.target, rel(declaring, root), doc.doc))
        # Each object of a target must be the only one with its kind and name (its kind, if renamed).
        seen: set[tuple[str, str, str]] = set()
        for doc in docs:
            kind = str(doc.doc.get("kind"))
            name = "" if kind in declared[doc.target].renamed else str(doc.doc["metadata"].get("name"))
            if (doc.target, kind, name) in seen:
                return True, [], ""
            seen.add((doc.target, kind, name))
        return True, docs, ""


def _marker(target: str) -> dict[str, Any]:
    """A transformer that annotates only metadata (commonAnnotations would also touch pod templates)."""
    return {
        "apiVersion": "builtin",
        "kind": "AnnotationsTransformer",
        "metadata": {"name": "mlplat-validate-target"},
        "annotations": {TARGET_KEY: target},
        "fieldSpecs": [{"path": "metadata/annotations", "create": True}],
    }


def _rendered(body: dict[str, Any], by_rel: dict[str, Target], top: Path, root: Path) -> RenderedDoc:
    annotations = body.get("metadata", {}).get("annotations", {})
    target = by_rel[annotations.pop(TARGET_KEY)]
    origin = yaml.load(annotations.pop(ORIGIN_KEY, "") or "", Loader=FAST_LOADER) or {}
    if not annotations:
        body["metadata"].pop("annotations")
    source = target.rel
    if isinstance(origin, dict) and origin.get("path"):
        source = rel((top / origin["path"]).resolve(), root)
    elif isinstance(origin, dict) and origin.get("configuredIn"):  # generated: where its generator is
        source = rel((top / origin["configuredIn"]).resolve(), root)
    return RenderedDoc(target.env, target.rel, source, body)


def _clean_error(stderr: str, top: Path, root: Path) -> str:
    """kubectl's error without the klog prefix and with the temporary wrapper paths made readable."""
    stderr = stderr.strip()
    match = re.search(r'err="(.*)"$', stderr, re.S) or re.search(r"err=<\n(.*)\n\s*>$", stderr, re.S)
    text = " ".join((match[1] if match else stderr).split())
    text = text.replace('\\"', '"').replace("\\n", " ")
    text = re.sub(rf"{re.escape(str(top))}/t\d+/(\.\./)*", "", text)
    text = text.replace(str(root.resolve()) + "/", "").replace(str(top), "(validate)")
    # Drop the accumulation chain through the wrappers and the overlay; keep kustomize's innermost reason.
    chain = r"accumulating resources: accumulation err='accumulating resources from '[^']*': '[^']*' must resolve "
    text = re.sub(chain + r"to a file': recursed accumulation of path '[^']*': ", "", text)
    return re.sub(r"': must build at directory: .*$", "", text)


def _kustomize_finding(target: Target, root: Path, error: str) -> Finding:
    """The YAML error behind a kustomize failure, with its line, else kustomize's own message."""
    for problem in yaml_problems(target.path(root), root):
        return problem.finding(target.env)
    kfile = next(
        (n for n in KUSTOMIZATION_FILES if (target.path(root) / n).is_file()), KUSTOMIZATION_FILES[0]
    )
    return Finding(
        f"{target.rel}/{kfile}", "-", "MLP-KUSTOMIZE", f"kustomize failed: {error}",
        "fix the kustomization or the file it names; reproduce with `kubectl kustomize " + target.rel + "`",
        target.env,
    )  # fmt: skip


def yaml_problems(folder: Path, root: Path, seen: set[Path] | None = None) -> Iterator[YamlError]:
    """YAML errors in a kustomization and every local file it references, recursively."""
    seen = set() if seen is None else seen
    if folder in seen:
        return
    seen.add(folder)
    kfile = next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)
    if kfile is None:
        return
    try:
        docs = [d for d, _ in load_yaml(kfile.read_text(), rel(kfile, root))]
    except YamlError as err:
        yield err
        return
    spec = docs[0] if docs and isinstance(docs[0], dict) else {}
    for ref in _references(spec):
        path = (folder / ref).resolve()
        if path.is_dir():
            yield from yaml_problems(path, root, seen)
        elif path.is_file():  # whatever its suffix, a file kustomize reads must be YAML
            try:
                list(load_yaml(path.read_text(), rel(path, root)))
            except YamlError as err:
                yield err


def _references(spec: dict[str, Any]) -> Iterator[str]:
    for key in ("resources", "components", "bases", "crds", "transformers", "generators", "configurations"):
        yield from (r for r in spec.get(key) or [] if isinstance(r, str) and "://" not in r)
    yield from (p for p in spec.get("patchesStrategicMerge") or [] if isinstance(p, str) and "\n" not in p)
    for key in ("patches", "patchesJson6902", "replacements"):
        yield from (
            p["path"] for p in spec.get(key) or [] if isinstance(p, dict) and isinstance(p.get("path"), str)
        )


def _read_manifests(target: Target, root: Path, out: Rendered) -> None:
    path = target.path(root)
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES
    )  # fmt: skip
    for file in files:
        name = rel(file, root)
        try:
            docs = list(load_yaml(safe_yaml.read_text(file, name), name))
        except (YamlError, safe_yaml.UnsafeInput) as err:
            out.findings.append(err.finding(target.env))
            continue
        except OSError as err:
            out.findings.append(
                Finding(name, "-", "MLP-YAML", f"cannot read: {err}", "fix the file", target.env)
            )
            continue
        for body, line in docs:
            if body is None:
                continue
            if not isinstance(body, dict):
                out.findings.append(
                    Finding(
                        name,
                        "-",
                        "MLP-YAML",
                        "a manifest must be a mapping",
                        "fix the document",
                        target.env,
                        line,
                    )
                )
                continue
            out.docs.append(RenderedDoc(target.env, target.rel, name, body))
