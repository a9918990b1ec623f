"""Which CRDs a plan installs, read from the pinned charts' switches and ../shared/reference/crds; the
reference CRDs' schemas to validate custom resources against."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra import versions
from mlplat.cost import value_at
from tests.support.harness import REFERENCE, RELEASES, Plan, Registered, reference_chart


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((REFERENCE / "crds").rglob("*.yaml")):
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


CRDS = crd_schemas()


# Chart key -> (values switch that installs its CRDs, or None when the chart always installs its
# `crds/` directory; reference folder under ../shared/reference/crds with those CRDs).
CHART_CRDS: dict[str, tuple[str | None, str]] = {
    "kube-prometheus-stack": ("crds.enabled", "prometheus-operator"),
    "cert-manager": ("crds.enabled", "cert-manager"),
    "kserve-crd": (None, "kserve"),
    "vault-secrets-operator": (None, "vault-secrets-operator"),
    "argo-cd": ("crds.install", "argo-cd"),
    "gpu-operator": (None, "gpu-operator"),
    "aws-load-balancer-controller": (None, "aws-load-balancer-controller"),
    # argo-helm argo-workflows-1.0.18 / argo-events-2.4.22 values.yaml `crds.install` (templates/crds*).
    "argo-workflows": ("crds.install", "argo-workflows"),
    "argo-events": ("crds.install", "argo-events"),
    # kedacore/charts v2.20.2 keda/values.yaml `crds.install` (default true; templates/crds/*.yaml).
    "keda": ("crds.install", "keda"),
}


# API groups the Kubernetes API server serves itself (no CRD): the dotted ones, which `is_custom_group`
# would otherwise take for custom groups. Source: the Kubernetes API reference, "API groups".
BUILTIN_GROUPS = frozenset(
    {
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "rbac.authorization.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
    }
)


def is_custom_group(group: str) -> bool:
    """Whether a kind of `group` exists only once a CRD defines it: a CRD's group must be a domain with a
    dot (kubernetes/apiextensions-apiserver pkg/apis/apiextensions/validation/validation.go
    `ValidateCustomResourceDefinitionSpec`; the built-in "", apps, batch, policy have none), and not
    one the API server serves itself."""
    return "." in group and group not in BUILTIN_GROUPS


# Charts rendered resource by resource (helm.sh/v4 Chart) whose templates are CRDs: chart name ->
# (values switch, reference folder). gateway-crds-helm v1.9.0 templates/standard-gatewayapi-crds.yaml
# renders the standard channel when crds.gatewayAPI.channel is `standard` (the reference folder
# holds the standard channel only; the experimental one would be a different set of schemas).
RENDERED_CRDS: dict[str, list[tuple[str, str]]] = {
    "gateway-crds-helm": [
        ("crds.gatewayAPI.enabled", "gateway-api"),
        ("crds.envoyGateway.enabled", "envoy-gateway"),
    ],
}


RENDERED_CHART = "kubernetes:helm.sh/v4:Chart"


@cache
def reference_kinds(folder: str) -> frozenset[tuple[str, str]]:
    kinds = set()
    for path in sorted((REFERENCE / "crds" / folder).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                kinds.add((doc["spec"]["group"], doc["spec"]["names"]["kind"]))
    return frozenset(kinds)


def chart_switch(chart: str, release: Registered, path: str) -> Any:
    """The value of `path` Helm renders with: ours, else the pinned chart's default."""
    ours = value_at(release.inputs.get("values") or {}, path)
    if ours is not None:
        return ours
    defaults, _ = reference_chart(versions.CHARTS[chart].reference)
    return value_at(defaults, path)


def installed_kinds(plan: Plan) -> dict[tuple[str, str], Registered]:
    """(group, kind) of every CRD a release of the plan installs -> that release."""
    installed: dict[tuple[str, str], Registered] = {}
    for name, release in plan.releases().items():
        chart = RELEASES.get(name, "")
        if chart not in CHART_CRDS:
            continue
        switch, folder = CHART_CRDS[chart]
        if switch is not None and chart_switch(chart, release, switch) is not True:
            continue
        assert reference_kinds(folder), f"no reference CRDs in crds/{folder}"
        installed.update(dict.fromkeys(reference_kinds(folder), release))
    for chart in plan.of_type(RENDERED_CHART):
        values = chart.inputs.get("values") or {}
        for switch, folder in RENDERED_CRDS.get(str(chart.inputs["chart"]).rsplit("/", 1)[-1], []):
            standard = folder != "gateway-api" or value_at(values, "crds.gatewayAPI.channel") == "standard"
            if value_at(values, switch) is True and standard:
                installed.update(dict.fromkeys(reference_kinds(folder), chart))
    return installed


# Admission webhooks a chart registers on a custom kind: chart key -> ((group, kind), values path of the
# webhook's failure policy, or None where the chart writes `Fail`). While a `Fail` webhook's server is not
# up, the API server refuses every create and update of the kind, as it does without the CRD.
ADMISSION_WEBHOOKS: dict[str, list[tuple[tuple[str, str], str | None]]] = {
    # kserve/kserve v0.20.0 charts/kserve-resources/files/kserve/resources.yaml L553-612 (mutating) and
    # L677-708 (validating) `inferenceservice.serving.kserve.io`: `failurePolicy: Fail`.
    "kserve": [(("serving.kserve.io", "InferenceService"), None)],
    # kedacore/charts v2.20.2 keda/templates/webhooks/validatingconfiguration.yaml `vscaledobject.kb.io`:
    # `failurePolicy: {{ .Values.webhooks.failurePolicy }}` (values.yaml default `Ignore`).
    "keda": [(("keda.sh", "ScaledObject"), "webhooks.failurePolicy")],
}


def refusing_webhooks(plan: Plan) -> dict[tuple[str, str], list[Registered]]:
    """(group, kind) -> the releases of the plan whose `Fail` admission webhooks intercept it."""
    found: dict[tuple[str, str], list[Registered]] = {}
    for name, release in plan.releases().items():
        chart = RELEASES.get(name, "")
        for kind, policy in ADMISSION_WEBHOOKS.get(chart, []):
            if policy is None or chart_switch(chart, release, policy) == "Fail":
                found.setdefault(kind, []).append(release)
    return found
