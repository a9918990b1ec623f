"""Values keys against the pinned charts' upstream defaults/schemas; CRs against the reference CRDs."""

from __future__ import annotations

from fnmatch import fnmatch
from typing import Any

import jsonschema
import pytest

from infra import versions
from infra.services.chart import deep_merge
from tests.support.crds import CRDS
from tests.support.harness import REFERENCE, RELEASES, Plan, reference_chart, switched_off
from tests.support.values_keys import SUBCHARTS, unknown_keys


def _reference(chart_key: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    pin = versions.CHARTS[chart_key]
    folder = REFERENCE / "charts" / pin.reference
    if not any((folder / name).exists() for name in ("values.yaml", "values.tmpl.yaml")):
        return None
    defaults, schema = reference_chart(pin.reference)
    for key, folder in SUBCHARTS.get(pin.reference, {}).items():
        defaults[key] = deep_merge(reference_chart(folder)[0], defaults.get(key) or {})
    return defaults, schema


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_every_values_key_exists_in_the_chart(plan: Plan, release: str) -> None:
    if release in switched_off(plan.env):
        assert release not in plan.releases(), f"{plan.env}: {release} is switched off but installed"
        return
    r = plan.releases()[release]
    values = r.inputs.get("values") or {}
    reference = _reference(RELEASES[release])
    if reference is None:
        assert values == {}, f"{r.urn}: values for a chart without reference defaults"
        return
    defaults, schema = reference
    unknown = unknown_keys(versions.CHARTS[RELEASES[release]].reference, values, defaults, schema)
    assert not unknown, f"{r.urn}: keys not in {RELEASES[release]}'s defaults or schema: {unknown}"
    if schema is not None:
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(deep_merge(defaults, values)), key=str)
        assert not errors, f"{r.urn}: values.schema.json: {[f'{list(e.path)}: {e.message}' for e in errors]}"


def test_the_key_check_catches_a_misspelling() -> None:
    defaults, schema = _reference("vault") or ({}, None)
    wrong = {
        "server": {"ha": {"replica": 3}, "auditStorage": {"enabled": True}},
        "falcosidekick": {"enabled": True},
    }
    assert unknown_keys("vault", wrong, defaults, schema) == ["server.ha.replica", "falcosidekick"]
    defaults, _ = _reference("falco") or ({}, None)
    assert unknown_keys("falco", {"falcosidekick": {"config": {"alertmanger": {}}}}, defaults, None) == [
        "falcosidekick.config.alertmanger"
    ]


def test_no_secret_value_reaches_a_values_file_or_release(plan: Plan) -> None:
    # MinIO user names and the names of its TLS Secret and key file travel as Pulumi secrets (the
    # policy pack treats access keys and `privateKey`/`*Secret` keys as sensitive); every real
    # credential comes from an existing Secret instead.
    named = ("values.users[[]*[]].accessKey", "values.tls.certSecret", "values.tls.privateKey")
    for r in plan.releases().values():
        leaked = [p for p in r.secret_paths if not any(fnmatch(p, pattern) for pattern in named)]
        assert not leaked, f"{r.urn}: secret values in Helm values at {leaked}"
    minio = plan.releases()["minio"]
    values = minio.inputs["values"]
    assert values["rootUser"] == "" and values["rootPassword"] == "", minio.urn
    assert values["existingSecret"] == "minio-root", minio.urn  # pragma: allowlist secret
    assert all("secretKey" not in user for user in values["users"]), f"{minio.urn}: literal user secret"
    for secret in plan.of_type("kubernetes:core/v1:Secret"):
        assert secret.secret_paths and all(p.startswith("stringData") for p in secret.secret_paths), (
            secret.urn
        )


def test_custom_resources_validate_against_the_reference_crds(plan: Plan) -> None:
    customs = [r for r in plan.resources if r.type.startswith("kubernetes:") and "." in r.type.split(":")[1]]
    # Helm releases and built-in kinds of a dotted API group (NetworkPolicy) have no CRD.
    customs = [
        r
        for r in customs
        if not r.type.startswith(
            (
                "kubernetes:helm.sh",
                "kubernetes:networking.k8s.io",
                "kubernetes:rbac.authorization.k8s.io",
                "kubernetes:admissionregistration.k8s.io",
            )
        )
    ]
    kinds = {r.type.rsplit(":", 1)[1] for r in customs}
    assert {
        "VaultStaticSecret",
        "VaultAuth",
        "PodMonitor",
        "ServiceMonitor",
        "AppProject",
        "ApplicationSet",
    } <= kinds
    for r in customs:
        key = (r.inputs["apiVersion"], r.inputs["kind"])
        assert key in CRDS, f"{r.urn}: no reference CRD for {key}"
        errors = list(jsonschema.Draft7Validator(CRDS[key]).iter_errors(r.inputs))
        assert not errors, f"{r.urn}: {[f'{list(e.path)}: {e.message}' for e in errors]}"


def test_admission_objects_validate_against_the_kubernetes_schema_of_the_stack(plan: Plan) -> None:
    """Built-in kinds have no CRD: the API server holds them to its own OpenAPI schema, which
    kubernetes-validate ships per Kubernetes version (strict: unknown fields refused)."""
    from infra.config import load_environment
    from mlplat.findings import RenderedDoc
    from mlplat.validation.schemas import SchemaSet

    schemas = SchemaSet(load_environment(plan.env).cluster.kubernetes_version, None)
    admission = [r for r in plan.resources if r.type.startswith("kubernetes:admissionregistration.k8s.io/")]
    # The policies guard Argo Workflows' kinds (workflow_admission.py): none where it is switched off.
    policies = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    expected = set() if "argo-workflows" in switched_off(plan.env) else policies
    assert {r.inputs["kind"] for r in admission} == expected, plan.env
    for r in admission:
        findings = schemas.check(RenderedDoc(plan.env, "the plan", r.urn, r.inputs), None)
        assert not findings, f"{r.urn}: {[(f.rule, f.path, f.message) for f in findings]}"


def test_every_synced_secret_is_readable_under_its_namespace_policy(plan: Plan) -> None:
    import hcl2

    from tests.support.harness import REPO

    for r in plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret"):
        namespace = r.inputs["metadata"]["namespace"]
        policy_file = REPO / "platform" / "vault" / "policies" / f"{namespace}.hcl"
        assert policy_file.exists(), f"{r.urn}: no Vault policy for role {namespace}"
        policy = hcl2.loads(policy_file.read_text())
        readable = [
            path.strip('"')
            for block in policy["path"]
            for path, rule in block.items()
            if '"read"' in rule["capabilities"] or "read" in rule["capabilities"]
        ]
        wanted = f"{r.inputs['spec']['mount']}/data/{r.inputs['spec']['path']}"
        assert any(fnmatch(wanted, pattern) for pattern in readable), f"{r.urn}: {wanted} not in {readable}"
