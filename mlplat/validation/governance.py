"""Rules an app cannot be trusted to keep by convention: what it serves, what it may switch off.

- MLP-REMOTE-RESOURCE: a kustomization names content that is not a file or folder of the repository
  (kustomize fetches it at sync time, reviewed nowhere).
- MLP-REFERENCE-SCOPE: an app's kustomization reads outside its app folder and apps/components/, so a
  change there would not make `--changed` validate the app again.
- MLP-OVERLAY-TOOL: an overlay Argo CD would not build with kustomize (no kustomization, a Helm chart).
- MLP-ARGOCD-SOURCE: a `.argocd-source*.yaml` under apps/, which Argo CD merges into the source.
- MLP-PROMOTE-JOURNAL: `mlplat promote`'s crash journal in an app's overlays/ (promote trusts its own only
  from where git cannot carry it).
- MLP-APP-LAYOUT: an app folder without overlays/, an overlay named after no environment, an overlays/
  folder among the shared components (Argo CD would deploy them as an app).
- MLP-PATCH-UNMATCHED: a `patches:` entry whose `target:` matches no object; kustomize skips it
  without a word (a typo in a target name bypassed the prod approval gate).
- MLP-VERSION-DRIFT: the rendered InferenceService does not carry what the overlay's
  `model-version.yaml` / `canary.yaml` declare, so the repository claims one version and serves another.
- MLP-POD-SECURITY-LABEL: an app's Namespace must keep Pod Security `restricted` (enforce, audit,
  warn; versions `latest`), https://kubernetes.io/docs/concepts/security/pod-security-admission/.
- MLP-NETPOL-WIDENS: a NetworkPolicy rule must be covered by a rule of the shared components
  (apps/components/): same direction, every peer one of the component rule's peers, ports within
  its ports. NetworkPolicies only ever add allowed traffic, so anything else widens isolation.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplat.findings import Finding, Locate, RenderedDoc, label_finding
from mlplat.validation.trees import COMPONENTS_AS_APP, Reference, Selector, Tree, Trees, construct, key_line

VERSION_FILES = ("model-version.yaml", "canary.yaml")
PSA_PREFIX = "pod-security.kubernetes.io/"
PSA_REQUIRED = {f"{PSA_PREFIX}{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
PSA_VERSION = "latest"


def refused_before_render(tree: Tree, env: str | None) -> list[Finding]:
    """What validate refuses before kustomize runs (the target is then not rendered): content from
    outside the repository (MLP-REMOTE-RESOURCE) or the app (MLP-REFERENCE-SCOPE), and an app path
    Argo CD would deploy otherwise than validate renders it (MLP-OVERLAY-TOOL, MLP-ARGOCD-SOURCE,
    MLP-APP-LAYOUT) or holds a promote journal (MLP-PROMOTE-JOURNAL)."""
    return [_reference_finding(ref, env) for ref in tree.remote] + [
        Finding(problem.file, "-", problem.rule, *APP_PATH_RULES[problem.rule](problem.problem), env)
        for problem in tree.app_path
    ]


def _reference_finding(ref: Reference, env: str | None) -> Finding:
    if ref.outside:
        return Finding(
            ref.file,
            "-",
            "MLP-REMOTE-RESOURCE",
            f"{ref.ref!r} is no file or folder of this repository: kustomize would fetch it from elsewhere "
            "at build time (or fail), and nobody reviews that content",
            "copy what you need into the app (or propose a shared component under apps/components/) and "
            "reference it by a relative path",
            env,
            ref.line,
        )
    return Finding(
        ref.file,
        "-",
        "MLP-REFERENCE-SCOPE",
        f"{ref.ref!r} lies outside {ref.scope}: `mlplat validate --changed` would not validate this app "
        "again when it changes",
        f"keep what the app reads in {ref.scope} (what several apps share is a component under apps/components/)",
        env,
        ref.line,
    )


# rule -> (message, fix) for an app path's problem (trees.AppPath.problem)
APP_PATH_RULES: dict[str, Callable[[str], tuple[str, str]]] = {
    "MLP-OVERLAY-TOOL": lambda problem: (
        f"{problem}: Argo CD would not build this app path with kustomize ("
        + (
            "it applies every YAML file of a folder without a kustomization as plain manifests"
            if problem == "no kustomization"
            else "a file named *Chart.yaml can make it a Helm chart"
        )
        + "), so what it deploys is not what validate renders",
        "keep exactly a kustomization.yaml and the files it names in the overlay",
    ),
    "MLP-ARGOCD-SOURCE": lambda problem: (
        f"{problem} (patches, images, replicas, or another tool) after validate judged the app",
        "delete it: an app's settings belong in its kustomization, where validate renders them",
    ),
    "MLP-PROMOTE-JOURNAL": lambda problem: (
        f"{problem} in the app's overlays, left by a promote interrupted outside git or planted: a git "
        "checkout keeps its journal in the git directory and never reads this one, but a copy outside git "
        "would restore what it lists without the registry gate",
        "delete it and never commit it",
    ),
    "MLP-APP-LAYOUT": lambda problem: (
        f"{problem}: "
        + (
            "the shared components are kustomize Components, not an app: every environment's ApplicationSet "
            "excludes this folder, so nothing in it is ever deployed"
            if problem == COMPONENTS_AS_APP
            else "no environment's ApplicationSet deploys this folder as an app"
        ),
        "put the app at apps/<app>/base with one overlay per environment, apps/<app>/overlays/<env>",
    ),
}


def unmatched_patches(tree: Tree, app: str, docs: Sequence[RenderedDoc], env: str | None) -> list[Finding]:
    findings = []
    seen: set[tuple[str, int]] = set()
    for patch in tree.patches:
        key = (patch.kustomization, patch.entry_line)
        if not patch.explicit_target or key in seen or patch.selector is None:
            continue
        seen.add(key)
        if not any(patch.selector.matches(d.doc) for d in docs):
            objects = {f"{d.doc.get('kind')}/{(d.doc.get('metadata') or {}).get('name')}": d for d in docs}
            same_kind = [o for o, d in objects.items() if Selector(kind=patch.selector.kind).matches(d.doc)]
            kinds = sorted(same_kind or objects)
            findings.append(
                Finding(
                    patch.kustomization,
                    "-",
                    "MLP-PATCH-UNMATCHED",
                    f"patch target {patch.selector} matches no object {app} renders, so kustomize skips it "
                    f"silently and nothing in {patch.file} takes effect",
                    f"fix the target to name one of: {', '.join(kinds)}",
                    env,
                    patch.entry_line,
                )
            )
    return findings


def version_drift(
    overlay: Path,
    rel_overlay: str,
    trees: Trees,
    docs: Sequence[RenderedDoc],
    env: str | None,
    skip: set[str],
) -> list[Finding]:
    """Every value model-version.yaml and canary.yaml set must be what the InferenceService renders with."""
    findings = []
    for name in VERSION_FILES:
        file = f"{rel_overlay}/{name}"
        if not (overlay / name).is_file() or file in skip:
            continue
        for node in trees.nodes(overlay / name):
            declared = construct(node)
            if not isinstance(declared, dict):
                continue
            isvc_name = (declared.get("metadata") or {}).get("name")
            rendered = next(
                (
                    d
                    for d in docs
                    if d.doc.get("kind") == "InferenceService" and d.doc["metadata"].get("name") == isvc_name
                ),
                None,
            )
            if rendered is None:
                findings.append(
                    Finding(
                        file,
                        f"InferenceService/-/{isvc_name}",
                        "MLP-VERSION-DRIFT",
                        f"{name} names InferenceService {isvc_name!r}, which this overlay does not render",
                        "set metadata.name to the app's InferenceService name",
                        env,
                        key_line(node, ("metadata", "name")),
                    )
                )
                continue
            for path, value in _leaves(declared, ()):
                if path in (("apiVersion",), ("kind",), ("metadata", "name")):
                    continue
                actual = _get(rendered.doc, path)
                if actual != value:
                    dotted = ".".join(map(str, path))
                    findings.append(
                        Finding(
                            file,
                            rendered.ref,
                            "MLP-VERSION-DRIFT",
                            f"{name} declares {dotted} = {_short(value)}, but the rendered InferenceService "
                            f"carries {_short(actual)}: a later patch or component overrides it",
                            f"remove what overrides {dotted} after {name}, or change it here through "
                            "`mlplat promote`/`mlplat rollback`",
                            env,
                            key_line(node, path),
                        )
                    )
    return findings


def pod_security_labels(docs: Iterable[RenderedDoc], locate: Locate) -> list[Finding]:
    findings = []
    for doc in docs:
        if doc.doc.get("kind") != "Namespace":
            continue
        labels = doc.labels
        problems = [
            (key, f"{key} is {labels.get(key)!r}, not {want!r}")
            for key, want in PSA_REQUIRED.items()
            if labels.get(key) != want
        ]
        problems += [
            (key, f"{key} is {value!r}")
            for key, value in labels.items()
            if str(key).startswith(PSA_PREFIX)
            and key not in PSA_REQUIRED
            and not (str(key).removeprefix(PSA_PREFIX) in {f"{m}-version" for m in ("enforce", "audit", "warn")}
                     and value == PSA_VERSION)
        ]  # fmt: skip
        if not problems:
            continue
        findings.append(
            label_finding(
                doc,
                locate,
                problems[0][0],
                "MLP-POD-SECURITY-LABEL",
                "an app may not change its namespace's Pod Security level: "
                + "; ".join(p for _, p in problems),
                "keep pod-security.kubernetes.io/{enforce,audit,warn}: restricted (versions: latest) as "
                "apps/README.md says; a pod that needs more is a platform workload, not a model app",
            )
        )
    return findings


@dataclass(frozen=True)
class Rule:
    """One allowed NetworkPolicy rule of the components: direction, peers (None = any), ports (None = any)."""

    direction: str  # ingress / egress
    peers: tuple[Any, ...] | None
    ports: frozenset[tuple[str, str]] | None
    where: str


def component_rules(components: Path, trees: Trees) -> list[Rule]:
    """The NetworkPolicy rules the shared components declare."""
    rules = []
    for path in sorted(components.rglob("*.yaml")) if components.is_dir() else []:
        for node in trees.nodes(path):
            doc = construct(node)
            if not isinstance(doc, dict) or doc.get("kind") != "NetworkPolicy":
                continue
            spec = doc.get("spec") or {}
            for direction, peer_key in (("ingress", "from"), ("egress", "to")):
                for rule in spec.get(direction) or []:
                    if not isinstance(rule, dict):
                        continue
                    peers = rule.get(peer_key)
                    rules.append(
                        Rule(
                            direction,
                            tuple(peers) if peers else None,
                            _ports(rule.get("ports")),
                            f"{path.name} {(doc.get('metadata') or {}).get('name')}",
                        )
                    )
    return rules


def network_policies(docs: Iterable[RenderedDoc], allowed: Sequence[Rule], locate: Locate) -> list[Finding]:
    findings = []
    for doc in docs:
        if doc.doc.get("kind") != "NetworkPolicy":
            continue
        spec = doc.doc.get("spec") or {}
        for direction, peer_key in (("ingress", "from"), ("egress", "to")):
            for i, rule in enumerate(spec.get(direction) or []):
                rule = rule if isinstance(rule, dict) else {}
                problem, path = _widening(rule, direction, peer_key, allowed)
                if problem is None:
                    continue
                where = f"spec/{direction}/[{i}]" + (f"/{path}" if path else "")
                file, line = locate(doc, where)
                findings.append(
                    Finding(
                        file,
                        doc.ref,
                        "MLP-NETPOL-WIDENS",
                        f"{direction} rule {i} {problem}; an app's NetworkPolicies may only narrow what the "
                        "components allow",
                        "name each peer with a namespaceSelector/podSelector the components already allow, "
                        "and only their ports; need a new flow? propose it in apps/components/ (platform review)",
                        doc.env,
                        line,
                        where,
                    )
                )
    return findings


def _widening(
    rule: dict[str, Any], direction: str, peer_key: str, allowed: Sequence[Rule]
) -> tuple[str | None, str]:
    peers = rule.get(peer_key)
    candidates = [r for r in allowed if r.direction == direction]
    if not peers and not any(r.peers is None for r in candidates):
        return f"has no `{peer_key}`: it admits every source and destination", ""
    for j, peer in enumerate(peers or []):
        if not peer:
            return f"has an empty peer `{{}}` in `{peer_key}`: it matches everything", f"{peer_key}/[{j}]"
        block = peer.get("ipBlock") if isinstance(peer, dict) else None
        if isinstance(block, dict) and _is_everything(block.get("cidr")):
            return f"opens ipBlock {block.get('cidr')}", f"{peer_key}/[{j}]/ipBlock/cidr"
        if not any(r.peers is None or _covered(peer, r.peers) for r in candidates):
            what = f"ipBlock {block.get('cidr')}" if isinstance(block, dict) else f"peer {peer}"
            return f"allows {what}, which no component rule allows", f"{peer_key}/[{j}]"
    ports = _ports(rule.get("ports"))
    covering = [
        r for r in candidates if r.peers is None or (peers and all(_covered(p, r.peers) for p in peers))
    ]
    if not any(r.ports is None or (ports is not None and ports <= r.ports) for r in covering):
        allowed_ports = sorted({p for r in covering for p in (r.ports or [])})
        shown = (
            "every port" if ports is None else ", ".join(f"{proto} {port}" for proto, port in sorted(ports))
        )
        limit = ", ".join(f"{proto} {port}" for proto, port in allowed_ports) or "none"
        return f"allows {shown} beyond the components' ports for these peers ({limit})", "ports"
    return None, ""


def _covered(peer: Any, allowed: tuple[Any, ...]) -> bool:
    if peer in allowed:
        return True
    block = peer.get("ipBlock") if isinstance(peer, dict) else None
    if not isinstance(block, dict) or set(peer) != {"ipBlock"}:
        return False
    for other in allowed:
        other_block = other.get("ipBlock") if isinstance(other, dict) else None
        if isinstance(other_block, dict) and _within(block.get("cidr"), other_block.get("cidr")):
            return True
    return False


def _within(cidr: Any, outer: Any) -> bool:
    try:
        inner_net, outer_net = ipaddress.ip_network(str(cidr), strict=False), ipaddress.ip_network(str(outer))
    except ValueError:
        return False
    return inner_net.version == outer_net.version and inner_net.subnet_of(outer_net)  # type: ignore[arg-type]


def _is_everything(cidr: Any) -> bool:
    try:
        return ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0
    except ValueError:
        return False


def _ports(ports: Any) -> frozenset[tuple[str, str]] | None:
    if not ports:
        return None
    return frozenset(
        (
            str(p.get("protocol", "TCP")),
            str(p.get("port", "*")) + (f"-{p['endPort']}" if "endPort" in p else ""),
        )
        for p in ports
        if isinstance(p, dict)
    )


def _leaves(value: Any, path: tuple[Any, ...]) -> Iterable[tuple[tuple[Any, ...], Any]]:
    """Scalar leaves of a mapping; a list counts as one value (lists in a CRD patch replace)."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, (*path, key))
    else:
        yield path, value


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
