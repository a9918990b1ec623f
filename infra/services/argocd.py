"""Argo CD: syncs the model apps; HA where `services.argocd.ha`, SSO-only where OIDC is configured.

KServe InferenceServices get a real health check (their Ready condition) and the fields KServe's
webhook and controller fill in are ignored in diffs. The environment's AppProject and
ApplicationSet, rendered from platform/argocd/models.yaml with the environment's `services.argocd`
settings (infra/gitops.py), are applied once the chart's CRDs exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from infra import gitops
from infra.config import ArgoCdConfig
from infra.services.chart import PLATFORM, REPO, ChartService, ServiceArgs, custom_resources, load_documents

NAMESPACE = "argocd"
ISVC = "serving.kserve.io_InferenceService"

# Ready=True is Healthy, Ready=False with a reason is Degraded, anything else is still progressing.
ISVC_HEALTH_LUA = """\
local hs = {status = "Progressing", message = "Waiting for the InferenceService to become Ready"}
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      if condition.status == "True" then
        hs.status = "Healthy"
        hs.message = condition.message or "InferenceService is Ready"
      elseif condition.status == "False" and condition.reason ~= nil then
        hs.status = "Degraded"
        hs.message = condition.message or condition.reason
      end
    end
  end
end
return hs
"""

# Defaults KServe's mutating webhook writes into the spec, and annotations/labels its controller
# manages: not drift, since git never sets them.
ISVC_IGNORE_DIFFERENCES = {
    "jqPathExpressions": [
        ".spec.predictor.model.name",
        ".spec.predictor.containers[]?.name",
        '.metadata.annotations["serving.kserve.io/deploymentMode"]',
        '.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]',
    ],
    "managedFieldsManagers": ["kserve-controller", "manager"],
}


def computed_values(argocd: ArgoCdConfig) -> dict[str, Any]:
    """Per-environment values: from the environment's `services.argocd` only."""
    replicas = 2 if argocd.ha else 1
    cm: dict[str, Any] = {
        f"resource.customizations.health.{ISVC}": ISVC_HEALTH_LUA,
        f"resource.customizations.ignoreDifferences.{ISVC}": yaml.safe_dump(
            ISVC_IGNORE_DIFFERENCES, sort_keys=False
        ),
    }
    if argocd.oidc is not None:
        cm["admin.enabled"] = "false"  # SSO only: no shared local admin password in prod
        cm["oidc.config"] = yaml.safe_dump(
            {
                "name": "SSO",
                "issuer": argocd.oidc.issuer,
                "clientID": argocd.oidc.client_id,
                # Public client with PKCE: no client secret to store.
                "enablePKCEAuthentication": True,
                "requestedScopes": ["openid", "profile", "email", "groups"],
            },
            sort_keys=False,
        )
    return {
        "redis-ha": {"enabled": argocd.ha},
        "controller": {"replicas": replicas},
        "server": {"replicas": replicas},
        "repoServer": {"replicas": replicas},
        "applicationSet": {"replicas": replicas},
        "configs": {"cm": cm},
    }


def model_apps(environment: str, argocd: ArgoCdConfig) -> list[tuple[Path, dict[str, Any]]]:
    """The environment's AppProject and ApplicationSet, rendered from platform/argocd/models.yaml with
    the environment's own settings (infra/gitops.py; `mlplat validate` judges the same result)."""
    path = PLATFORM / gitops.TEMPLATE
    template = [doc for _, doc in load_documents([gitops.TEMPLATE])]
    rendered = gitops.render(template, str(path.relative_to(REPO)), gitops.ModelApps.of(environment, argocd))
    return [(path, doc) for doc in rendered.documents]


@dataclass(frozen=True, kw_only=True)
class ArgoCdArgs(ServiceArgs):
    settings: ArgoCdConfig  # services.argocd


class ArgoCd(ChartService):
    """Argo CD and the current environment's AppProject/ApplicationSet."""

    def __init__(self, name: str, args: ArgoCdArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "mlplat:services:ArgoCd", name, NAMESPACE, args.cluster, [args.monitoring_crds], opts
        )
        env = args.cluster.environment
        self.release = self.install("release", "argocd", "argo-cd", computed=computed_values(args.settings))
        documents = model_apps(env, args.settings)
        self.gitops = custom_resources(self, f"{name}-{env}", documents, NAMESPACE, [self.release])
        self.register_outputs({"release": self.release.status, "gitops": [r.urn for r in self.gitops]})
