"""Grafana reads the dashboard and datasource ConfigMaps of `monitoring`, never its Secrets.

The Secrets of `monitoring` hold the Alertmanager receivers, the Prometheus config with its scrape
credentials and Grafana's admin password: a compromised Grafana must not be able to read them. The
grafana chart is a subchart of kube-prometheus-stack with no reference copy here, so what it renders
from our values is modelled below from grafana-community/helm-charts tag grafana-12.11.1.
"""

from __future__ import annotations

from typing import Any

from infra.services import monitoring
from infra.services.chart import deep_merge
from tests.support.harness import Plan, Registered, reference_chart

# The sidecars of the grafana chart, each off by default and watching `resource: both` (ConfigMaps
# and Secrets) unless told otherwise (grafana-12.11.1 charts/grafana/values.yaml `sidecar.*`).
SIDECARS = ("alerts", "dashboards", "datasources", "plugins", "notifiers")
# The sidecars that make the chart's Role grant rules (templates/role.yaml).
ROLE_SIDECARS = ("dashboards", "datasources", "plugins")


def _grafana_values(r: Registered) -> dict[str, Any]:
    """Grafana's values as the subchart gets them: kube-prometheus-stack's defaults under ours."""
    kps_defaults, _ = reference_chart("kube-prometheus-stack")
    return deep_merge(kps_defaults["grafana"], r.inputs["values"]["grafana"])


def _enabled_sidecars(grafana: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sidecars = grafana.get("sidecar", {})
    return {kind: sidecars[kind] for kind in SIDECARS if sidecars.get(kind, {}).get("enabled", False)}


def _bound_role_rules(plan: Plan, r: Registered, grafana: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules of the Role the chart's RoleBinding gives Grafana's ServiceAccount in its namespace.

    templates/rolebinding.yaml binds `rbac.useExistingRole` when set, else the chart's own Role, which
    grants `configmaps` and `secrets` get/watch/list whenever a sidecar is on (templates/role.yaml).
    """
    rbac = grafana["rbac"]
    existing = rbac.get("useExistingRole")
    if not existing:
        rules = list(rbac.get("extraRoleRules") or [])
        if any(kind in _enabled_sidecars(grafana) for kind in ROLE_SIDECARS):
            rules.append(
                {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "watch", "list"]}
            )
        return rules
    roles = [
        role
        for role in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
        if role.inputs["metadata"]["name"] == existing
        and role.inputs["metadata"]["namespace"] == r.inputs["namespace"]
    ]
    assert len(roles) == 1, (
        f"{r.urn}: Grafana is bound to Role {existing}, which the program creates {len(roles)} times"
    )
    return list(roles[0].inputs["rules"])


def test_grafana_cannot_read_the_alertmanager_receivers(plan: Plan) -> None:
    r = plan.releases()[monitoring.RELEASE]
    grafana = _grafana_values(r)
    # The chart's ClusterRole (every Secret of the cluster) is rendered unless namespaced.
    assert grafana["rbac"]["namespaced"] is True, f"{r.urn}: Grafana gets a ClusterRole"
    assert not grafana["rbac"].get("extraClusterRoleRules"), f"{r.urn}: Grafana gets a ClusterRole"
    rules = _bound_role_rules(plan, r, grafana)
    readable = {resource for rule in rules for resource in rule["resources"]}
    assert readable & {"secrets", "*"} == set(), (
        f"{r.urn}: Grafana may read the Secrets of {r.inputs['namespace']}, "
        f"{monitoring.RECEIVERS_SECRET} among them: {rules}"
    )
    assert readable == {"configmaps"}, f"{r.urn}: Grafana cannot read its dashboards: {rules}"


def test_grafana_sidecars_watch_no_secrets(plan: Plan) -> None:
    r = plan.releases()[monitoring.RELEASE]
    sidecars = _enabled_sidecars(_grafana_values(r))
    assert {"dashboards", "datasources"} <= set(sidecars), f"{r.urn}: {sorted(sidecars)}"
    for kind, sidecar in sidecars.items():
        # The k8s-sidecar's RESOURCE env (templates/_pod.tpl), `both` by default.
        assert sidecar.get("resource", "both") == "configmap", (
            f"{r.urn}: Grafana's {kind} sidecar watches {sidecar.get('resource', 'both')}, Secrets included"
        )
