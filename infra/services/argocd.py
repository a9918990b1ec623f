"""Argo CD: syncs the model apps; HA where `services.argocd.ha`, SSO-only where OIDC is configured.

KServe InferenceServices get a real health check (their Ready condition) and the fields KServe's
webhook and controller fill in are ignored in diffs. The environment's AppProject and
ApplicationSet (platform/argocd/<env>/) are applied once the chart's CRDs exist, with the git
repository and revision they read filled in from `services.argocd.repo_url` and `target_revision`:
the stack file is their one owner.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from infra.config import ArgoCdConfig, ConfigError
from infra.services.chart import REPO, ChartService, ServiceArgs, custom_resources, load_documents

NAMESPACE = "argocd"
# What platform/argocd/<env>/*.yaml write where the repository and its revision go: strings, so
# `mlplat validate` still checks the files against the Argo CD CRDs, and never a URL or a branch, so no
# file can disagree with the stack. `with_source` replaces every one and refuses a file that names its own.
REPO_URL_FROM_CONFIG = "from services.argocd.repo_url"
REVISION_FROM_CONFIG = "from services.argocd.target_revision"
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


def with_source(path: Path, doc: dict[str, Any], argocd: ArgoCdConfig) -> dict[str, Any]:
    """`doc` with the git repository and revision filled in where Argo CD reads them (argo-cd v3.5.1
    CRDs, ../shared/reference/crds/argo-cd: AppProject `spec.sourceRepos`; ApplicationSet
    `spec.generators[].git.repoURL`/`revision` and `spec.template.spec.source.repoURL`/`targetRevision`)."""
    problems: list[tuple[str, str]] = []

    def fill(key_path: str, value: Any, marker: str, configured: str) -> str:
        if value != marker:
            problems.append((key_path, f"{value!r} is written here; write {marker!r}"))
        return configured

    def repository(key_path: str, value: Any) -> str:
        return fill(key_path, value, REPO_URL_FROM_CONFIG, argocd.repo_url)

    def revision(key_path: str, value: Any) -> str:
        return fill(key_path, value, REVISION_FROM_CONFIG, argocd.target_revision)

    doc = copy.deepcopy(doc)
    spec = doc.get("spec") or {}
    if doc.get("kind") == "AppProject":
        repos = spec.get("sourceRepos") or []
        spec["sourceRepos"] = [repository(f"spec.sourceRepos[{i}]", repo) for i, repo in enumerate(repos)]
    elif doc.get("kind") == "ApplicationSet":
        for i, generator in enumerate(spec.get("generators") or []):
            if "git" in generator:
                git, where = generator["git"], f"spec.generators[{i}].git"
                git["repoURL"] = repository(f"{where}.repoURL", git.get("repoURL"))
                git["revision"] = revision(f"{where}.revision", git.get("revision"))
        source = ((spec.get("template") or {}).get("spec") or {}).get("source")
        if source is not None:
            where = "spec.template.spec.source"
            source["repoURL"] = repository(f"{where}.repoURL", source.get("repoURL"))
            source["targetRevision"] = revision(f"{where}.targetRevision", source.get("targetRevision"))
    if problems:
        # The stack file owns the repository and revision; a copy here would drift from it unnoticed.
        raise ConfigError(str(path.relative_to(REPO)), problems)
    return doc


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
        documents = [
            (path, with_source(path, doc, args.settings))
            for path, doc in load_documents([f"argocd/{env}/*.yaml"])
        ]
        self.gitops = custom_resources(self, f"{name}-{env}", documents, NAMESPACE, [self.release])
        self.register_outputs({"release": self.release.status, "gitops": [r.urn for r in self.gitops]})
