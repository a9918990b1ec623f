"""Scan rendered model-app manifests with checkov: mlplat's checks (CKV_MLP_*) and checkov's built-ins.

checkov lives in its own virtualenv (its pins clash with ours), so it runs as a subprocess, once per
scan, over a temporary folder with one file per document. The checks need each environment's
limits (replica caps, model store, registries, GPU pools); they get them from a JSON file built from
the stack config, named by MLPLAT_POLICY_CONTEXT. Waivers are checkov's skip annotations; every one
is listed, and one without a reason is itself a finding.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mlplat.findings import Finding, RenderedDoc, Waiver

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKS_DIR = REPO_ROOT / "policies" / "checkov" / "checks"
SKIPS_FILE = REPO_ROOT / "policies" / "checkov" / "skips.yaml"
CONTEXT_ENV_VAR = "MLPLAT_POLICY_CONTEXT"  # read by policies/checkov/checks/_mlplat.py
ENV_LABEL = "mlplat/environment"
FALLBACK_ENV = "prod"  # what the checks hold an unlabelled resource to
SKIP_ANNOTATION_PREFIXES = ("checkov.io/skip", "bridgecrew.io/skip", "cortex.io/skip")
WAIVER_NO_REASON = "MLP-WAIVER-NO-REASON"
WAIVER_UNUSED = "MLP-WAIVER-UNUSED"
POLICY_CONTEXT = "MLP-POLICY-CONTEXT"
NOT_SCANNED = "MLP-POLICY-NOT-SCANNED"
BUILTIN_POLICY_INDEX = "https://www.checkov.io/5.Policy%20Index/kubernetes.html"
TIMEOUT_SECONDS = 900


class PolicyScanError(RuntimeError):
    """checkov could not run or its output could not be read; the scan has no verdict."""


def load_skips(path: Path = SKIPS_FILE) -> dict[str, str]:
    """Built-in check IDs never run, with why: `skips: [{id, reason}]` in policies/checkov/skips.yaml."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
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
    from infra.config import ENVIRONMENTS, ConfigError, load_environment

    context: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for env in ENVIRONMENTS:
        try:
            config = load_environment(env)
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
    doc = copy.deepcopy(doc)
    metadata = doc["metadata"]
    if rendered.env:
        if not isinstance(metadata.get("labels"), dict):
            metadata["labels"] = {}
        metadata["labels"].setdefault(ENV_LABEL, rendered.env)
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        for key, check_id, reason in _waiver_annotations(doc):
            # checkov splits on every "=" and crashes on a reason that contains one.
            annotations[key] = f"{check_id}={reason.replace('=', ':')}" if reason else check_id
    return doc


def _fix(check: dict[str, Any]) -> str:
    """mlplat checks carry their how-to-fix as checkov's guideline; built-ins point at checkov's index."""
    guideline = check.get("guideline")
    if guideline:
        return str(guideline)
    return f"see {check.get('check_id')} in {BUILTIN_POLICY_INDEX}"


def _message(check: dict[str, Any]) -> str:
    keys = (check.get("check_result") or {}).get("evaluated_keys") or []
    name = str(check.get("check_name") or check.get("check_id"))
    return f"{name}: {', '.join(str(k) for k in keys)}" if keys else name


def _run_checkov(folder: Path, context_file: Path, skips: Sequence[str], checkov: Path) -> dict[str, Any]:
    command = [
        str(checkov),
        "--directory", str(folder),
        "--framework", "kubernetes",
        "--external-checks-dir", str(CHECKS_DIR),
        "--output", "json",
        "--compact",
        "--skip-download",
    ]  # fmt: skip
    if skips:
        command += ["--skip-check", ",".join(skips)]
    # No API key, no mapping download, no update check: the scan is offline and deterministic.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "CKV_", "PRISMA_"))}
    env.update(
        BC_SKIP_MAPPING="TRUE",
        CKV_SKIP_PACKAGE_UPDATE_CHECK="TRUE",
        PYTHONDONTWRITEBYTECODE="1",
        LOG_LEVEL="ERROR",
        **{CONTEXT_ENV_VAR: str(context_file)},
    )
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise PolicyScanError(f"checkov did not finish within {TIMEOUT_SECONDS}s") from None
    # Exit code 1 only means failed checks; what matters is whether a JSON report came out.
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise PolicyScanError(
            f"checkov crashed (exit {result.returncode}) without a report:\n{tail}"
        ) from None
    reports = report if isinstance(report, list) else [report]
    merged: dict[str, list[dict[str, Any]]] = {"passed_checks": [], "failed_checks": [], "skipped_checks": []}
    for item in reports:
        results = item.get("results") if isinstance(item, dict) else None
        for key in merged:
            merged[key] += (results or {}).get(key) or []
    return merged


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
    return Finding(
        file=rendered.source_file,
        resource=rendered.ref,
        rule=str(check.get("check_id")),
        message=_message(check),
        fix=_fix(check),
        env=rendered.env,
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
    where = {"file": rendered.source_file, "resource": rendered.ref, "env": rendered.env}
    for _key, check_id, reason in _waiver_annotations(rendered.doc):
        waivers.append(Waiver(rule=check_id, reason=reason, **where))
        if not reason:
            findings.append(
                Finding(
                    rule=WAIVER_NO_REASON,
                    message=f"waiver of {check_id or '(no check ID)'} gives no reason",
                    fix=f"write the annotation as checkov.io/skip<N>: {check_id or '<CHECK_ID>'}=<why>",
                    **where,
                )
            )
        elif check_id not in applied:
            findings.append(
                Finding(
                    rule=WAIVER_UNUSED,
                    message=f"waiver of {check_id} matches no check that runs on this {rendered.doc['kind']}",
                    fix="remove the annotation, or correct the check ID (see policies/README.md)",
                    **where,
                )
            )
    return waivers, findings


def scan(
    docs: Sequence[RenderedDoc], *, checkov: Path = CHECKOV, skips_file: Path = SKIPS_FILE
) -> tuple[list[Finding], list[Waiver]]:
    """Findings (failed checks, waiver problems) and the waivers in force, for the given documents."""
    if not checkov.exists():
        raise PolicyScanError(f"checkov is not installed at {checkov}; run `make setup`")
    skips = sorted(load_skips(skips_file))
    context, context_errors = policy_context()
    findings: list[Finding] = []
    waivers: list[Waiver] = []
    by_file: dict[str, RenderedDoc] = {}

    with tempfile.TemporaryDirectory(prefix="mlplat-policy-") as tmp:
        folder = Path(tmp, "docs")
        folder.mkdir()
        context_file = Path(tmp, "context.json")
        context_file.write_text(json.dumps(context, indent=2, sort_keys=True), encoding="utf-8")
        for i, rendered in enumerate(docs):
            prepared = _prepared(rendered)
            if prepared is None:
                findings.append(_not_scanned(rendered))
                continue
            name = f"{i:05d}.yaml"  # one file per document: a result maps back to exactly one doc
            Path(folder, name).write_text(yaml.safe_dump(prepared, sort_keys=False), encoding="utf-8")
            by_file[name] = rendered
        results = _run_checkov(folder, context_file, skips, checkov) if by_file else {}

    for check in results.get("failed_checks", []):
        rendered = by_file.get(Path(str(check.get("file_path", ""))).name)
        if rendered is not None:
            findings.append(_check_finding(rendered, check))
    applied: dict[str, set[str]] = {name: set() for name in by_file}
    for check in results.get("skipped_checks", []):
        applied.setdefault(Path(str(check.get("file_path", ""))).name, set()).add(str(check.get("check_id")))
    for name, rendered in by_file.items():
        env = _environment(rendered)
        if env in context_errors:
            findings.append(_context_finding(rendered, env, context_errors[env]))
        doc_waivers, waiver_findings = _waivers(rendered, applied[name])
        waivers += doc_waivers
        findings += waiver_findings
    findings.sort(key=lambda f: (f.file, f.resource, f.rule, f.message))
    waivers.sort(key=lambda w: (w.file, w.resource, w.rule))
    return findings, waivers
