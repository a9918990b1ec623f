"""Whoever operates an environment can reach its Argo CD, sign in and act: the SSO callback comes back
where operators reach the server, signed-in users see the apps, and prod's admin group administers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from infra.config import load_environment
from infra.services.chart import deep_merge
from tests.support.harness import Plan, reference_chart


def _values(plan: Plan) -> dict[str, Any]:
    """The Argo CD release's values over the chart's defaults: what the chart renders from."""
    defaults, _ = reference_chart("argo-cd")
    return deep_merge(defaults, plan.releases()["argocd"].inputs["values"])


def test_argocd_sso_callback_returns_to_the_port_forward_not_an_unrouted_domain(plan: Plan) -> None:
    values = _values(plan)
    url = urlparse(values["configs"]["cm"].get("url", f"https://{values['global']['domain']}"))
    # No ingress and no DNS record exist for global.domain: operators come in through a port-forward.
    assert url.hostname == "localhost", f"{plan.env}: the SSO callback goes to {url.geturl()}"
    # The server speaks plain http behind the tunnel (server.insecure): an https callback finds no TLS.
    insecure = str(values["configs"]["params"]["server.insecure"]).lower() == "true"
    assert url.scheme == ("http" if insecure else "https"), f"{plan.env}: {url.geturl()}"
    assert url.port == 8080 and values["server"]["containerPorts"]["server"] == 8080, url.geturl()


def _grants(csv: str) -> set[tuple[str, str]]:
    rows = [[cell.strip() for cell in line.split(",")] for line in csv.splitlines() if line.strip()]
    return {(row[1], row[2]) for row in rows if row[0] == "g"}


def test_argocd_users_who_sign_in_see_the_apps_and_prods_admin_group_administers(plan: Plan) -> None:
    values = _values(plan)
    rbac, cm = values["configs"]["rbac"], values["configs"]["cm"]
    # Empty (the chart default), a signed-in user sees no application, project or cluster.
    assert rbac["policy.default"] == "role:readonly", f"{plan.env}: policy.default {rbac['policy.default']!r}"
    oidc = load_environment(plan.env).services.argocd.oidc
    if oidc is None:
        assert cm.get("admin.enabled", "true") != "false", f"{plan.env}: no SSO and no local admin"
        return
    # The local admin is off: without a group mapped to role:admin nobody could sync or change anything.
    assert cm["admin.enabled"] == "false", plan.env
    assert "groups" in cm["oidc.config"] and "groups" in rbac["scopes"], f"{plan.env}: groups claim unread"
    assert (oidc.admin_group, "role:admin") in _grants(rbac["policy.csv"]), rbac["policy.csv"]
