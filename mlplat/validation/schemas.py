"""Schema checks: core kinds against Kubernetes' own schemas, custom resources against their CRDs.

Core kinds use the strict OpenAPI-derived JSON schemas bundled with kubernetes-validate for the
cluster's minor version. Custom resources use the CRD `openAPIV3Schema` from `--schemas DIR`; CRD
schemas rarely forbid extra keys (the API server silently prunes them), so a strict walk reports
every key the schema does not declare. Validators are built once per kind and reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from jsonschema.protocols import Validator
from referencing import Registry, Resource

from mlplat.findings import Finding, RenderedDoc

CRD_CACHE = Path(__file__).resolve().parent.parent.parent / "build" / "validate-cache" / "crds"
K8S_SCHEMA_ROOT = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
MakeFinding = Callable[..., Finding]  # a finding about one document: (rule, message, fix, path=())


@dataclass(frozen=True)
class CrdVersion:
    group: str
    kind: str
    version: str
    scope: str  # Namespaced | Cluster
    schema: dict[str, Any]
    source: str


def _strict_dir(k8s_version: str) -> Path:
    """The newest bundled schema set not newer than the cluster (kubernetes-validate's own rule)."""
    wanted = tuple(int(p) for p in k8s_version.split(".")[:2])
    found: list[tuple[tuple[int, int], Path]] = []
    for child in K8S_SCHEMA_ROOT.iterdir():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+-local-strict", child.name)
        if match and (int(match[1]), int(match[2])) <= wanted:
            found.append(((int(match[1]), int(match[2])), child))
    if not found:
        raise LookupError(f"kubernetes-validate bundles no schemas for Kubernetes {k8s_version}")
    return max(found)[1]


def _file_api(api_version: str) -> str:
    """`networking.k8s.io/v1` -> `networking-v1`, the way kubernetes-validate names its files."""
    return re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)


class SchemaSet:
    """Every schema one run needs: Kubernetes core (one version) and the CRDs of a folder."""

    def __init__(self, k8s_version: str, crd_dir: Path | None) -> None:
        self.k8s_version = k8s_version
        self.k8s_dir = _strict_dir(k8s_version)
        self._has_crds = crd_dir is not None
        self._crds: dict[tuple[str, str], dict[str, CrdVersion]] = {}  # (group, kind) -> version -> CRD
        self._crd_files: dict[tuple[str, str], list[Path]] = {}
        self._validators: dict[tuple[str, str], Validator | None] = {}
        # Clean verdicts per shape (see _verdict).
        self._verdicts: dict[
            tuple[tuple[str, str], str], tuple[list[jsonschema.ValidationError], list[str]]
        ] = {}
        if crd_dir is not None:
            self._index_crds(crd_dir)

    def _index_crds(self, crd_dir: Path) -> None:
        """Group and kind of every CRD file, cheaply; a file is parsed only when an object needs it."""
        for path in sorted(crd_dir.rglob("*.y*ml")):
            text = path.read_text(errors="replace")
            group, kind = CRD_GROUP.search(text), CRD_KIND.search(text)
            key = (group[1], kind[1]) if group and kind else ("?", str(path))  # unusual layout: parse it
            self._crd_files.setdefault(key, []).append(path)

    def crd_versions(self, group: str, kind: str) -> dict[str, CrdVersion]:
        if (group, kind) not in self._crds:
            self._crds[(group, kind)] = {}
            for path in self._crd_files.get((group, kind), []):
                self._parse_crd(path)
            for key in [k for k in self._crd_files if k[0] == "?"]:
                for path in self._crd_files.pop(key):
                    self._parse_crd(path)
        return self._crds[(group, kind)]

    def _parse_crd(self, path: Path) -> None:
        for doc in _crd_documents(path):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc.get("spec") or {}
            for version in spec.get("versions", []):
                if not version.get("served", True):
                    continue
                schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
                crd = CrdVersion(
                    spec["group"], spec["names"]["kind"], version["name"], spec["scope"], schema, str(path)
                )
                self._crds.setdefault((crd.group, crd.kind), {})[crd.version] = crd

    @cache  # noqa: B019 (one SchemaSet per run; the cache dies with it)
    def _definitions(self) -> Resource[Any]:
        return Resource.from_contents(json.loads((self.k8s_dir / "_definitions.json").read_text()))

    def _registry(self, schema: dict[str, Any]) -> Registry[Any]:
        return Resource.from_contents(schema) @ (self._definitions() @ Registry())

    def _core_validator(self, api_version: str, kind: str) -> Validator | None:
        path = self.k8s_dir / f"{kind.lower()}-{_file_api(api_version)}.json"
        if not path.is_file():
            return None
        schema = json.loads(path.read_text())
        return jsonschema.Draft202012Validator(schema, registry=self._registry(schema))

    @cache  # noqa: B019
    def _meta_validator(self) -> Validator:
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://kubernetes.io/api/mlplat-validate/objectmeta",
            "$ref": f"/api/_definitions.json#/$defs/{OBJECT_META}",
        }
        return jsonschema.Draft202012Validator(schema, registry=self._registry(schema))

    def _metadata_errors(self, metadata: Any) -> list[jsonschema.ValidationError]:
        validator = self._meta_validator()
        schema = self._definitions().contents["$defs"][OBJECT_META]
        return self._verdict(
            ("metadata", ""), validator, schema, metadata, lambda: (list(_errors(validator, metadata)), [])
        )[0]

    def core_versions(self, kind: str) -> list[str]:
        """apiVersions Kubernetes serves for a kind, for the MLP-API-VERSION hint."""
        prefix = f"{kind.lower()}-"
        names = [p.name[len(prefix) : -5] for p in self.k8s_dir.glob(f"{prefix}*.json")]
        return sorted(n.replace("-", "/", 1) if "-" in n else n for n in names)

    def crd_for(self, api_version: str, kind: str) -> CrdVersion | None:
        group, _, version = api_version.rpartition("/")
        return self.crd_versions(group, kind).get(version) if group else None

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        """Scope from the CRD, or from whether the core schema's metadata is namespaced by convention."""
        crd = self.crd_for(api_version, kind)
        if crd is not None:
            return crd.scope == "Namespaced"
        return kind not in CLUSTER_SCOPED

    def check(self, doc: RenderedDoc, line: int | None) -> list[Finding]:
        """All schema findings for one object."""
        body = doc.doc
        api_version, kind = body.get("apiVersion"), body.get("kind")
        finding = _finding_factory(doc, line)
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return [finding("MLP-SCHEMA", "object has no apiVersion or kind", "set apiVersion and kind")]
        key = (api_version, kind)
        if key not in self._validators:
            self._validators[key] = self._core_validator(api_version, kind)
        core = self._validators[key]
        if core is not None:
            return self._errors_apart_from_metadata(key, core, body, finding)
        crd = self.crd_for(api_version, kind)
        if crd is not None:
            return self._check_custom(body, crd, finding)
        return [self._no_schema(api_version, kind, finding)]

    def _errors_apart_from_metadata(
        self,
        key: tuple[str, str],
        validator: Validator,
        body: dict[str, Any],
        finding: MakeFinding,
        crd: CrdVersion | None = None,
    ) -> list[Finding]:
        """Schema findings of `body`, its metadata checked against ObjectMeta on its own; with `crd`,
        also the fields its structural schema does not declare.

        Both core schemas and CRDs give metadata as ObjectMeta (or a bare object), so the rest of
        the object can be judged without it; the rest repeats across apps and environments (the
        same NetworkPolicy in 600 namespaces), so its verdicts are computed once per distinct content.
        """
        rest = {k: ({} if k == "metadata" else v) for k, v in body.items()}

        def judge() -> tuple[list[jsonschema.ValidationError], list[str]]:
            unknown = [
                path for path in unknown_fields(crd.schema, rest) if path.split(".")[0] != "metadata"
            ] if crd is not None else []  # fmt: skip
            return list(_errors(validator, rest)), unknown

        errors, unknown = self._verdict(key, validator, validator.schema, rest, judge)
        findings = [_schema_finding(finding, err) for err in errors]
        if "metadata" in body:
            findings += [
                _schema_finding(finding, err, ("metadata",))
                for err in self._metadata_errors(body["metadata"])
            ]
        findings += [
            finding(
                "MLP-UNKNOWN-FIELD",
                f"unknown field {path} (not in the {crd.kind} CRD schema)",
                FIX_UNKNOWN,
                [int(k[1:-1]) if k.startswith("[") else k for k in re.findall(r"\[\d+\]|[^.\[\]]+", path)],
            )
            for path in unknown
            if crd is not None
        ]
        return findings

    def _verdict(
        self,
        key: tuple[str, str],
        validator: Validator,
        schema: Any,
        instance: Any,
        judge: Callable[[], tuple[list[jsonschema.ValidationError], list[str]]],
    ) -> tuple[list[jsonschema.ValidationError], list[str]]:
        """`judge()`, or the clean verdict of an earlier instance equal to this one apart from strings
        the schema accepts whatever they say (every app's objects differ in names, labels, paths).

        Only a clean verdict is shared: an error's message can quote the value it is about, so an
        instance with errors is always judged itself."""
        # repr, not JSON: it tells a date from the string that prints the same, and 1 from "1", and
        # needs no sortable keys (YAML allows `{9000: a, ssh: b}`).
        shape = repr(_Blanker(validator, self._definitions()).blank(schema, instance))
        verdict = self._verdicts.get((key, shape))
        if verdict is None or verdict != ([], []):
            verdict = judge()
            self._verdicts[(key, shape)] = verdict
        return verdict

    def _check_custom(self, body: dict[str, Any], crd: CrdVersion, finding: MakeFinding) -> list[Finding]:
        key = (f"{crd.group}/{crd.version}", f"crd:{crd.kind}")
        if key not in self._validators:
            self._validators[key] = jsonschema.Draft7Validator(crd.schema)
        validator = self._validators[key]
        assert validator is not None
        # metadata is checked against ObjectMeta; the CRD schema only says "object".
        return self._errors_apart_from_metadata(key, validator, body, finding, crd)

    def _no_schema(self, api_version: str, kind: str, finding: MakeFinding) -> Finding:
        group = api_version.rpartition("/")[0]
        served = sorted(f"{group}/{v}" for v in self.crd_versions(group, kind)) if group else []
        served = served or self.core_versions(kind)
        if served:
            return finding(
                "MLP-API-VERSION",
                f"{kind} is not served as {api_version} (Kubernetes {self.k8s_version} and the CRDs know "
                f"{', '.join(served)})",
                f"use apiVersion {served[-1]}",
            )
        if not self._has_crds:  # not checked, and said so: a custom resource never passes unchecked
            return finding(
                "MLP-SCHEMA",
                f"{api_version} {kind} was not schema-checked: it is no Kubernetes {self.k8s_version} kind, and "
                "no folder of CustomResourceDefinitions was given to check custom resources against",
                "run `make reference` (../shared/reference/crds, the default) or pass --schemas DIR",
            )
        return finding(
            "MLP-SCHEMA",
            f"no schema for {api_version} {kind}: neither a Kubernetes {self.k8s_version} kind nor a known CRD",
            "fix the kind, or pass --schemas DIR holding its CustomResourceDefinition",
        )


class _Blanker:
    """Replaces by "" every string of an instance whose schema node accepts any string: such a string
    cannot change the validator's verdict. Beneath a keyword whose verdict could depend on the
    strings below it (enum, const, uniqueItems, anyOf, patternProperties, ...), nothing is blanked.
    Core schemas reach their definitions through `$ref`s into `_definitions.json`."""

    CONTAINER_KEYWORDS = frozenset(
        {"type", "properties", "additionalProperties", "items", "required", "minProperties", "maxProperties",
         "minItems", "maxItems"}
    )  # fmt: skip

    def __init__(self, validator: Validator, definitions: Resource[Any]) -> None:
        self.keywords = frozenset(type(validator).VALIDATORS)
        self.defs: Mapping[str, Any] = definitions.contents["$defs"]

    def _resolve(self, node: Any) -> dict[str, Any] | None:
        while isinstance(node, dict) and "$ref" in node:
            if set(node) & self.keywords != {"$ref"}:
                return None  # $ref beside other checks: judged as written
            _, marker, name = str(node["$ref"]).partition("#/$defs/")
            node = self.defs.get(name) if marker else None
        return node if isinstance(node, dict) else None

    def blank(self, schema: Any, value: Any) -> Any:
        node = self._resolve(schema)
        if node is None:
            return value
        active = set(node) & self.keywords
        if isinstance(value, str):
            types = node.get("type", "string")
            accepts = "string" in (types if isinstance(types, list) else [types])
            return "" if active <= {"type"} and accepts else value
        if not active <= self.CONTAINER_KEYWORDS:
            return value
        if isinstance(value, dict):
            props, extra = node.get("properties") or {}, node.get("additionalProperties")
            return {
                k: self.blank(props[k], v)
                if k in props
                else self.blank(extra, v)
                if isinstance(extra, dict)
                else v
                for k, v in value.items()
            }
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            return [self.blank(node["items"], v) for v in value]
        return value


def _crd_documents(path: Path) -> list[Any]:
    """A CRD file's documents. Big CRDs take seconds to parse as YAML, so the parsed form is kept
    as JSON under build/, keyed by the file's SHA-256: a changed file is simply a new key."""
    data = path.read_bytes()
    cached = CRD_CACHE / f"{hashlib.sha256(data).hexdigest()}.json"
    try:
        return list(json.loads(cached.read_text()))
    except (OSError, ValueError):
        pass
    try:
        docs = list(yaml.load_all(data.decode(errors="replace"), Loader=FAST_LOADER))
    except yaml.YAMLError as err:
        raise LookupError(f"{path}: not a readable CRD file: {err}") from None
    try:
        CRD_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=CRD_CACHE, delete=False, suffix=".tmp") as tmp:
            json.dump(docs, tmp, default=str)
        os.replace(tmp.name, cached)  # atomic: concurrent runs never read half a file
    except OSError:
        pass  # a read-only checkout just parses every time
    return docs


FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CRD_GROUP = re.compile(r"^  group: ['\"]?([\w.-]+)", re.M)
CRD_KIND = re.compile(r"^  names:\n(?:    .*\n)*?    kind: ['\"]?(\w+)", re.M)
FIX_UNKNOWN = "remove the field or fix its spelling; the API server would drop or reject it"

# Core kinds without a namespace (the schemas do not say; the API discovery document would).
CLUSTER_SCOPED = frozenset(
    {
        "Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
        "CustomResourceDefinition", "PriorityClass", "RuntimeClass", "IngressClass", "CSIDriver",
        "CSINode", "VolumeAttachment", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "APIService",
        "CertificateSigningRequest", "FlowSchema", "PriorityLevelConfiguration",
    }
)  # fmt: skip


def _finding_factory(doc: RenderedDoc, line: int | None) -> MakeFinding:
    def make(rule: str, message: str, fix: str, path: Sequence[Any] = ()) -> Finding:
        key = "/".join(f"[{p}]" if isinstance(p, int) else str(p).replace("/", "~1") for p in path)
        return Finding(doc.source_file, doc.ref, rule, message, fix, env=doc.env, line=line, path=key or None)

    return make


def _errors(validator: Validator, instance: Any) -> Iterator[jsonschema.ValidationError]:
    return iter(sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))))


def _schema_finding(
    finding: MakeFinding, err: jsonschema.ValidationError, prefix: Sequence[str] = ()
) -> Finding:
    """A finding for one schema error; `prefix` is where the validated part sits in the object."""
    at = [*prefix, *err.absolute_path]
    path = ".".join(str(p) for p in at) or "(root)"
    if err.validator == "additionalProperties":
        schema = err.schema if isinstance(err.schema, Mapping) else {}
        extra = sorted(
            set(err.instance if isinstance(err.instance, dict) else {}) - set(schema.get("properties", {}))
        )
        where = f"{path}." if at else ""
        keys = [*at, extra[0]] if len(extra) == 1 else at
        return finding("MLP-UNKNOWN-FIELD", f"unknown field {where}{', '.join(extra)}", FIX_UNKNOWN, keys)
    return finding("MLP-SCHEMA", f"{path}: {err.message}", _fix(err, at), at)


def _fix(err: jsonschema.ValidationError, keys: list[Any]) -> str:
    """How to fix a value; a bare number where Kubernetes wants a quantity string gets its quoted form."""
    value = err.instance
    if isinstance(value, float) and keys and "resources" in map(str, keys):
        quoted = f"{round(value * 1000)}m" if keys[-1] == "cpu" else f"{value:g}"
        return (
            f'quote it, e.g. `{keys[-1]}: "{quoted}"` (YAML reads a bare {value} as a float, not a quantity)'
        )
    if isinstance(value, str) and err.validator == "pattern" and keys and "resources" in map(str, keys):
        example = '`cpu: "500m"` or `cpu: "2"`' if keys[-1] == "cpu" else f'`{keys[-1]}: "512Mi"` or `"4Gi"`'
        return (
            f"write a Kubernetes quantity, e.g. {example}: a number and an optional suffix "
            "(m, k, M, G, Ki, Mi, Gi, Ti), no spaces"
        )
    return "make the value match the schema"


def unknown_fields(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Dotted paths of keys the schema does not declare (structural CRD schemas only)."""
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict):
        props = dict(schema.get("properties", {}))
        for branch in schema.get("allOf", []) + schema.get("anyOf", []) + schema.get("oneOf", []):
            props.update(branch.get("properties", {}) if isinstance(branch, dict) else {})
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else str(key)
            if key in props:
                found += unknown_fields(props[key], child, child_path)
            elif isinstance(extra, dict):
                found += unknown_fields(extra, child, child_path)
            elif extra is None and not _open_object(schema):
                found.append(child_path)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += unknown_fields(schema["items"], item, f"{path}[{i}]")
    return found


def _open_object(schema: dict[str, Any]) -> bool:
    """A schema that is not an object schema at all (e.g. int-or-string) declares no keys to check."""
    return schema.get("type") not in (None, "object") or bool(schema.get("x-kubernetes-int-or-string"))
