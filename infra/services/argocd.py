"""Argo CD: syncs the model apps; HA where `services.argocd.ha`, SSO-only where OIDC is configured.

Operators reach it through a port-forward (`SERVER_URL`, docs/alerts.md "Reaching Argo CD"); every
signed-in user reads every application, and with SSO the stack's `admin_group` administers.

KServe InferenceServices get a real health check (their Ready condition) and the fields KServe's
webhook and controller fill in are ignored in diffs. The environment's AppProject and
ApplicationSet, rendered from platform/argocd/models.yaml with the environment's `services.argocd`
settings (infra/gitops.py), are applied once the chart's CRDs exist; the ApplicationSet, whose
Applications sync the model apps, only once every kind the AppProject lets them create can be created
(`ArgoCdArgs`). A private repository (`services.argocd.repo_private`) is read with credentials VSO
delivers from Vault as a repository Secret (`repository_credentials`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from infra import gitops
from infra.config import ArgoCdConfig, ConfigError
from infra.services.chart import (
    PLATFORM,
    REPO,
    ChartService,
    ServiceArgs,
    custom_resources,
    load_documents,
)
from infra.services.secrets import WrittenSecret

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


# The UI and API are reached through `kubectl -n argocd port-forward svc/argocd-server 8080:80` (no
# ingress, no DNS name): the chart's Service is `<release>-server` (nameOverride `argocd`) with plain
# http on port 80 (`server.service.servicePortHttp`) to the server's 8080, which serves http with
# `server.insecure` (platform/argo-cd/values.yaml; the tunnel itself is the API server's TLS). `url`
# is where Argo CD sends the browser back after SSO (`<url>/auth/callback`, the redirect URI to
# register with the identity provider) and the base of its links; unset, the chart makes it
# `https://<global.domain>` (argo-helm argo-cd-10.1.1 templates/_helpers.tpl `argo-cd.config.cm.presets`,
# overridden by `configs.cm`), a name nothing routes or resolves. As Argo Workflows does (SSO_REDIRECT).
SERVER_URL = "http://localhost:8080"
# Everyone the identity provider signs in holds at least `policy.default`, which no deny rule takes away
# (argo-cd v3.4.4 docs/operator-manual/rbac.md "Default Policy for Authenticated Users", which recommends a
# minimal `role:authenticated`). The built-in `role:readonly` (v3.4.4 assets/builtin-policy.csv) would
# also show them every application's pod logs (`logs, get, */*`), the clusters, repositories, projects,
# certificates, accounts and GPG keys; the default role here reads the applications and ApplicationSets
# only. The admin group keeps the rest: `role:admin` inherits `role:readonly` (`g, role:admin,
# role:readonly` in the same file). With `policy.default` empty (the chart's default) a signed-in user
# sees no application at all. Without `projects, get` the Applications page still works: its project
# filter lists only the projects a user may get (argo-cd v3.4.4 server/project/project.go `List`; ui
# applications-filter.tsx `ProjectFilter`), so it is empty, and no application page asks for a project.
DEFAULT_ROLE = "role:authenticated"
DEFAULT_READS = ("applications", "applicationsets")  # `get` on every project's: `*/*`
ADMIN_ROLE = "role:admin"


def rbac_values(argocd: ArgoCdConfig) -> dict[str, str]:
    """argocd-rbac-cm (`configs.rbac`): every signed-in user reads the applications; the SSO admin group
    administers. Without SSO the local `admin` account (a superuser, whatever the policy) is the way in."""
    policy = "".join(f"p, {DEFAULT_ROLE}, {resource}, get, */*, allow\n" for resource in DEFAULT_READS)
    if argocd.oidc is not None:
        # `g, <subject>, <role>`: the subject matched against the token's `groups` claim (the chart's
        # `configs.rbac.scopes` default `[groups]`, requested in oidc.config below).
        policy += f"g, {argocd.oidc.admin_group}, {ADMIN_ROLE}\n"
    return {"policy.default": DEFAULT_ROLE, "policy.csv": policy}


def computed_values(argocd: ArgoCdConfig) -> dict[str, Any]:
    """Per-environment values: from the environment's `services.argocd` only."""
    replicas = 2 if argocd.ha else 1
    cm: dict[str, Any] = {
        "url": SERVER_URL,
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
        "configs": {"cm": cm, "rbac": rbac_values(argocd)},
    }


# The ApplicationSet controller's own sync policy. Unset, each ApplicationSet's `applicationsSync` decides
# (infra/gitops.py: prod's `create-update` never deletes an Application); set, the controller's policy wins
# over every ApplicationSet's unless override is enabled again, and override disabled makes it win even
# unset (argo-cd v3.5.1 109ca7c and v3.4.4 443415b,
# cmd/argocd-applicationset-controller/commands/applicationset_controller.go: `--policy` defaults to
# ARGOCD_APPLICATIONSET_CONTROLLER_POLICY, `--enable-policy-override` to
# ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_POLICY_OVERRIDE, else `policy == ""`; applicationset/utils/policy.go
# `DefaultPolicy`). The chart sets those variables from the argocd-cmd-params-cm keys (`configs.params`),
# and hands the controller `applicationSet.extraArgs`, `global.env` + `applicationSet.extraEnv` (through
# `tpl`, so a templated entry could render as any variables) and `applicationSet.extraEnvFrom` (variables
# from any ConfigMap or Secret) as they are (argo-helm argo-cd-10.1.1 af0a931,
# templates/argocd-applicationset/deployment.yaml).
POLICY_PARAMS = ("applicationsetcontroller.policy", "applicationsetcontroller.enable.policy.override")
POLICY_FLAGS = ("--policy", "--enable-policy-override")
POLICY_ENV = (
    "ARGOCD_APPLICATIONSET_CONTROLLER_POLICY",
    "ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_POLICY_OVERRIDE",
)
SETS_THE_POLICY = (
    "sets the ApplicationSet controller's policy, over each ApplicationSet's applicationsSync "
    "(prod's create-update): leave it unset"
)


def policy_settings(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each place in the chart values that sets the controller's sync policy or its override."""
    appset = _mapping(values, "applicationSet")
    params = _mapping(_mapping(values, "configs"), "params")
    found = [(f"configs.params.{key}", SETS_THE_POLICY) for key in POLICY_PARAMS if key in params]
    found += [
        (f"applicationSet.extraArgs[{i}]", SETS_THE_POLICY)
        for i, arg in enumerate(_list(appset, "extraArgs"))
        if str(arg).split("=", 1)[0] in POLICY_FLAGS
    ]
    environments = {"global.env": _list(_mapping(values, "global"), "env")}
    environments["applicationSet.extraEnv"] = _list(appset, "extraEnv")
    for where, variables in environments.items():
        for i, variable in enumerate(variables):
            if isinstance(variable, Mapping) and variable.get("name") in POLICY_ENV:
                found.append((f"{where}[{i}]", SETS_THE_POLICY))
            elif "{{" in json.dumps(variable, default=str):  # `tpl` could turn it into any entries
                found.append((f"{where}[{i}]", f"templated: it could set {POLICY_ENV[0]}; write it out"))
    if _list(appset, "extraEnvFrom"):
        unseen = (
            "variables from a ConfigMap or Secret, unseen here, could set the policy; write each in extraEnv"
        )
        found.append(("applicationSet.extraEnvFrom", unseen))
    return found


def _mapping(node: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = node.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(node: Mapping[str, Any], key: str) -> list[Any]:
    value = node.get(key)
    return value if isinstance(value, list) else []


def model_apps(environment: str, argocd: ArgoCdConfig) -> list[tuple[Path, dict[str, Any]]]:
    """The environment's AppProject and ApplicationSet, rendered from platform/argocd/models.yaml with
    the environment's own settings (infra/gitops.py; `mlplat validate` judges the same result)."""
    path = PLATFORM / gitops.TEMPLATE
    template = [doc for _, doc in load_documents([gitops.TEMPLATE])]
    rendered = gitops.render(template, str(path.relative_to(REPO)), gitops.ModelApps.of(environment, argocd))
    return [(path, doc) for doc in rendered.documents]


# How Argo CD finds a repository's credentials: a Secret in its own namespace labelled
# `argocd.argoproj.io/secret-type: repository` whose `url` is the repository (compared with
# git.SameURL), `type` `git`, no `project` (then it serves every project's Applications and
# ApplicationSets: `getRepositorySecret` with allowFallback); with no such Secret it clones anonymously
# (argo-cd v3.4.4, which the chart runs: common/common.go LabelKeySecretType, LabelValueSecretTypeRepository;
# util/db/repository_secrets.go: its functions GetRepository and secretToRepository; docs/operator-manual/
# declarative-setup.md "Repositories"). The ApplicationSet's git generator reads it the same way
# (applicationset/services/repo_service.go: `db.GetRepository`).
REPOSITORY_LABELS = {"argocd.argoproj.io/secret-type": "repository"}
REPOSITORY_SECRET = "repository"  # pragma: allowlist secret (a Secret's name)
# Read by role argocd (platform/vault/policies/argocd.hcl).
REPOSITORY_VAULT_PATH = "platform/argocd/repository"  # pragma: allowlist secret (a Vault path)
# The credential keys taken from Vault: a token as the https password (`username`, `password`), or a
# GitHub App (`githubAppID`, `githubAppInstallationID`, `githubAppPrivateKey`), as `secretToRepository`
# reads them. Any other key (`insecure`, `proxy`, `project`, `url`...) would change where or how Argo CD
# connects, which the stack file owns: VSO leaves it out.
REPOSITORY_CREDENTIAL_KEYS = (
    "username",
    "password",
    "githubAppID",
    "githubAppInstallationID",
    "githubAppPrivateKey",
)


def repository_credentials(argocd: ArgoCdConfig, namespace: pulumi.Resource) -> WrittenSecret | None:
    """The repository Secret of a private repository, its `url` the stack's `repo_url` (which the
    AppProject and ApplicationSet read, infra/gitops.py); none for a public one."""
    if not argocd.repo_private:
        return None
    return WrittenSecret(
        namespace=NAMESPACE,
        secret_name=REPOSITORY_SECRET,
        vault_path=REPOSITORY_VAULT_PATH,
        namespace_resource=namespace,
        labels=REPOSITORY_LABELS,
        keys=REPOSITORY_CREDENTIAL_KEYS,
        fixed={"url": argocd.repo_url, "type": "git"},
    )


@dataclass(frozen=True, kw_only=True)
class ArgoCdArgs(ServiceArgs):
    """Argo CD's settings, and what the ApplicationSet waits for: the installers of the custom kinds
    platform/argocd/models.yaml's AppProject whitelists. An Application synced before its kinds can be
    created fails its retries (the template's `retry`, minutes), then stays SyncError: automated sync
    does not try a revision again after a failed sync to it (argo-cd v3.4.4 controller/appcontroller.go
    L2251-2257 "will not retry"; docs/user-guide/auto_sync.md), and a later `pulumi up` changes nothing
    it looks at. tests/infra/services/test_argocd_sync_order.py finds a whitelisted kind left out here."""

    settings: ArgoCdConfig  # services.argocd
    # InferenceService: KServe's runtimes release, installed after the CRD release and the controller
    # release, whose webhooks admit InferenceServices with `failurePolicy: Fail` (kserve/kserve v0.20.0
    # charts/kserve-resources/files/kserve/resources.yaml L553-612, L677-708). The runtimes'
    # ClusterServingRuntimes pass a `Fail` webhook of the same server (L613-644) to install at all, so
    # once they are in the webhook answers; and the apps' InferenceServices name those runtimes.
    kserve: pulumi.Resource
    # ScaledObject: KEDA's release (its CRDs are templates of the chart; its webhook fails open,
    # kedacore/charts v2.20.2 keda/values.yaml `webhooks.failurePolicy: Ignore`).
    keda: pulumi.Resource
    # VaultAuth, VaultStaticSecret: the Vault Secrets Operator's release (CRDs in its chart's crds/, no
    # admission webhook: hashicorp/vault-secrets-operator v1.4.1 chart/).
    vault_secrets_operator: pulumi.Resource
    # HTTPRoute: the Gateway API CRDs (infra/services/gateway.py `crds`).
    gateway_api: pulumi.Resource


class ArgoCd(ChartService):
    """Argo CD and the current environment's AppProject/ApplicationSet."""

    def __init__(self, name: str, args: ArgoCdArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "mlplat:services:ArgoCd", name, NAMESPACE, args.cluster, [args.monitoring_crds], opts
        )
        env = args.cluster.environment
        computed = computed_values(args.settings)
        refused = policy_settings(self.merged_values("argo-cd", computed))  # what `install` will pass
        if refused:
            where = f"platform/argo-cd/values.yaml + values-{env}.yaml + computed_values (infra/services/argocd.py)"
            raise ConfigError(where, refused)
        self.release = self.install("release", "argocd", "argo-cd", computed=computed)
        project, application_set = model_apps(env, args.settings)
        self.project = custom_resources(self, f"{name}-{env}", [project], NAMESPACE, [self.release])
        # After the AppProject too: the ApplicationSet generates no Application of a project that does
        # not exist yet (argo-cd v3.4.4 applicationset/controllers/applicationset_controller.go L606-611).
        model_kinds = [args.kserve, args.keda, args.vault_secrets_operator, args.gateway_api]
        self.application_set = custom_resources(
            self, f"{name}-{env}", [application_set], NAMESPACE, [self.release, *self.project, *model_kinds]
        )
        self.gitops = [*self.project, *self.application_set]
        credentials = repository_credentials(args.settings, self.namespace)
        # For VaultAccess (services/__init__.py), which syncs it with role argocd.
        self.written: list[WrittenSecret] = [credentials] if credentials else []
        self.register_outputs({"release": self.release.status, "gitops": [r.urn for r in self.gitops]})
