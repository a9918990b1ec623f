"""Every Secret and ConfigMap a release's values mount or read exists: the plan creates it.

A pod whose Secret volume is missing stays in ContainerCreating; the release may still report
success (kube-prometheus-stack's Alertmanager is a custom resource the operator turns into a
StatefulSet later), and what the pod does (all alerting) is silently gone. Found on a real
`pulumi up`: Alertmanager mounted `alertmanager-receivers`, which nothing created.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from infra.services import monitoring
from tests.support.harness import Plan

SECRET, CONFIG_MAP = "Secret", "ConfigMap"


def _name(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return str(value["name"]) or None
    return None


def referenced(values: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """(kind, name, values path) of every Secret/ConfigMap the values point a workload at."""
    if isinstance(values, list):
        for i, item in enumerate(values):
            yield from referenced(item, f"{path}[{i}]")
        return
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        here = f"{path}.{key}" if path else str(key)
        # `credentials`: a prometheus-operator SafeAuthorization's Secret key selector.
        if key in ("existingSecret", "existingAdminSecret", "certSecret", "credentials") and _name(value):
            yield SECRET, str(_name(value)), here
        elif key == "secrets" and path.endswith("alertmanagerSpec") and isinstance(value, list):
            yield from ((SECRET, str(name), f"{here}[{i}]") for i, name in enumerate(value))
        elif key == "secret" and isinstance(value, dict) and (value.get("secretName") or value.get("name")):
            yield SECRET, str(value.get("secretName") or value.get("name")), here
        elif key in ("configMap", "caBundleConfigMapName") and _name(value):
            yield CONFIG_MAP, str(_name(value)), here
        else:
            yield from referenced(value, here)


def created(plan: Plan) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every Secret/ConfigMap the plan creates or has created."""
    objects = set()
    for r in plan.of_type("kubernetes:core/v1:Secret"):
        objects.add((SECRET, r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]))
    for r in plan.of_type("kubernetes:core/v1:ConfigMap"):
        objects.add((CONFIG_MAP, r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]))
    for r in plan.of_type("kubernetes:cert-manager.io/v1:Certificate"):  # cert-manager writes it
        objects.add((SECRET, r.inputs["metadata"]["namespace"], r.inputs["spec"]["secretName"]))
    for r in plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret"):
        destination = r.inputs["spec"]["destination"]
        if destination.get("create"):
            objects.add((SECRET, r.inputs["metadata"]["namespace"], destination["name"]))
    return objects


def test_every_secret_and_config_map_a_release_mounts_is_created_by_the_plan(plan: Plan) -> None:
    exists = created(plan)
    missing = []
    for release in plan.releases().values():
        namespace = release.inputs["namespace"]
        for kind, name, where in referenced(release.inputs.get("values") or {}):
            if (kind, namespace, name) not in exists:
                missing.append(
                    f"{release.urn}: values.{where} names {kind} {namespace}/{name}, never created"
                )
    assert not missing, "\n".join(missing)


def test_the_guard_sees_alertmanager_secrets_and_volumes() -> None:
    values = {
        "alertmanager": {"alertmanagerSpec": {"secrets": ["receivers"]}},
        "server": {"volumes": [{"name": "tls", "secret": {"secretName": "tls"}}]},  # pragma: allowlist secret
        "extraVolumes": [{"name": "ca", "configMap": {"name": "ca-bundle"}}],
    }
    assert sorted(referenced(values)) == [
        (CONFIG_MAP, "ca-bundle", "extraVolumes[0].configMap"),
        (SECRET, "receivers", "alertmanager.alertmanagerSpec.secrets[0]"),
        (SECRET, "tls", "server.volumes[0].secret"),
    ]


def test_alertmanager_receivers_hold_every_file_the_config_reads_and_reach_nobody(plan: Plan) -> None:
    (seeded,) = [
        r
        for r in plan.of_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"]["name"] == monitoring.RECEIVERS_SECRET
    ]
    assert seeded.inputs["metadata"]["namespace"] == monitoring.NAMESPACE, seeded.urn
    config = plan.releases()[monitoring.RELEASE].inputs["values"]["alertmanager"]["config"]
    wanted = monitoring.receiver_files(config)
    assert len(wanted) >= 3, f"platform/alertmanager/config.yaml reads {wanted}"
    data = seeded.inputs["stringData"]
    assert sorted(data) == wanted, f"{seeded.urn}: keys {sorted(data)}, config reads {wanted}"
    for key, value in data.items():
        # Never a real endpoint: a URL on a reserved never-resolving TLD, or a dummy key.
        assert (value.startswith("https://") and ".invalid/" in value) or "://" not in value, (
            seeded.urn,
            key,
        )
    # The state the always-firing alert watches, dropped by VSO's first sync from Vault.
    assert seeded.inputs["metadata"]["labels"] == {monitoring.RECEIVERS_STATE_LABEL: "placeholder"}
    (sync,) = [
        r
        for r in plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret")
        if r.inputs["metadata"]["name"] == monitoring.RECEIVERS_SECRET
    ]
    assert sync.inputs["spec"]["destination"]["overwrite"] is True, sync.urn
    assert not sync.inputs["spec"]["destination"].get("labels"), f"{sync.urn}: would keep a state label"
