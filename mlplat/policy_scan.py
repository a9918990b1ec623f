"""Scan rendered model-app manifests with checkov: mlplat's checks (CKV_MLP_*) and checkov's built-ins.

checkov lives in its own virtualenv (its pins clash with ours), so it runs as a subprocess over a
temporary folder with one file per document. The checks need each environment's limits (replica
caps, model store, registries, GPU pools); they get them from a JSON file built from the stack
config, named by MLPLAT_POLICY_CONTEXT. Waivers are checkov's skip annotations; every one is listed,
and one without a reason is itself a finding.

Speed (a whole repo is thousands of documents): one scan is split into at most one checkov process
per CPU core, run side by side. checkov links documents into a graph whose edge building is
quadratic in the number of documents, and its graph checks (CKV2_K8S_*) read those edges; so the
split never separates documents checkov could link (`_components`: same resource ID, a selector and
the labels it could match, a ServiceAccount and what names it, a RoleBinding and what it names, pods
and NetworkPolicies). Every document therefore gets the verdicts a single process would give it.
checkov is started through `LAUNCHER`, which changes how it works, never what it finds (each change is
explained where it is defined, and tests/policies compares every verdict with checkov's own entry point).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from infra.contract import ENVIRONMENT_LABEL as ENV_LABEL
from infra.contract import ENVIRONMENTS
from mlplat import checkout, safe_yaml, scratch
from mlplat.findings import Finding, RenderedDoc, Waiver

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKOV = checkout.tool(".venv-checkov", "checkov")
CHECKS_DIR = REPO_ROOT / "policies" / "checkov" / "checks"
SKIPS_FILE = REPO_ROOT / "policies" / "checkov" / "skips.yaml"
CONTEXT_ENV_VAR = "MLPLAT_POLICY_CONTEXT"  # read by policies/checkov/checks/_mlplat.py
FALLBACK_ENV = ENVIRONMENTS[-1]  # what the checks hold an unlabelled resource to: the strictest
SKIP_ANNOTATION_PREFIXES = ("checkov.io/skip", "bridgecrew.io/skip", "cortex.io/skip")
WAIVER_NO_REASON = "MLP-WAIVER-NO-REASON"
WAIVER_UNUSED = "MLP-WAIVER-UNUSED"
WAIVER_NOT_ALLOWED = "MLP-WAIVER-NOT-ALLOWED"
# Checks that hold an app to the environment's limits from the stack config (the replica cap per app,
# the GPU pools that exist): the platform team's to change, never an app team's to waive. They are
# these rules' only engine (mlplat/validation/capacity.py leaves them to checkov). The replica floor
# (CKV_MLP_5) stays waivable with a reason, as policies/README.md shows.
UNWAIVABLE = frozenset({"CKV_MLP_3", "CKV_MLP_4"})
POLICY_CONTEXT = "MLP-POLICY-CONTEXT"
NOT_SCANNED = "MLP-POLICY-NOT-SCANNED"
BUILTIN_POLICY_INDEX = "https://www.checkov.io/5.Policy%20Index/kubernetes.html"
TIMEOUT_SECONDS = 900
SHARD_MIN_DOCS = 400  # fewer documents per process than this and checkov's start-up (~4 s) dominates
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# Runs checkov's own entry point (bin/checkov) with changes that alter no verdict:
# - parse YAML with libyaml, keeping checkov's line markers (its loader is a pure-Python SafeLoader
#   plus the same construct_mapping); without libyaml this one is left out;
# - read a document written as JSON (`_as_json`: only when it survives the round trip unchanged)
#   with json.loads, marking every mapping as the YAML loader would (checkov.kubernetes.parser.k8_yaml
#   SafeLineLoader, 3.3.30); the lines only place code snippets in checkov's report, which we drop.
#   Parsing was a third of checkov's time;
# - disable DEBUG/INFO logging, which checkov otherwise formats into an in-memory buffer for its
#   platform upload (a third of its check time);
# - hand two edge builders only the vertices they can connect to. LabelSelectorEdgeBuilder and
#   NetworkPolicyEdgeBuilder (checkov/kubernetes/graph_builder/graph_components/edge_builders/, 3.3.30)
#   compare every vertex with every other one, but skip at once any vertex without metadata or a
#   selector (the first) or that is not a Pod (the second): pre-filtering those out gives the same
#   connections in the same order, in linear instead of quadratic time (was 90 % of a 7,000-document
#   scan);
# - leave passed checks out of the JSON report (nobody reads them; encoding them took 8 s).
EDGE_PREFILTER = """
from checkov.kubernetes.graph_builder.graph_components.edge_builders import (
    LabelSelectorEdgeBuilder as _labels, NetworkPolicyEdgeBuilder as _policies)

def _prefiltered(find, can_connect):
    seen = [None, None, None]  # the vertex list of the graph being built, kept indexes, kept vertices
    def find_connections(vertex, vertices):
        if seen[0] is not vertices:
            kept = [i for i, v in enumerate(vertices) if can_connect(v)]
            seen[:] = [vertices, kept, [vertices[i] for i in kept]]
        return [seen[1][i] for i in find(vertex, seen[2])]
    return staticmethod(find_connections)

_labels.LabelSelectorEdgeBuilder.find_connections = _prefiltered(
    _labels.LabelSelectorEdgeBuilder.find_connections,
    lambda v: bool(v.metadata) and bool(v.metadata.selector.match_labels))
_policies.NetworkPolicyEdgeBuilder.find_connections = _prefiltered(
    _policies.NetworkPolicyEdgeBuilder.find_connections, lambda v: v.attributes.get("kind") == "Pod")
"""
# checkov builds its graph (flattened attributes of every vertex, copied into rustworkx) from every
# document, though only its graph checks read the graph, and each one filters on and connects a few
# kinds (checkov/kubernetes/checks/graph_checks/*.json, 3.3.30: RoleBinding, ClusterRoleBinding,
# Role, ClusterRole, Pod, Deployment, NetworkPolicy). The graph is built from documents of those kinds
# only, plus any document with a pod template, from which checkov makes a Pod vertex
# (KubernetesLocalGraph._extract_nested_resources); the resource checks still read every document.
# A vertex of another kind has no condition and no connection a graph check evaluates, so the verdicts
# do not change. A check naming no kind (or "all") keeps the whole graph. Was a third of a scan's time.
GRAPH_OF_CHECKED_KINDS = """
from checkov.common.checks_infra.registry import get_graph_checks_registry as _graph_checks
from checkov.kubernetes.graph_manager import KubernetesGraphManager as _graphs

def _checked_kinds(check):
    kinds = set(check.resource_types) | set(check.connected_resources_types)
    for sub in check.sub_checks:
        kinds |= _checked_kinds(sub)
    return kinds

_build_graph = _graphs.build_graph_from_definitions

def _graph_of_checked_kinds(self, definitions, render_variables=True):
    registry = _graph_checks("kubernetes")
    registry.load_checks()
    per_check = [_checked_kinds(check) for check in registry.checks]
    if not per_check or any(not kinds or "all" in kinds for kinds in per_check):
        return _build_graph(self, definitions, render_variables)
    kinds = set().union(*per_check)
    def read(doc):
        spec = doc.get("spec")
        return doc.get("kind") in kinds or (isinstance(spec, dict) and isinstance(spec.get("template"), dict))
    kept = {path: [doc for doc in docs if read(doc)] for path, docs in definitions.items()}
    return _build_graph(self, {path: docs for path, docs in kept.items() if docs}, render_variables)

_graphs.build_graph_from_definitions = _graph_of_checked_kinds
"""
KEEP_PASSED_ENV_VAR = "MLPLAT_CHECKOV_KEEP_PASSED"  # tests read passed checks; validate never does
LAUNCHER = (
    """
import logging, os, sys, warnings
logging.disable(logging.INFO)
import yaml
from checkov.kubernetes.parser import k8_yaml
if getattr(yaml, "__with_libyaml__", False):
    class _CSafeLineLoader(yaml.CSafeLoader):
        def construct_mapping(self, node, deep=False):
            mapping = super().construct_mapping(node, deep=deep)
            mapping["__startline__"] = node.start_mark.line + 1
            mapping["__endline__"] = node.end_mark.line + 1
            return mapping
    k8_yaml.SafeLineLoader = _CSafeLineLoader
import json
_yaml_loads = k8_yaml.loads
def _marked(value, last):
    if isinstance(value, dict):
        for child in value.values():
            _marked(child, last)
        value["__startline__"], value["__endline__"] = 1, last
    elif isinstance(value, list):
        for child in value:
            _marked(child, last)
    return value
def _loads(content):
    if content.startswith("{"):
        return [_marked(json.loads(content), content.count("\\n") + 1)]
    return _yaml_loads(content)
k8_yaml.loads = _loads
"""
    + EDGE_PREFILTER
    + GRAPH_OF_CHECKED_KINDS
    + f"""
from checkov.common.output.report import Report
_get_dict = Report.get_dict
def _without_passes(self, *args, **kwargs):
    report = _get_dict(self, *args, **kwargs)
    if isinstance(report.get("results"), dict) and not os.environ.get("{KEEP_PASSED_ENV_VAR}"):
        report["results"]["passed_checks"] = []
    return report
Report.get_dict = _without_passes
from checkov.main import Checkov
# Imported (~2.5 s): now wait for the scan's arguments (`Checkov`, below); nothing to read means no scan.
_request = json.loads(sys.stdin.readline() or "null")
if _request is None:
    sys.exit(0)
os.environ.update(_request["env"])
sys.argv = [sys.argv[0], *_request["argv"]]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", category=SyntaxWarning)
    sys.exit(Checkov(argv=sys.argv[1:]).run())  # its default argv is the one it was imported with
"""
)


class PolicyScanError(RuntimeError):
    """checkov could not run or its output could not be read; the scan has no verdict."""


def load_skips(path: Path = SKIPS_FILE) -> dict[str, str]:
    """Built-in check IDs never run, with why: `skips: [{id, reason}]` in policies/checkov/skips.yaml."""
    try:
        document = yaml.safe_load(safe_yaml.read_text(path, str(path))) or {}
    except (OSError, yaml.YAMLError, safe_yaml.UnsafeInput) as err:
        raise PolicyScanError(f"{path}: cannot read the skip list: {err}") from None
    entries = document.get("skips") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise PolicyScanError(f"{path}: expected `skips:` with a list of {{id, reason}}")
    skips: dict[str, str] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not str(entry.get("id", "")).strip() or not entry.get("reason"):
            raise PolicyScanError(f"{path}: skips[{i}] needs an `id` and a `reason`")
        skips[str(entry["id"]).strip()] = str(entry["reason"]).strip()
    return skips


def policy_context() -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Every environment's limits for the checks, and the config error of each that does not load."""
    from infra.config import ENVIRONMENTS, ConfigError, load_stack_config, stack_file

    context: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for env in ENVIRONMENTS:
        path = stack_file(env)
        try:
            # Screened and parsed once (stack_values bounds the file before the YAML parser sees it).
            config = load_stack_config(safe_yaml.stack_values(path), str(path), env)
        except ConfigError as err:
            errors[env] = str(err)
            continue
        context[env] = {
            "max_replicas_per_app": config.apps.max_replicas_per_app,
            "min_replicas": config.apps.min_replicas,
            "model_store_uri": config.apps.model_store_uri,
            "allowed_registries": list(config.apps.allowed_registries),
            "gpu_pools": [pool.name for pool in config.gpu.pools],
        }
    return context, errors


def _waiver_annotations(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(annotation key, check ID, reason) of every skip annotation."""
    metadata = doc.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict):
        return []
    found = []
    for key, value in annotations.items():
        if any(prefix in str(key) for prefix in SKIP_ANNOTATION_PREFIXES):
            check_id, _, reason = str(value if value is not None else "").partition("=")
            found.append((str(key), check_id.strip(), reason.strip()))
    return found


def _prepared(rendered: RenderedDoc) -> dict[str, Any] | None:
    """The document as checkov gets it, or None when it is not a Kubernetes object checkov can scan."""
    doc = rendered.doc
    metadata = doc.get("metadata") if isinstance(doc, dict) else None
    if not isinstance(metadata, dict) or not isinstance(doc.get("kind"), str) or "apiVersion" not in doc:
        return None
    if not isinstance(metadata.get("name"), str) or not metadata["name"]:
        return None
    # Only metadata's labels and annotations change: copy those, share the rest (read-only here).
    metadata = {**metadata}
    doc = {**doc, "metadata": metadata}
    if rendered.env:
        labels = metadata.get("labels")
        metadata["labels"] = {**labels} if isinstance(labels, dict) else {}
        metadata["labels"].setdefault(ENV_LABEL, rendered.env)
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        annotations = metadata["annotations"] = {**annotations}
        for key, check_id, reason in _waiver_annotations(doc):
            if check_id in UNWAIVABLE:  # checkov judges it anyway; the waiver is a finding (_waivers)
                del annotations[key]
                continue
            # checkov splits on every "=" and crashes on a reason that contains one.
            annotations[key] = f"{check_id}={reason.replace('=', ':')}" if reason else check_id
    return doc


def _as_json(doc: dict[str, Any]) -> str | None:
    """The document as one line of JSON (the launcher reads it without YAML), or None when JSON would
    change it: a date, a non-string key, anything that does not come back equal."""
    try:
        text = json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return text if json.loads(text) == doc else None


def _fix(check: dict[str, Any]) -> str:
    """mlplat checks carry their how-to-fix as checkov's guideline; built-ins point at checkov's index."""
    guideline = check.get("guideline")
    if guideline:
        return str(guideline)
    return f"see {check.get('check_id')} in {BUILTIN_POLICY_INDEX}"


def _message(check: dict[str, Any]) -> str:
    keys = (check.get("check_result") or {}).get("evaluated_keys") or []
    if str(check.get("check_id")).startswith("CKV2_"):
        keys = sorted(map(str, keys))  # graph checks collect their keys in a set: no order of their own
    name = str(check.get("check_name") or check.get("check_id"))
    return f"{name}: {', '.join(str(k) for k in keys)}" if keys else name


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _require(checkov: Path) -> None:
    if not checkov.exists():
        raise PolicyScanError(f"checkov is not installed at {checkov}; run `make setup`")


class Checkov:
    """One checkov process, started before its documents exist: it imports itself (~2.5 s of CPU) while
    the caller renders, then `run()` hands it a folder. Parsing is in-process (one worker): the scan is
    parallel across processes (`shard`), and a forked parser only pickles every document back.
    `close()` ends a process that never got a folder."""

    def __init__(self, checkov: Path = CHECKOV) -> None:
        _require(checkov)
        # No API key, no mapping download, no update check: the scan is offline and deterministic.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "CKV_", "PRISMA_"))}
        env.update(
            BC_SKIP_MAPPING="TRUE",
            CKV_SKIP_PACKAGE_UPDATE_CHECK="TRUE",
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONHASHSEED="0",  # checkov iterates sets in places; the same input gives the same report
            LOG_LEVEL="ERROR",
            CHECKOV_WORKERS_NUMBER="1",
            CHECKOV_PARALLELIZATION_TYPE="none",
        )
        # checkov reads a `.checkov.yaml` from its working directory and its home folder
        # (checkov/common/util/config_utils.py get_default_config_paths, 3.3.30): run from the
        # repository, a pull request adding one could choose which checks run. Both are an empty
        # folder of its own; `python -c` also puts the working directory first on sys.path.
        self._home = tempfile.TemporaryDirectory(prefix="mlplat-checkov-home-")
        env["HOME"] = self._home.name
        python = checkov.with_name("python")
        # Without its virtualenv's python (checkov installed some other way) there is no launcher:
        # checkov starts with its arguments, in run().
        self._plain = None if python.exists() else checkov
        self._env = env
        self._process = None if self._plain else self._start([str(python), "-c", LAUNCHER], env)

    def _start(self, command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            cwd=self._home.name,
        )  # fmt: skip

    def run(
        self, folder: Path, context_file: Path, skips: Sequence[str], keep_passed: bool = False
    ) -> dict[str, Any]:
        """checkov over one folder; passed checks are left out of the report unless `keep_passed`."""
        argv = [
            "--directory", str(folder),
            "--framework", "kubernetes",
            "--external-checks-dir", str(CHECKS_DIR),
            "--output", "json",
            "--compact",
            "--skip-download",
        ]  # fmt: skip
        if skips:
            argv += ["--skip-check", ",".join(skips)]
        env = {CONTEXT_ENV_VAR: str(context_file), **({KEEP_PASSED_ENV_VAR: "1"} if keep_passed else {})}
        if self._plain is not None:
            process, request = self._start([str(self._plain), *argv], {**self._env, **env}), ""
        else:
            assert self._process is not None
            process, request = self._process, json.dumps({"argv": argv, "env": env}) + "\n"
        try:
            stdout, stderr = process.communicate(request, timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise PolicyScanError(f"checkov did not finish within {TIMEOUT_SECONDS}s") from None
        finally:
            self._home.cleanup()
        # checkov logs a check it cannot import and runs without it (checkov 3.3.30
        # `_load_external_checks_from_disk`): a report from fewer checks than ours is no verdict.
        unloaded = [line for line in (stderr or "").splitlines() if "Cannot load external check" in line]
        if unloaded:
            raise PolicyScanError("checkov could not load the mlplat checks:\n" + "\n".join(unloaded[:5]))
        # Exit code 1 only means failed checks; what matters is whether a JSON report came out.
        try:
            report = json.loads(stdout)
        except json.JSONDecodeError:
            tail = "\n".join((stderr or stdout).strip().splitlines()[-15:])
            raise PolicyScanError(
                f"checkov crashed (exit {process.returncode}) without a report:\n{tail}"
            ) from None
        reports = report if isinstance(report, list) else [report]
        merged: dict[str, list[dict[str, Any]]] = {
            "passed_checks": [],
            "failed_checks": [],
            "skipped_checks": [],
        }
        for item in reports:
            results = item.get("results") if isinstance(item, dict) else None
            for key in merged:
                merged[key] += (results or {}).get(key) or []
        return merged

    def close(self) -> None:
        """End the process if it never got a folder (it has nothing to finish)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.communicate()
        self._home.cleanup()


def _not_scanned(rendered: RenderedDoc) -> Finding:
    return Finding(
        file=rendered.source_file,
        resource=rendered.ref,
        rule=NOT_SCANNED,
        message="not a Kubernetes object with apiVersion, kind and metadata.name; no policy ran on it",
        fix="fix the manifest so it renders to a complete Kubernetes object",
        env=rendered.env,
    )


def _check_finding(rendered: RenderedDoc, check: dict[str, Any]) -> Finding:
    keys = (check.get("check_result") or {}).get("evaluated_keys") or []
    return Finding(
        file=rendered.source_file,
        resource=rendered.ref,
        rule=str(check.get("check_id")),
        message=_message(check),
        fix=_fix(check),
        env=rendered.env,
        # The first offending key: `mlplat validate` turns it into the file and line that set it.
        path=min(str(k).split(" ")[0] for k in keys) if keys else None,
    )


def _environment(rendered: RenderedDoc) -> str:
    labels = rendered.doc["metadata"].get("labels")
    label = labels.get(ENV_LABEL) if isinstance(labels, dict) else None
    return str(rendered.env or label or FALLBACK_ENV)


def _context_finding(rendered: RenderedDoc, env: str, error: str) -> Finding:
    return Finding(
        file=rendered.source_file,
        resource=rendered.ref,
        rule=POLICY_CONTEXT,
        message=f"no policy limits for environment {env}: {error.splitlines()[0]}",
        fix=f"fix environments/Pulumi.{env}.yaml (`mlplat plan --env {env}` names the bad key)",
        env=rendered.env,
    )


def _waivers(rendered: RenderedDoc, applied: set[str]) -> tuple[list[Waiver], list[Finding]]:
    """The waivers of one document; a waiver without a reason, or that waives nothing, is a finding."""
    waivers, findings = [], []
    file, resource, env = rendered.source_file, rendered.ref, rendered.env
    for _key, check_id, reason in _waiver_annotations(rendered.doc):
        if check_id in UNWAIVABLE:
            findings.append(
                Finding(
                    rule=WAIVER_NOT_ALLOWED,
                    message=f"{check_id} cannot be waived: it holds the app to the environment's limits "
                    "(stack config), which are the platform team's",
                    fix="remove the annotation; ask the platform team to change the environment's "
                    "limits in environments/Pulumi.<env>.yaml if they are wrong",
                    file=file,
                    resource=resource,
                    env=env,
                )
            )
            continue
        waivers.append(Waiver(file, resource, check_id, reason, env))
        if not reason:
            findings.append(
                Finding(
                    rule=WAIVER_NO_REASON,
                    message=f"waiver of {check_id or '(no check ID)'} gives no reason",
                    fix=f"write the annotation as checkov.io/skip<N>: {check_id or '<CHECK_ID>'}=<why>",
                    file=file,
                    resource=resource,
                    env=env,
                )
            )
        elif check_id not in applied:
            findings.append(
                Finding(
                    rule=WAIVER_UNUSED,
                    message=f"waiver of {check_id} matches no check that runs on this {rendered.doc['kind']}",
                    fix="remove the annotation, or correct the check ID (see policies/README.md)",
                    file=file,
                    resource=resource,
                    env=env,
                )
            )
    return waivers, findings


def _hashable(value: Any) -> Any:
    """A dict key that is equal exactly when checkov's `==` on the values could be."""
    try:
        hash(value)
        return value
    except TypeError:
        try:
            return ("json", json.dumps(value, sort_keys=True, default=str))
        except (TypeError, ValueError):
            return ("unhashable",)  # over-links, never under-links


def _vertices(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, Any]]:
    """(resource, kind, namespace) of the document and of every nested pod template, each of which
    checkov may make a vertex of its own (kind defaulting to Pod, namespace to the parent's)."""
    meta = doc.get("metadata")
    kind, namespace = (
        str(doc.get("kind")),
        meta.get("namespace", "default") if isinstance(meta, dict) else None,
    )
    resource: Any = doc
    while isinstance(resource, dict):
        yield resource, kind, namespace
        spec = resource.get("spec")
        resource = spec.get("template") if isinstance(spec, dict) else None
        if isinstance(resource, dict):
            kind = str(resource.get("kind", "Pod"))
            meta = resource.get("metadata")
            namespace = meta.get("namespace", namespace) if isinstance(meta, dict) else namespace


def _link_keys(doc: dict[str, Any]) -> tuple[set[Any], set[Any]] | None:
    """(keys the document offers, keys it looks for): checkov can link two documents only when one
    looks for a key the other offers. A superset of checkov's edge builders (kubernetes/graph_builder/
    graph_components/edge_builders), None for a shape that is not modelled (then nothing is split)."""
    offers: set[Any] = set()
    wants: set[Any] = set()
    for resource, kind, namespace in _vertices(doc):
        meta = resource.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        name, labels, spec = meta.get("name"), meta.get("labels"), resource.get("spec")
        # Vertices are named Kind.namespace.name, and checkov gathers edges by that name.
        vertex = ("id", f"{kind}.{namespace}.{name}") if name else ("id", kind, _hashable(namespace))
        offers.add(vertex)
        wants.add(vertex)
        if name is not None:
            offers.add(("name", _hashable(name)))
        if isinstance(labels, dict):  # LabelSelectorEdgeBuilder: selector labels ⊆ labels
            offers.update(("label", _hashable(k), _hashable(v)) for k, v in labels.items())
        elif labels is not None:
            return None
        if isinstance(spec, list):
            return None
        selector = spec.get("selector") if isinstance(spec, dict) else None
        if selector:
            if not isinstance(selector, dict):
                return None
            match = selector if kind == "Service" else selector.get("matchLabels")
            if match and not isinstance(match, dict):
                return None
            if match:
                key, value = next(iter(match.items()))
                wants.add(("label", _hashable(key), _hashable(value)))
        if kind == "Pod":  # NetworkPolicyEdgeBuilder: a policy links to pods (with podSelector {}: all)
            offers.add(("pod",))
        elif kind == "NetworkPolicy":
            wants.add(("pod",))
        if kind == "ServiceAccount" and name is not None:  # ServiceAccountEdgeBuilder
            wants.add(("sa", _hashable(name)))
        if isinstance(spec, dict) and spec.get("serviceAccountName") is not None:
            offers.add(("sa", _hashable(spec["serviceAccountName"])))
        if kind in ("RoleBinding", "ClusterRoleBinding"):  # KeywordEdgeBuilder: roleRef and subjects
            subjects = resource.get("subjects") or []
            if not isinstance(subjects, list):
                return None
            refs = [resource.get("roleRef"), *subjects]
            wants.update(("name", _hashable(r.get("name"))) for r in refs if isinstance(r, dict))
    return offers, wants


def _components(docs: Sequence[dict[str, Any]]) -> list[list[int]] | None:
    """Groups of document indexes that checkov may link, each in document order, ordered by first
    member; None when a document's shape is not modelled."""
    parent = list(range(len(docs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    offered: dict[Any, list[int]] = {}
    wanted: dict[Any, list[int]] = {}
    for i, doc in enumerate(docs):
        keys = _link_keys(doc)
        if keys is None:
            return None
        for key in keys[0]:
            offered.setdefault(key, []).append(i)
        for key in keys[1]:
            wanted.setdefault(key, []).append(i)
    for key, seekers in wanted.items():
        if key not in offered:
            continue  # nothing to link to: looking alone links no two documents
        members = seekers + offered[key]
        for other in members[1:]:
            parent[find(other)] = find(members[0])
    groups: dict[int, list[int]] = {}
    for i in range(len(docs)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def shard(docs: Sequence[dict[str, Any]], count: int) -> list[list[int]]:
    """Split document indexes into at most `count` balanced shards that keep linkable documents
    together; deterministic. One shard when the documents cannot be split safely."""
    groups = _components(docs) if count > 1 else None
    if groups is None:
        return [list(range(len(docs)))] if docs else []
    shards: list[list[int]] = [[] for _ in range(count)]
    for group in sorted(groups, key=lambda g: (-len(g), g[0])):  # biggest first, onto the lightest
        min(shards, key=len).extend(group)
    return [sorted(s) for s in shards if s]


def _shard_count(docs: int, cpus: int) -> int:
    return max(1, min(cpus, docs // SHARD_MIN_DOCS))


def scan(
    docs: Sequence[RenderedDoc],
    *,
    checkov: Path = CHECKOV,
    skips_file: Path = SKIPS_FILE,
    shards: int | None = None,
) -> tuple[list[Finding], list[Waiver]]:
    """Findings (failed checks, waiver problems) and the waivers in force, for the given documents.

    `shards`: checkov processes to split the scan into (default: one per CPU core, at least
    SHARD_MIN_DOCS documents each); the verdicts are the same for any value.
    """
    with Scan(docs, checkov=checkov, skips_file=skips_file, shards=shards) as prepared:
        return prepared.run()


class Scan:
    """One scan in two halves. Creating it prepares and writes every document (Python work, done in
    the caller's thread); `run()` is checkov's processes and the reading of their reports (mostly
    waiting, so `mlplat validate` runs it in a background thread beside its other checks). Written
    from that background thread instead, 10,000 files took 11 s: each write hands the GIL back and
    waits for it behind the checks' Python."""

    def __init__(
        self,
        docs: Sequence[RenderedDoc],
        *,
        checkov: Path = CHECKOV,
        skips_file: Path = SKIPS_FILE,
        shards: int | None = None,
        started: Checkov | None = None,
    ) -> None:
        """`started`: a checkov process the caller started earlier (its first shard runs there)."""
        if started is None:
            _require(checkov)
        self.skips = sorted(load_skips(skips_file))
        context, self.context_errors = policy_context()
        self.findings: list[Finding] = []
        self.by_file: dict[str, RenderedDoc] = {}
        prepared_docs: list[tuple[str, dict[str, Any]]] = []
        for i, rendered in enumerate(docs):
            prepared = _prepared(rendered)
            if prepared is None:
                self.findings.append(_not_scanned(rendered))
                continue
            name = f"{i:05d}.yaml"  # one file per document: a result maps back to exactly one doc
            prepared_docs.append((name, prepared))
            self.by_file[name] = rendered
        cpus = _cpus()
        count = shards if shards is not None else _shard_count(len(prepared_docs), cpus)
        parts = shard([doc for _, doc in prepared_docs], max(1, count))
        # The other processes start now: they import checkov while this thread writes the documents.
        self._processes = [started] if started is not None and parts else []
        if started is not None and not parts:
            started.close()
        self._processes += [Checkov(checkov) for _ in parts[len(self._processes) :]]
        self._tmp = scratch.folder("mlplat-policy-")
        try:
            self.context_file = Path(self._tmp.name, "context.json")
            self.context_file.write_text(json.dumps(context, indent=2, sort_keys=True), encoding="utf-8")
            self.folders = []
            for n, part in enumerate(parts):
                folder = Path(self._tmp.name, f"docs{n}")
                folder.mkdir()
                for index in part:
                    name, prepared = prepared_docs[index]
                    text = _as_json(prepared) or yaml.dump(prepared, Dumper=DUMPER, sort_keys=False)
                    Path(folder, name).write_text(text, encoding="utf-8")
                self.folders.append(folder)
        except BaseException:
            self.__exit__()
            raise

    def __enter__(self) -> Scan:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._processes:
            process.close()
        self._tmp.cleanup()

    def run(self) -> tuple[list[Finding], list[Waiver]]:
        with ThreadPoolExecutor(max_workers=max(1, len(self.folders))) as pool:
            reports = list(
                pool.map(
                    lambda job: job[0].run(job[1], self.context_file, self.skips),
                    zip(self._processes, self.folders, strict=True),
                )
            )
        results: dict[str, list[dict[str, Any]]] = {"failed_checks": [], "skipped_checks": []}
        for report in reports:
            for key in results:
                results[key] += report.get(key, [])

        findings, waivers = list(self.findings), []
        for check in results["failed_checks"]:
            failed = self.by_file.get(Path(str(check.get("file_path", ""))).name)
            if failed is not None:
                findings.append(_check_finding(failed, check))
        applied: dict[str, set[str]] = {name: set() for name in self.by_file}
        for check in results["skipped_checks"]:
            applied.setdefault(Path(str(check.get("file_path", ""))).name, set()).add(
                str(check.get("check_id"))
            )
        for name, rendered in self.by_file.items():
            env = _environment(rendered)
            if env in self.context_errors:
                findings.append(_context_finding(rendered, env, self.context_errors[env]))
            doc_waivers, waiver_findings = _waivers(rendered, applied[name])
            waivers += doc_waivers
            findings += waiver_findings
        findings.sort(key=lambda f: (f.file, f.resource, f.rule, f.message))
        waivers.sort(key=lambda w: (w.file, w.resource, w.rule))
        return findings, waivers
