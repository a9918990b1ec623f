"""`mlplat validate`: render model apps the way Argo CD will and check them before they merge.

Per target: render (kustomize), schema and unknown-field checks (Kubernetes of the cluster's
version, CRDs), Argo CD fit (AppProject, ApplicationSet), network isolation, capacity (replicas,
GPU fit, GPU cap); then one checkov scan over everything and, with --registry, the registry gate.
Exit 0 clean, 1 findings, 2 usage or internal error. Rule IDs are listed in apps/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from infra.gitops import with_platform_repository
from mlplat import checkout, entrypoint, safe_yaml
from mlplat.findings import Finding, RenderedDoc, Report, Waiver
from mlplat.validation import (
    ENVIRONMENTS,
    REPO,
    UsageError,
    argocd,
    capacity,
    governance,
    gpu_cost,
    logging_rules,
    output,
    ownership,
    podsecurity,
    prescreen,
    retraining,
    routes,
    scaling,
    shared_secrets,
    slo,
    targets,
    within,
)  # fmt: skip
from mlplat.validation.render import SourceIndex, render
from mlplat.validation.schemas import SchemaSet
from mlplat.validation.targets import Target
from mlplat.validation.trees import Trees

if TYPE_CHECKING:
    from infra.config import StackConfig
    from mlplat.policy_scan import Checkov, Scan

DEFAULT_SCHEMAS = REPO.parent / "shared" / "reference" / "crds"
GPU_KEY = re.compile(r"nvidia\.com/gpu['\"]?\s*:")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("validate", help="render and check model apps (and any manifests)")
    parser.add_argument(
        "paths", nargs="*", metavar="PATH",
        help="app folder, overlay/kustomization folder, or manifests file/folder (default: every app)",
    )  # fmt: skip
    parser.add_argument("--env", choices=ENVIRONMENTS, help="only this environment")
    parser.add_argument("--changed", action="store_true", help="only apps touched since --base")
    parser.add_argument("--base", default="main", help="git ref --changed compares with (default: main)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--schemas", type=Path, default=DEFAULT_SCHEMAS if DEFAULT_SCHEMAS.is_dir() else None,
        help="folder of CustomResourceDefinition YAML (default: ../shared/reference/crds)",
    )  # fmt: skip
    parser.add_argument(
        "--registry", default=os.environ.get("MLFLOW_TRACKING_URI") or None,
        help="MLflow registry URL for the registry gate (default: $MLFLOW_TRACKING_URI)",
    )  # fmt: skip
    checkout.add_option(parser, "--repo", "repository root (default: this checkout)")
    parser.add_argument(
        "--no-policy-scan",
        action="store_true",
        help="skip the checkov scan (says so): the CKV_* checks, replica bounds and GPU pool selection among them",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        report, notes = validate(args)
    except UsageError as err:
        print(f"mlplat validate: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # never a traceback: say what broke and how to reproduce it
        print(f"mlplat validate: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(output.as_json(report, notes) if args.format == "json" else output.as_text(report, notes))
    return report.exit_code


def _targets(args: argparse.Namespace, root: Path) -> list[Target]:
    if args.changed and args.paths:
        raise UsageError("give PATHs or --changed, not both")
    if args.changed:
        return targets.changed_targets(root, _base_commit(root, args.base), args.env)
    if args.paths:
        return targets.resolve(args.paths, root, args.env)
    return targets.all_targets(root, args.env)


def _base_commit(root: Path, base: str) -> str:
    """The commit --base names, as a full hash: the one form git can never read as an option.

    `--base` ends up in `git diff`, where a value such as `--output=/tmp/x` would be an option (it
    writes a file) rather than a ref. `--end-of-options` (git >= 2.24) makes rev-parse take it as a
    ref whatever it looks like; a leading `-` is refused before that, since no branch or tag may
    start with one (git-check-ref-format(1)).
    """
    if not base or base.startswith("-"):
        raise UsageError(f"--base {base!r}: not a git ref (a ref never starts with '-')")
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{base}^{{commit}}"],
            cwd=root, capture_output=True, text=True, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        raise UsageError("--changed needs git on the PATH") from None
    commit = result.stdout.strip()
    if result.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        raise UsageError(
            f"--base {base!r}: no such commit in {root} ({result.stderr.strip() or 'unknown ref'})"
        )
    return commit


def _configs(root: Path, envs: set[str]) -> dict[str, StackConfig]:
    from infra.config import ConfigError, load_stack_config

    configs: dict[str, StackConfig] = {}
    for env in sorted(envs):
        path = root / "environments" / f"Pulumi.{env}.yaml"
        try:
            configs[env] = load_stack_config(safe_yaml.stack_values(path), str(path), env)
        except ConfigError as err:
            raise UsageError(str(err)) from None
    return configs


def validate(args: argparse.Namespace) -> tuple[Report, list[str]]:
    # No cyclic garbage collection in a run: it holds hundreds of thousands of rendered objects until
    # the end, and every later burst of allocations (the scan's 10,000 file objects, its document
    # copies) makes the collector walk them all again (10,000 file writes: 0.4 s beside a small heap,
    # 3.5 s beside two million objects). What the run leaves in cycles is small; reference counting
    # frees everything else.
    gc.disable()
    checkov = None if args.no_policy_scan else _started_checkov()
    try:
        return _validate(args, checkov)
    finally:
        if checkov is not None:
            checkov.close()
        gc.enable()


def _started_checkov() -> Checkov:
    """checkov, started now: it imports itself (~2.5 s) while the manifests render."""
    from mlplat import policy_scan

    try:
        return policy_scan.Checkov()
    except policy_scan.PolicyScanError as err:
        raise UsageError(f"checkov scan failed: {err}") from None


def _validate(args: argparse.Namespace, checkov: Checkov | None) -> tuple[Report, list[str]]:
    root = checkout.root(args)
    if not (root / "apps").is_dir() and not args.paths:
        raise UsageError(f"{root} has no apps/ folder; pass --repo or PATHs")
    if args.schemas is not None and not args.schemas.is_dir():
        raise UsageError(f"--schemas {args.schemas}: no such folder")
    chosen = _targets(args, root)
    report, notes = Report(targets=[t.rel for t in chosen]), []
    if not chosen:
        notes.append("nothing to validate" + (f" (no app changed since {args.base})" if args.changed else ""))
        return report, notes
    envs = {t.env for t in chosen if t.env}
    configs = _configs(root, envs | {ENVIRONMENTS[0]})
    context = _context_targets(root, chosen, envs)
    unsafe = prescreen.unsafe_targets(chosen + context, root)  # neither we nor kustomize parse those
    trees = Trees(root)
    # What is refused before kustomize runs: remote or out-of-scope content, app paths Argo CD would
    # deploy otherwise than kustomize renders them.
    refused = {
        t.rel: governance.refused_before_render(trees.tree(t.path(root)), t.env)
        for t in chosen + context
        if t.kustomize and t not in unsafe
    }
    rendered = render([t for t in chosen + context if t not in unsafe and not refused.get(t.rel)], root)
    context_rels = {t.rel for t in context}
    docs = [d for d in rendered.docs if d.target not in context_rels]
    others = [d for d in rendered.docs if d.target in context_rels]
    report.findings = [f for f in rendered.findings if _target_of(f, context_rels) is None]
    report.findings += [problem.finding(t.env) for t in chosen for problem in unsafe.get(t, [])]
    report.findings += [f for t in chosen for f in refused.get(t.rel, [])]
    # The checkov scan runs (as subprocesses) while this process does the other checks; they only
    # read the documents, and the findings are sorted at the end, so the report does not change.
    index = SourceIndex(root)
    schema_sets = _schema_sets(configs, args.schemas)
    # The retraining pipelines are platform objects, not a model app's: the app rules of the scan
    # (CKV_MLP_*) do not apply; their own rule does (retraining.check).
    training = {t.rel for t in chosen if targets.is_training(t)}
    with _policy_scan([d for d in docs if d.target not in training], checkov) as policy, \
            ThreadPoolExecutor(max_workers=1) as background:  # fmt: skip
        scan = background.submit(policy.run)
        # A pipeline's git artifacts name no repository (MLP-RETRAIN-REPOSITORY); the schema, which
        # requires one, judges them as the program applies them, filled in with a stack's (any
        # environment's: the schema does not depend on which).
        repository = configs[ENVIRONMENTS[0]].services.argocd
        applied = [
            dataclasses.replace(d, doc=with_platform_repository(d.doc, repository))
            if d.target in training
            else d
            for d in docs
        ]
        report.findings += _schema_checks(applied, schema_sets, index)
        for env in sorted(envs):
            env_targets = [t for t in chosen if t.env == env]
            env_docs = [d for d in docs if d.env == env]
            scopes = schema_sets[env]
            report.findings += _argocd_checks(root, configs[env], env_targets, env_docs, scopes, index)
            report.findings += capacity.check(
                env_docs,
                configs[env],
                env,
                index,
                [d for d in others if d.env == env],
            )
            report.findings += scaling.check(env_docs, configs[env], env, index)
        report.findings += _isolation_checks(chosen, docs, index)
        report.findings += _governance_checks(root, chosen, docs, trees)
        report.findings += podsecurity.check(docs)
        report.findings += shared_secrets.check(docs)
        report.findings += routes.check(docs, {t.rel for t in chosen if t.app})
        report.findings += logging_rules.check(root, chosen, docs, index)
        report.findings += retraining.check([d for d in docs if d.target in training])
        if args.changed:  # only a change has a "before" to compare the GPU maximum with
            base = _base_commit(root, args.base)
            report.warnings, cost_notes = gpu_cost.check(root, base, args.base, chosen, docs, configs, index)
            notes += cost_notes
        findings, waivers, scan_note = scan.result()
        findings = [f for f in findings if f.rule != podsecurity.SUPERSEDED]
    if args.schemas is None:
        notes.append(
            f"no --schemas folder ({DEFAULT_SCHEMAS} is missing): custom resources were not schema-checked, "
            "and each is an MLP-SCHEMA finding so the run cannot pass unchecked (`make reference` fetches them)"
        )
    unbound = [t.rel for t in chosen if t.env is None and not targets.is_training(t)]
    if unbound:
        notes.append(
            f"no environment for {', '.join(unbound)}: AppProject and capacity checks skipped (use --env)"
        )
    report.findings += findings
    report.waivers += waivers
    notes += [scan_note] if scan_note else []
    if args.registry:
        report.findings += _registry_gate(docs, args.registry, root)
    report.findings = sorted(_grouped(_located(report.findings, docs, trees, root)), key=_order)
    report.waivers = sorted(set(report.waivers), key=lambda w: (w.env or "", w.file, w.resource, w.rule))
    report.warnings = sorted(_located(report.warnings, docs, trees, root), key=_order)
    return report, notes


def _governance_checks(
    root: Path, chosen: list[Target], docs: list[RenderedDoc], trees: Trees
) -> list[Finding]:
    """Patches that match nothing, version drift, Pod Security labels, NetworkPolicy widening, SLO
    tiers, and namespace/object ownership across every app of the repository."""
    findings: list[Finding] = []
    by_target: dict[str, list[RenderedDoc]] = {}
    for doc in docs:
        by_target.setdefault(doc.target, []).append(doc)

    def locate(doc: RenderedDoc, path: str) -> tuple[str, int | None]:
        return trees.locate(root / doc.target, doc, path)

    rules = governance.component_rules(root / "apps" / "components", trees)
    for target in chosen:
        mine = by_target.get(target.rel, [])
        findings += governance.pod_security_labels(mine, locate)
        findings += governance.network_policies(mine, rules, locate)
        findings += slo.slo_tier_labels(mine, locate)
        if not target.kustomize or not mine:
            continue
        tree = trees.tree(target.path(root))
        unmatched = governance.unmatched_patches(tree, target.app or target.rel, mine, target.env)
        findings += unmatched
        if target.app:
            skipped = {
                p.file
                for p in tree.patches
                for f in unmatched
                if (p.kustomization, p.entry_line) == (f.file, f.line)
            }
            findings += governance.version_drift(
                target.path(root), target.rel, trees, mine, target.env, skipped
            )
    by_app: dict[str, list[RenderedDoc]] = {}
    apps = {t.rel: t.app for t in chosen if t.app}
    for doc in docs:
        if doc.target in apps:
            by_app.setdefault(str(apps[doc.target]), []).append(doc)
    if by_app:
        findings += ownership.check(root, by_app, trees, locate)
    return findings


def _located(findings: list[Finding], docs: list[RenderedDoc], trees: Trees, root: Path) -> list[Finding]:
    """Findings that name a key of a rendered object point at the file and line that set it: the
    overlay's patch when the overlay set it, else the file that declares the object."""
    by_ref = {(d.env, d.ref, d.source_file): d for d in docs}
    located = []
    for finding in findings:
        doc = by_ref.get((finding.env, finding.resource, finding.file))
        if doc is None:
            pass
        elif finding.path:
            file, line = trees.locate(root / doc.target, doc, finding.path)
            finding = dataclasses.replace(finding, file=file, line=line or finding.line)
        elif finding.line is None:
            finding = dataclasses.replace(finding, line=trees.declared_line(doc, ()))
        located.append(finding)
    return located


def _grouped(findings: list[Finding]) -> list[Finding]:
    """One mistake made in one place is one finding listing the environments it holds in."""
    envs: dict[Finding, set[str]] = {}
    for finding in set(findings):
        key = dataclasses.replace(finding, env=None)
        envs.setdefault(key, set()).update((finding.env or "").split(",") if finding.env else [""])
    grouped = []
    for key, names in envs.items():
        order = [e for e in ENVIRONMENTS if e in names] + sorted(names - set(ENVIRONMENTS) - {""})
        grouped.append(dataclasses.replace(key, env=",".join(order) or None))
    return grouped


def _target_of(finding: Finding, rels: set[str]) -> str | None:
    """The context target a render finding belongs to (context apps are rendered, not judged)."""
    return next((r for r in rels if within(finding.file, r)), None)


def _order(f: Finding) -> tuple[str, str, int, str, str, str]:
    return (f.env or "", f.file, f.line or 0, f.resource, f.rule, f.message)


def _context_targets(root: Path, chosen: list[Target], envs: set[str]) -> list[Target]:
    """Overlays outside this run that may hold GPUs: the GPU cap is about the whole environment."""
    chosen_rels = {t.rel for t in chosen}
    components = root / "apps" / "components"
    shared_gpu = components.is_dir() and any(_mentions_gpu(p) for p in components.rglob("*") if p.is_file())
    found = []
    for env in sorted(envs):
        for target in targets.all_targets(root, env):
            app = root / "apps" / str(target.app)
            if (
                target.app
                and target.rel not in chosen_rels
                and (shared_gpu or any(_mentions_gpu(p) for p in app.rglob("*")))
            ):
                found.append(target)
    return found


def _mentions_gpu(path: Path) -> bool:
    try:
        if not path.is_file() or path.stat().st_size > safe_yaml.MAX_BYTES:  # too big to render anyway
            return False
        return GPU_KEY.search(path.read_text(errors="replace")) is not None
    except OSError:
        return False


def _schema_sets(configs: dict[str, StackConfig], crds: Path | None) -> dict[str, SchemaSet]:
    """One SchemaSet per cluster version, shared by every environment running that version."""
    by_version: dict[str, SchemaSet] = {}
    sets = {}
    for env, config in configs.items():
        version = config.cluster.kubernetes_version
        try:
            if version not in by_version:
                by_version[version] = SchemaSet(version, crds)
        except LookupError as err:
            raise UsageError(str(err)) from None
        sets[env] = by_version[version]
    return sets


def _schema_checks(docs: list[RenderedDoc], sets: dict[str, SchemaSet], index: SourceIndex) -> list[Finding]:
    """Plain manifests without --env are checked against the dev cluster's version. The source line
    costs a parse of the source file, so it is looked up only for a document with findings."""
    findings = []
    for doc in docs:
        found = sets[doc.env or ENVIRONMENTS[0]].check(doc, None)
        if found:
            line = index.line(doc)
            findings += [dataclasses.replace(f, line=line) for f in found]
    return findings


def _argocd_checks(
    root: Path,
    config: StackConfig,
    env_targets: list[Target],
    env_docs: list[RenderedDoc],
    scopes: SchemaSet,
    index: SourceIndex,
) -> list[Finding]:
    project = argocd.load_project(root, config.environment, config.services.argocd)
    findings = [f for t in env_targets if t.app for f in argocd.check_generator(t, project)]
    return findings + argocd.check_docs(env_docs, project, scopes.is_namespaced, index)


def _isolation_checks(chosen: list[Target], docs: list[RenderedDoc], index: SourceIndex) -> list[Finding]:
    """MLP-NETPOL-DEFAULT-DENY: every model namespace an app renders carries a deny-all policy."""
    findings = []
    by_target: dict[str, list[RenderedDoc]] = {}
    for doc in docs:
        by_target.setdefault(doc.target, []).append(doc)
    for target in (t for t in chosen if t.app):
        mine = by_target.get(target.rel, [])
        denied = {
            (d.doc.get("metadata") or {}).get("namespace")
            for d in mine
            if d.doc.get("kind") == "NetworkPolicy" and _denies_all(d.doc.get("spec") or {})
        }
        for doc in mine:
            namespace = (doc.doc.get("metadata") or {}).get("namespace")
            if doc.doc.get("kind") == "InferenceService" and namespace not in denied:
                findings.append(Finding(
                    doc.source_file, doc.ref, "MLP-NETPOL-DEFAULT-DENY",
                    f"namespace {namespace} gets no default-deny NetworkPolicy from {target.rel}",
                    "include the apps/components/network-isolation component in the app's base",
                    doc.env, index.line(doc),
                ))  # fmt: skip
    return findings


def _denies_all(spec: dict[str, object]) -> bool:
    types = spec.get("policyTypes")
    return (
        spec.get("podSelector") == {}
        and isinstance(types, list)
        and {"Ingress", "Egress"} <= set(types)
        and not spec.get("ingress")
        and not spec.get("egress")
    )


@contextlib.contextmanager
def _policy_scan(docs: Sequence[RenderedDoc], checkov: Checkov | None) -> Iterator[_PolicyScan]:
    """One checkov scan over every rendered object, split over at most one process per CPU core
    (mlplat.policy_scan owns the checks and the split), its first part in `checkov` (None: skipped).
    Its documents are written here, in this thread; `run()` is the part that waits on checkov."""
    if checkov is None:
        yield _PolicyScan(None)
        return
    from mlplat import policy_scan

    try:
        with policy_scan.Scan(docs, started=checkov) as prepared:
            yield _PolicyScan(prepared)
    except policy_scan.PolicyScanError as err:
        raise UsageError(f"checkov scan failed: {err}") from None


@dataclasses.dataclass
class _PolicyScan:
    prepared: Scan | None  # None when skipped (policy_scan is imported only when it is used)

    def run(self) -> tuple[list[Finding], list[Waiver], str | None]:
        if self.prepared is None:
            return (
                [],
                [],
                "checkov scan skipped (--no-policy-scan): CKV_* checks, replica bounds and GPU pools unchecked",
            )
        findings, waivers = self.prepared.run()
        return list(findings), list(waivers), None


def _registry_gate(docs: Sequence[RenderedDoc], url: str, root: Path) -> list[Finding]:
    """Every model version the manifests name exists, is READY, evaluated and (prod) approved."""
    from mlplat import registry_gate

    try:
        return list(registry_gate.check(docs, url, repo_root=root))
    except registry_gate.RegistryUnavailable as err:
        raise UsageError(str(err)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mlplat.validate`: the same command without the rest of the CLI."""
    root = argparse.ArgumentParser(prog="mlplat")
    register(root.add_subparsers(dest="command", required=True))
    args = entrypoint.without_abbreviations(root).parse_args(
        ["validate", *(sys.argv[1:] if argv is None else argv)]
    )
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
