"""An app's HTTPRoute through the platform Gateway: attached where it should be, to what the app owns,
with the traffic split its InferenceService declares (issue 16; apps/README.md "Traffic split").

The HTTPRoute's shape is checked against the Gateway API CRD like any custom resource (schemas.py);
this module judges what a schema cannot:

- MLP-ROUTE-PARENT: a parentRef other than the platform Gateway (listener `https` of Gateway
  `mlplat-gateway/inference`, named by sectionName), or none: the route would attach to another Gateway or to nothing.
- MLP-ROUTE-BACKEND: a backendRef (or a RequestMirror's) that is not a predictor Service of the app's
  own InferenceService on KServe's Service port: another namespace, another app's Service, a kind
  other than Service. KServe v0.20.0 names the stable predictor's Service `<isvc>-predictor` and a
  canary's `<isvc>-<canary predictor name>-predictor`, port 80 (pkg/constants/constants.go
  PredictorServiceName, CommonDefaultHttpPort).
- MLP-ROUTE-PATH: a rule that does not match under the path prefix `/<namespace>/<isvc>` of the app, so it could
  take another app's requests (or, with no match, every request no other route claims).
- MLP-ROUTE-WEIGHTS: a rule whose weights do not give the declared split: the default rule sends the
  stable backend 100 minus the canaries' `trafficPercent` and each canary its `trafficPercent` (so
  they add up to 100); a rule matching header `x-mlplat-variant: v<N>` sends 100 to version N and 0
  to the others. A backend left out counts as weight 0, a weight left out as 1 (the Gateway API
  default).
- MLP-ROUTE-VERSION: a backendRef without its own RequestHeaderModifier setting
  `x-mlplat-model-version` to the version it serves, or a variant header naming a version the app
  does not run. Without a filter per backendRef Envoy Gateway v1.9.0 puts every backend of a rule in
  one Envoy cluster (internal/ir/xds.go RouteDestination.NeedsClusterPerSetting), and the
  gateway's per-version metrics cannot tell stable from canary.
- MLP-ROUTE-MISSING: an app's InferenceService has no HTTPRoute to its predictor: unreachable
  through the Gateway (component `gateway-route`).
- MLP-ROUTE-FILTER: a filter (on a rule or a backendRef) other than the header modifiers, a mirror
  to the app's own predictors and a URL rewrite. The Gateway API v1.6.1 HTTPRoute CRD also offers
  RequestRedirect (sends clients to any scheme, host or path under the platform's name: an open
  redirect), ExtensionRef (hands the request to an implementation object, e.g. Envoy Gateway's
  HTTPRouteFilter, which can answer requests itself or add credentials) and CORS (lets other sites'
  scripts call the model from users' browsers); none is the app team's to switch on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from infra.contract import MODEL_VERSION_ANNOTATION as VERSION_ANNOTATION
from mlplat.findings import Finding, RenderedDoc

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY = ("mlplat-gateway", "inference")  # namespace, name: the one platform Gateway
LISTENER = "https"
SERVICE_PORT = 80  # KServe v0.20.0 CommonDefaultHttpPort: every predictor Service listens on 80
VERSION_HEADER = "x-mlplat-model-version"
VARIANT_HEADER = "x-mlplat-variant"
HEADER_FILTER = "RequestHeaderModifier"
# Filter types an app's route may use (the component's rewrite and version header, mirroring, headers).
ALLOWED_FILTERS = frozenset({HEADER_FILTER, "ResponseHeaderModifier", "RequestMirror", "URLRewrite"})
WHY_NOT = {
    "RequestRedirect": "sends clients to another scheme, host or path under the platform's name (an open redirect)",
    "ExtensionRef": "hands requests to an implementation object (e.g. an Envoy Gateway HTTPRouteFilter, which "
    "can answer requests itself or add credentials) that this gate does not judge",
    "CORS": "lets other websites' scripts call the model from users' browsers",
}


@dataclass(frozen=True)
class Backend:
    """A predictor Service of an InferenceService: its name, the model version it serves, its share."""

    service: str
    version: str | None
    percent: int | None


def predictor_backends(isvc: dict[str, Any]) -> dict[str, Backend]:
    """The stable predictor's and every canary's Service, by Service name (KServe v0.20.0 naming)."""
    meta = isvc.get("metadata") or {}
    spec = isvc.get("spec") or {}
    name = str(meta.get("name"))
    canaries = [c for c in spec.get("canary") or [] if isinstance(c, dict)]
    percents = [c.get("trafficPercent") for c in canaries]
    canary_total = sum(p for p in percents if isinstance(p, int))
    stable_name = ((spec.get("predictor") or {}).get("name")) or ""
    stable = f"{name}-{stable_name}-predictor" if stable_name else f"{name}-predictor"
    version = (meta.get("annotations") or {}).get(VERSION_ANNOTATION)
    backends = {stable: Backend(stable, str(version) if version is not None else None, 100 - canary_total)}
    for canary, percent in zip(canaries, percents, strict=True):
        predictor = str((canary.get("predictor") or {}).get("name"))
        service = f"{name}-{predictor}-predictor"
        canary_version = predictor[1:] if predictor.startswith("v") and predictor[1:].isdigit() else None
        backends[service] = Backend(service, canary_version, percent if isinstance(percent, int) else None)
    return backends


def check(docs: Sequence[RenderedDoc], apps: set[str]) -> list[Finding]:
    """Every HTTPRoute of `docs`, judged against the InferenceServices of the same target and namespace;
    `apps` are the targets that are model apps (they must route to each InferenceService)."""
    findings: list[Finding] = []
    by_target: dict[tuple[str | None, str], list[RenderedDoc]] = {}
    for doc in docs:
        by_target.setdefault((doc.env, doc.target), []).append(doc)
    for (_, target), mine in by_target.items():
        services = [d for d in mine if d.doc.get("kind") == "InferenceService"]
        routes = [d for d in mine if d.doc.get("kind") == "HTTPRoute"]
        for route in routes:
            namespace = _meta(route.doc).get("namespace")
            own = [s.doc for s in services if _meta(s.doc).get("namespace") == namespace]
            findings += _route(route, own)
        if target in apps:
            findings += _missing(services, routes)
    return findings


def _route(route: RenderedDoc, services: list[dict[str, Any]]) -> Iterator[Finding]:
    spec = _map(route.doc.get("spec"))
    yield from _parents(route, spec.get("parentRefs"))
    if spec.get("hostnames"):
        # Envoy Gateway v1.9.0 makes one virtual host per route hostname and Envoy prefers any named
        # or *.suffix virtual host over the catch-all one every app's route shares
        # (internal/xds/translator/translator.go, "1:1 between IR HTTPRoute Hostname and xDS
        # VirtualHost"): one app naming a host would take the other apps' requests for it.
        yield _finding(
            route,
            "MLP-ROUTE-HOSTNAME",
            f"sets hostnames {spec['hostnames']}: a named host outranks the shared catch-all host every "
            "app's route is served under, so this route would take other apps' requests",
            "spec/hostnames",
        )
    backends = {k: v for s in services for k, v in predictor_backends(s).items()}
    prefixes = {f"/{_meta(s).get('namespace')}/{_meta(s).get('name')}" for s in services}
    rules = spec["rules"] if isinstance(spec.get("rules"), list) else []
    for i, rule in enumerate(rules):
        rule = rule if isinstance(rule, dict) else {}
        where = f"spec/rules/[{i}]"
        yield from _paths(route, rule, where, prefixes)
        refs = [r if isinstance(r, dict) else {} for r in rule.get("backendRefs") or []]
        yield from _filters(route, rule, where)
        for j, ref in enumerate(refs):
            yield from _backend(route, ref, f"{where}/backendRefs/[{j}]", backends, _route_ns(route))
            yield from _version_filter(route, ref, f"{where}/backendRefs/[{j}]", backends)
            yield from _filters(route, ref, f"{where}/backendRefs/[{j}]", on_backend=True)
        for k, mirror in _mirrors(rule):
            yield from _backend(route, mirror, f"{where}/filters/[{k}]/requestMirror/backendRef", backends,
                                _route_ns(route))  # fmt: skip
        yield from _weights(route, rule, refs, where, backends)


def _route_ns(route: RenderedDoc) -> Any:
    return _meta(route.doc).get("namespace")


def _parents(route: RenderedDoc, parents: Any) -> Iterator[Finding]:
    if not isinstance(parents, list) or not parents:
        yield _finding(route, "MLP-ROUTE-PARENT", "has no parentRefs: it attaches to no Gateway", "spec")
        return
    for i, parent in enumerate(parents):
        parent = parent if isinstance(parent, dict) else {}
        platform = (
            parent.get("group", GATEWAY_GROUP) == GATEWAY_GROUP
            and parent.get("kind", "Gateway") == "Gateway"
            and (parent.get("namespace"), parent.get("name")) == GATEWAY
            # Named, not left out: without sectionName a route attaches to every listener of the
            # Gateway, a plain-HTTP one included.
            and parent.get("sectionName") == LISTENER
        )
        if not platform:
            shown = f"{parent.get('kind', 'Gateway')} {parent.get('namespace', _route_ns(route))}/{parent.get('name')}"
            section = f" section {parent['sectionName']}" if "sectionName" in parent else " (every listener)"
            yield _finding(
                route,
                "MLP-ROUTE-PARENT",
                f"parentRefs[{i}] is {shown}{section}, not the platform Gateway "
                f"{GATEWAY[0]}/{GATEWAY[1]} (listener {LISTENER})",
                f"spec/parentRefs/[{i}]",
            )


def _paths(route: RenderedDoc, rule: dict[str, Any], where: str, prefixes: set[str]) -> Iterator[Finding]:
    matches = rule.get("matches")
    if not isinstance(matches, list) or not matches:
        yield _finding(
            route, "MLP-ROUTE-PATH",
            f"rule {where} has no matches: it takes every request of the Gateway no other route claims",
            where,
        )  # fmt: skip
        return
    for m, match in enumerate(matches):
        path = (match if isinstance(match, dict) else {}).get("path") or {"type": "PathPrefix", "value": "/"}
        if not (isinstance(path, dict) and path.get("type", "PathPrefix") == "PathPrefix"
                and path.get("value") in prefixes):  # fmt: skip
            yield _finding(
                route, "MLP-ROUTE-PATH",
                f"{where}/matches/[{m}] matches path {_short_path(path)}, not the app's prefix "
                f"({', '.join(sorted(prefixes)) or 'no InferenceService in this namespace'})",
                f"{where}/matches/[{m}]",
            )  # fmt: skip


def _short_path(path: Any) -> str:
    return f"{path.get('type', 'PathPrefix')} {path.get('value')}" if isinstance(path, dict) else repr(path)


def _backend(
    route: RenderedDoc, ref: dict[str, Any], where: str, backends: dict[str, Backend], namespace: Any
) -> Iterator[Finding]:
    kind = (ref.get("group", ""), ref.get("kind", "Service"))
    ns = ref.get("namespace", namespace)
    wrong = next(
        (key for key, bad in (("group", kind[0] != ""), ("kind", kind[1] != "Service"), ("namespace", ns != namespace),
                              ("name", ref.get("name") not in backends)) if bad),
        None,
    )  # fmt: skip
    if wrong is not None:  # the path names the offending key, so the finding points at what set it
        owned = ", ".join(sorted(backends)) or "none: no InferenceService in this namespace"
        yield _finding(
            route, "MLP-ROUTE-BACKEND",
            f"{where} is {kind[1]} {ns}/{ref.get('name')}, not a predictor Service of this app "
            f"(in {namespace}: {owned})",
            f"{where}/{wrong}",
        )  # fmt: skip
    elif ref.get("port") != SERVICE_PORT:
        yield _finding(
            route, "MLP-ROUTE-BACKEND",
            f"{where} uses port {ref.get('port')!r}; KServe's predictor Services listen on {SERVICE_PORT}",
            f"{where}/port",
        )  # fmt: skip


def _version_filter(
    route: RenderedDoc, ref: dict[str, Any], where: str, backends: dict[str, Backend]
) -> Iterator[Finding]:
    backend = backends.get(str(ref.get("name")))
    if backend is None:
        return  # MLP-ROUTE-BACKEND says it
    set_values = [
        header.get("value")
        for f in ref.get("filters") or []
        if isinstance(f, dict) and f.get("type") == HEADER_FILTER
        for header in (f.get("requestHeaderModifier") or {}).get("set") or []
        if isinstance(header, dict) and str(header.get("name", "")).lower() == VERSION_HEADER
    ]
    if set_values != [backend.version]:
        yield _finding(
            route, "MLP-ROUTE-VERSION",
            f"{where} ({backend.service}, version {backend.version}) sets {VERSION_HEADER} to "
            f"{', '.join(map(repr, set_values)) or 'nothing'}: each backendRef needs its own "
            f"{HEADER_FILTER} with its version, or the gateway's metrics merge the versions",
            where,
        )  # fmt: skip


def _variant(rule: dict[str, Any]) -> str | None:
    """The version a rule pins with header x-mlplat-variant: v<N> (None for the default rule)."""
    for match in rule.get("matches") or []:
        for header in (match if isinstance(match, dict) else {}).get("headers") or []:
            if isinstance(header, dict) and str(header.get("name", "")).lower() == VARIANT_HEADER:
                return str(header.get("value"))
    return None


def _weights(
    route: RenderedDoc,
    rule: dict[str, Any],
    refs: list[dict[str, Any]],
    where: str,
    backends: dict[str, Backend],
) -> Iterator[Finding]:
    variant = _variant(rule)
    if variant is None:
        expected = {b.service: b.percent for b in backends.values()}
        said = "the InferenceService's split (stable 100 minus the canaries' trafficPercent)"
    else:
        pinned = [b for b in backends.values() if f"v{b.version}" == variant]
        if not pinned:
            runs = ", ".join(f"v{b.version}" for b in backends.values())
            yield _finding(
                route, "MLP-ROUTE-VERSION",
                f"rule {where} pins {VARIANT_HEADER}: {variant}, a version this app does not run ({runs})",
                where,
            )  # fmt: skip
            return
        expected = {b.service: 100 if b in pinned else 0 for b in backends.values()}
        said = f"header {VARIANT_HEADER}: {variant} (100 to that version, 0 to the others)"
    weights = [ref.get("weight", 1) for ref in refs]
    if not all(type(w) is int for w in weights):
        return  # the CRD types weight as an integer: MLP-SCHEMA says it
    actual: dict[str, int] = {}
    for ref, weight in zip(refs, weights, strict=True):
        actual[str(ref.get("name"))] = actual.get(str(ref.get("name")), 0) + weight
    total = sum(actual.values())
    wrong = {
        name: (actual.get(name, 0), share) for name, share in expected.items() if actual.get(name, 0) != share
    }
    if total != 100 or wrong:
        detail = ", ".join(f"{name} {got} (want {want})" for name, (got, want) in sorted(wrong.items()))
        yield _finding(
            route, "MLP-ROUTE-WEIGHTS",
            f"rule {where} weights add up to {total}, not 100" + (f"; {detail}" if detail else "")
            + f"; the split must be {said}",
            f"{where}/backendRefs",
        )  # fmt: skip


def _filters(
    route: RenderedDoc, holder: dict[str, Any], where: str, on_backend: bool = False
) -> Iterator[Finding]:
    """MLP-ROUTE-FILTER for each filter of a rule or backendRef whose type apps may not use. A mirror
    belongs on the rule, where MLP-ROUTE-BACKEND holds its target to the app's own predictors."""
    filters = holder.get("filters")
    for k, f in enumerate(filters if isinstance(filters, list) else []):
        kind = _map(f).get("type")
        if kind not in ALLOWED_FILTERS or (on_backend and kind == "RequestMirror"):
            why = WHY_NOT.get(str(kind), "is not a filter the platform lets apps use")
            if kind == "RequestMirror":
                why = "on a backendRef mirrors where no rule of this gate looks; put the mirror on the rule"
            yield _finding(route, "MLP-ROUTE-FILTER", f"filter {kind}: {why}", f"{where}/filters/[{k}]/type")


def _mirrors(rule: dict[str, Any]) -> Iterable[tuple[int, dict[str, Any]]]:
    """(index among the rule's filters, backendRef) of each RequestMirror: the index is the filter's
    own, so a finding's path points at the mirror, not at another filter before it."""
    for k, f in enumerate(rule.get("filters") or []):
        if isinstance(f, dict) and f.get("type") == "RequestMirror":
            yield k, (f.get("requestMirror") or {}).get("backendRef") or {}


def _missing(services: list[RenderedDoc], routes: list[RenderedDoc]) -> Iterator[Finding]:
    routed = {
        (_route_ns(r), (ref if isinstance(ref, dict) else {}).get("name"))
        for r in routes
        for rule in ((r.doc.get("spec") or {}).get("rules") or [])
        if isinstance(rule, dict)
        for ref in rule.get("backendRefs") or []
    }
    for service in services:
        namespace = _meta(service.doc).get("namespace")
        stable = next(iter(predictor_backends(service.doc)))
        if (namespace, stable) not in routed:
            yield Finding(
                service.source_file, service.ref, "MLP-ROUTE-MISSING",
                f"no HTTPRoute sends traffic to {stable}: the model is unreachable through the Gateway",
                "include the apps/components/gateway-route component in the app's base",
                service.env,
            )  # fmt: skip


def _meta(doc: dict[str, Any]) -> dict[str, Any]:
    return _map(doc.get("metadata"))


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


FIXES = {
    "MLP-ROUTE-PARENT": f"attach the route to Gateway {GATEWAY[0]}/{GATEWAY[1]}, sectionName {LISTENER} "
    "(component apps/components/gateway-route) and nothing else",
    "MLP-ROUTE-BACKEND": "route only to the app's predictor Services in its own namespace on port 80 "
    "(<isvc>-predictor, <isvc>-v<N>-predictor for a canary)",
    "MLP-ROUTE-PATH": "match only under PathPrefix /<namespace>/<isvc> (component apps/components/gateway-route)",
    "MLP-ROUTE-HOSTNAME": "remove spec.hostnames: apps are told apart by their path prefix, under the listener's host",
    "MLP-ROUTE-WEIGHTS": "set the split with `mlplat promote --canary P` / `mlplat rollback`, not by hand",
    "MLP-ROUTE-VERSION": f"give each backendRef a {HEADER_FILTER} filter setting {VERSION_HEADER} to its "
    "version (the overlay's replacement does it for the stable one), and pin only versions the app runs",
    "MLP-ROUTE-FILTER": f"remove the filter: apps may use {', '.join(sorted(ALLOWED_FILTERS))}; ask the platform "
    "team for anything else",
}


def _finding(route: RenderedDoc, rule: str, message: str, path: str) -> Finding:
    return Finding(
        route.source_file, route.ref, rule, f"HTTPRoute {message}", FIXES[rule], route.env, None, path,
    )  # fmt: skip
