"""Whoever operates an environment can reach its Argo CD, sign in and act: the SSO callback comes back
where operators reach the server, signed-in users see the apps, and prod's admin group administers."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from infra.config import load_environment
from infra.services.argocd import ADMIN_ROLE, NAMESPACE
from infra.services.chart import deep_merge
from tests.support.harness import REPO, Plan, reference_chart


def _values(plan: Plan) -> dict[str, Any]:
    """The Argo CD release's values over the chart's defaults: what the chart renders from."""
    defaults, _ = reference_chart("argo-cd")
    return deep_merge(defaults, plan.releases()["argocd"].inputs["values"])


def _documented_port_forward() -> tuple[str, int, int]:
    """(Service, local port, Service port) of the port-forward docs/alerts.md "Reaching Argo CD" gives."""
    text = (REPO / "docs" / "alerts.md").read_text()
    section = text[text.index("### Reaching Argo CD") :].split("\n### ", 1)[0]
    (found,) = re.findall(rf"kubectl -n {NAMESPACE} port-forward svc/([\w-]+) (\d+):(\d+)", section)
    return found[0], int(found[1]), int(found[2])


def test_argocd_sso_callback_returns_to_the_documented_port_forward_not_an_unrouted_domain(
    plan: Plan,
) -> None:
    """The callback must be where the documented tunnel answers: the tunnel's local port, on a Service
    port the release has (the container port behind it is the Service's business, not the browser's)."""
    values = _values(plan)
    url = urlparse(values["configs"]["cm"].get("url", f"https://{values['global']['domain']}"))
    service, local, service_port = _documented_port_forward()
    # The server speaks plain http behind the tunnel (server.insecure): an https callback finds no TLS.
    insecure = str(values["configs"]["params"]["server.insecure"]).lower() == "true"
    assert (url.scheme, url.hostname, url.port) == ("http" if insecure else "https", "localhost", local), (
        f"{plan.env}: the SSO callback goes to {url.geturl()}, the documented tunnel is localhost:{local}"
    )
    # The chart names the server's Service `<fullname>-server`; with the chart's nameOverride `argocd`
    # inside the release name `argocd`, fullname is the release name (infra/services/argocd.py).
    release = next(name for name in plan.releases() if name == values["nameOverride"])
    assert service == f"{release}-server", service
    http = (
        values["server"]["service"]["servicePortHttp"]
        if insecure
        else values["server"]["service"]["servicePortHttps"]
    )
    assert service_port == http, (
        f"{plan.env}: the tunnel forwards to {service}:{service_port}, the Service has {http}"
    )


# Argo CD v3.4.4's built-in roles (assets/builtin-policy.csv): what they grant is in that file, not in
# policy.csv, and role:readonly's share includes every application's pod logs (`logs, get, */*`).
BUILTIN_ROLES = {"role:readonly", ADMIN_ROLE}


def _rows(csv: str, kind: str) -> list[list[str]]:
    rows = [[cell.strip() for cell in line.split(",")] for line in csv.splitlines() if line.strip()]
    return [row[1:] for row in rows if row[0] == kind]


def test_argocd_users_who_sign_in_read_the_apps_but_not_pod_logs_clusters_or_repositories(plan: Plan) -> None:
    """policy.default was role:readonly: everyone the identity provider signs in could read prod's pod
    logs, clusters and repositories, and no deny rule can take a default's grants away."""
    values = _values(plan)
    rbac, cm = values["configs"]["rbac"], values["configs"]["cm"]
    default, csv = rbac["policy.default"], rbac.get("policy.csv", "")
    assert default not in BUILTIN_ROLES, f"{plan.env}: every signed-in user holds the built-in {default}"
    assert [g for g in _rows(csv, "g") if g[0] == default] == [], f"{plan.env}: {default} inherits a role"
    grants = {(resource, action) for subject, resource, action, *_ in _rows(csv, "p") if subject == default}
    # Empty (the chart default), a signed-in user would see no application at all.
    assert ("applications", "get") in grants and grants <= {
        ("applications", "get"),
        ("applicationsets", "get"),
    }, f"{plan.env}: {default} grants {sorted(grants)}"
    oidc = load_environment(plan.env).services.argocd.oidc
    if oidc is None:
        assert cm.get("admin.enabled", "true") != "false", f"{plan.env}: no SSO and no local admin"
        return
    # The local admin is off: without a group mapped to role:admin nobody could sync or change anything.
    assert cm["admin.enabled"] == "false", plan.env
    assert "groups" in cm["oidc.config"] and "groups" in rbac["scopes"], f"{plan.env}: groups claim unread"
    assert [oidc.admin_group, ADMIN_ROLE] in _rows(csv, "g"), csv
