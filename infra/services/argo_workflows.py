"""Argo Workflows and the apps' retraining pipelines (README "Retraining").

The controller, the UI and every pipeline run live in one namespace, `argo-workflows`, and the
chart's `singleNamespace` starts the controller with `--namespaced`: it and the UI get Roles there,
no ClusterRole (argo-helm argo-workflows-1.0.18 templates/controller/workflow-role.yaml and
workflow-rb.yaml render one Role/RoleBinding in the release namespace when `singleNamespace`).

Each app with a `training/` folder brings its pipeline as plain manifests (a ServiceAccount, a
WorkflowTemplate, a CronWorkflow; apps/README.md "Retraining"), which the program applies here
once the chart's CRDs exist. `mlplat validate` checks the same files against the full Argo CRDs.
Each app's ServiceAccount is added to the chart's workflow RoleBinding (`workflow.rbac.serviceAccounts`),
whose Role allows creating and patching WorkflowTaskResults only: what the executor reports a
step's outputs with (templates/controller/workflow-role.yaml).
Whatever account creates a Workflow here, the API server admits it only as a run of one of these
WorkflowTemplates as declared, and never lets its spec, or the spec the controller stores and runs
for it, be rewritten but by the controller's own ServiceAccount, which the values name
(`CONTROLLER_SERVICE_ACCOUNT`; workflow_admission.py): the policy is bound before the controller is
installed.

Artifacts (datasets, step outputs, training checkpoints) go to the platform MinIO bucket
`argo-artifacts` over https, verified against the internal CA (docs/adr/0004-internal-tls-ca.md),
each app's under its own prefix as its own MinIO user (minio.py `WorkflowArtifactsUser`): one app's
step can neither read nor overwrite another app's. Each app's pipeline names its own artifact
repository, key `<app>` of ConfigMap `artifact-repositories` (`spec.artifactRepositoryRef`; MLP-RETRAIN-ARTIFACTS
holds it to its own, and to its own credentials Secret), whose `keyFormat` starts with the app's prefix.
The controller has no default repository: a pipeline without the ref fails at its first artifact
instead of falling back to bucket-wide credentials. The controller resolves the ref in the workflow's
namespace and errors when the key is missing, never falling back to the default (argoproj/argo-workflows
v4.0.6 workflow/artifactrepositories/artifactrepositories.go `Resolve`/`get`, ConfigMap name defaulting
to `artifact-repositories`), and a submitter cannot override `artifactRepositoryRef` under `Secure`
template referencing (workflow/util/merge.go `allowedUserOverrideFields`). Fields (`s3.bucket`,
`endpoint`, `insecure`, `keyFormat`, `caSecret`, `accessKeySecret`, `secretKeySecret`) are
S3ArtifactRepository's (v4.0.6 pkg/apis/workflow/v1alpha1/artifact_repository_types.go); the chart's
controller Role may get ConfigMaps of its namespace (argo-helm argo-workflows-1.0.18
templates/controller/workflow-controller-cluster-roles.yaml).

The `register` step writes the new version's model to the model store bucket as MinIO user
`model-publisher` (minio.py), whose Secret Minio seeds and Vault syncs here: list, read and add, never
delete, and nothing outside that bucket (mlplat/retrain/publish.py says what it writes and when).

Pipelines read two more credentials, both from Vault through the Vault Secrets Operator, never
inline: the GitHub token that pushes the promotion branch and opens its pull request
(`platform/argo-workflows/github`, a placeholder until an operator writes the token: docs/placeholders.md),
and the pipelines' own MLflow account `retrain-pipeline` (`platform/argo-workflows/mlflow`, its
password generated here and then owned by Vault, as the drift job's is). Never the admin: an admin
may grant itself anything and set any alias, `approved` included. MLflow's basic auth lets the
account do what `register` and `propose` ask once an admin grants it EDIT on the experiment
`mlplat-retrain` (CreateRun: `validate_can_update_experiment`; LogBatch, UpdateRun:
`validate_can_update_run`) and on each app's registered model (CreateModelVersion:
`validate_can_update_registered_model`; GetModelVersion and SearchModelVersions read):
mlflow/mlflow mlflow/server/auth/__init__.py BEFORE_REQUEST_HANDLERS, read in the 3.x source (the
server runs 3.15.1: infra/versions.py); creating a permission is routes.py CREATE_*_PERMISSION. The server grants
nothing by default (platform/mlflow/values.yaml `defaultPermission: NO_PERMISSIONS`), so until an
admin creates the account (README "Retraining: the cluster side") `register` is refused with 401.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.config import ArgoCdConfig, ArgoWorkflowsConfig, ConfigError
from infra.contract import ARTIFACT_REPOSITORIES_CONFIGMAP, PLATFORM_REPOSITORY_CONFIGMAP
from infra.gitops import https_address, with_platform_repository
from infra.services import minio
from infra.services.cert_manager import InternalCa
from infra.services.chart import REPO, ChartService, ServiceArgs
from infra.services.secrets import SeededSecret
from infra.services.workflow_admission import DeclaredTemplate, WorkflowAdmission, WorkflowAdmissionArgs

NAMESPACE = "argo-workflows"
RELEASE = "argo-workflows"
# The internal CA's certificate as a Secret: the S3 artifact driver's `caSecret` takes a Secret.
CA_SECRET = "mlplat-internal-ca"  # pragma: allowlist secret (a Secret name; the data is a public certificate)
CA_KEY = "ca.crt"
GITHUB_SECRET = "retraining-github"  # pragma: allowlist secret (a Secret name)
GITHUB_VAULT_PATH = "platform/argo-workflows/github"
# The pipelines' MLflow account (module docstring). Same key names as the drift job's Secret: the
# MLflow client reads exactly these variables (registry_gate.py sends them as basic auth).
MLFLOW_USER = "retrain-pipeline"
MLFLOW_SECRET = "mlflow-retrain"  # pragma: allowlist secret (a Secret name)
MLFLOW_VAULT_PATH = "platform/argo-workflows/mlflow"
SSO_SECRET = "argo-server-sso"  # pragma: allowlist secret (a Secret name; the chart's default)
SSO_VAULT_PATH = "platform/argo-workflows/sso"
# A placeholder, not a credential: GitHub refuses it, so a run fails at `open-pr` until an
# operator writes the real token to Vault (docs/placeholders.md).
PLACEHOLDER = "set-in-vault"  # pragma: allowlist secret
# The UI is reached through `kubectl port-forward` (no ingress): the OIDC redirect comes back there,
# over plain http on loopback (the chart's `server.secure: false`; the tunnel itself is the API server's TLS).
SSO_REDIRECT = "http://localhost:2746/oauth2/callback"
# Ports of argo-helm argo-workflows-1.0.18 values.yaml: the UI's `server.servicePort` and the
# controller's metrics `controller.metricsConfig.port`.
SERVER_PORT = 2746
METRICS_PORT = 9090
# The controller's ServiceAccount, named here rather than left to the chart's default (the release's
# full name + `-workflow-controller`: templates/_helpers.tpl `argo-workflows.controllerServiceAccountName`,
# which the controller's Deployment runs as): the Workflow admission policy lets this account alone
# write the spec the controller runs (workflow_admission.py).
CONTROLLER_SERVICE_ACCOUNT = "argo-workflows-workflow-controller"


class PipelineError(ConfigError):
    """A training folder the program cannot apply as written: `mlplat plan` says where and why and
    exits 2, as for a bad stack file."""

    def __init__(self, where: str, reason: str) -> None:
        Exception.__init__(self, f"{where}: {reason}")
        self.source = where
        self.problems = [("(file)", reason)]


def _read(path: Path, repo: Path) -> list[Any]:
    try:
        return list(yaml.safe_load_all(path.read_text()))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise PipelineError(str(path.relative_to(repo)), f"cannot read it: {err}") from None


@dataclass(frozen=True)
class TrainingPipeline:
    """An app's `training/` folder: the manifests its kustomization lists, as parsed documents."""

    app: str
    documents: tuple[dict[str, Any], ...]

    @property
    def service_accounts(self) -> list[str]:
        return [d["metadata"]["name"] for d in self.documents if d.get("kind") == "ServiceAccount"]

    @property
    def workflow_templates(self) -> dict[str, DeclaredTemplate]:
        """Each WorkflowTemplate by name, with its entrypoint and the workflow parameters it declares:
        what a Workflow referencing it may set (workflow_admission.py)."""
        return {
            d["metadata"]["name"]: DeclaredTemplate(
                entrypoint=_spec(d).get("entrypoint") or None,
                parameters=tuple(str(p["name"]) for p in _declared_parameters(d)),
            )
            for d in self.documents
            if d.get("kind") == "WorkflowTemplate"
        }


def _spec(doc: Mapping[str, Any]) -> dict[str, Any]:
    spec = doc.get("spec")
    return spec if isinstance(spec, dict) else {}


def _declared_parameters(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [p for p in (_spec(doc).get("arguments") or {}).get("parameters") or [] if isinstance(p, dict)]


def declared_templates(pipelines: Sequence[TrainingPipeline]) -> dict[str, DeclaredTemplate]:
    """Every pipeline's WorkflowTemplates by name: one namespace holds them all, so a name two apps
    use would be one object applied twice, and one policy entry for both."""
    found: dict[str, DeclaredTemplate] = {}
    owner: dict[str, str] = {}
    for pipeline in pipelines:
        for name, template in pipeline.workflow_templates.items():
            if name in owner:
                raise PipelineError(
                    f"apps/{pipeline.app}/training/",
                    f"WorkflowTemplate {name} is also apps/{owner[name]}/training/'s: each app's "
                    f"pipeline names its own (both are applied to namespace {NAMESPACE})",
                )
            owner[name] = pipeline.app
            found[name] = template
    return found


def training_pipelines(repo: Path = REPO) -> list[TrainingPipeline]:
    """Every `apps/<app>/training/` folder, read through its kustomization's `resources` list.

    Only `resources` of local files is taken: a pipeline is plain manifests so that what validate
    checks is byte for byte what the program applies. Anything else is refused with its path.
    """
    found = []
    for kustomization in sorted(repo.glob("apps/*/training/kustomization.yaml")):
        folder = kustomization.parent
        where = kustomization.relative_to(repo)
        spec = next(iter(_read(kustomization, repo)), None) or {}
        if not isinstance(spec, dict):
            raise PipelineError(str(where), "not a kustomization (a mapping)")
        extra = set(spec) - {"apiVersion", "kind", "resources"}
        if extra:
            raise PipelineError(
                str(where), f"a training kustomization lists `resources` only, not {sorted(extra)}"
            )
        documents: list[dict[str, Any]] = []
        for entry in spec.get("resources") or []:
            path = (folder / str(entry)).resolve()
            if path.parent != folder.resolve() or not path.is_file():
                raise PipelineError(
                    str(where), f"resource {entry!r} is not a file of {folder.relative_to(repo)}"
                )
            for doc in _read(path, repo):
                if not isinstance(doc, dict) or not doc:
                    continue
                metadata: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
                if not (doc.get("apiVersion") and doc.get("kind") and metadata.get("name")):
                    raise PipelineError(
                        str(path.relative_to(repo)), "a document without apiVersion, kind or name"
                    )
                if metadata.get("namespace") != NAMESPACE:
                    raise PipelineError(
                        str(path.relative_to(repo)),
                        f"{doc['kind']} {metadata['name']} must be in namespace {NAMESPACE}, where the "
                        f"controller runs pipelines (found {metadata.get('namespace')!r})",
                    )
                if doc["kind"] == "WorkflowTemplate" and not all(
                    isinstance(p.get("name"), str) and p["name"] for p in _declared_parameters(doc)
                ):
                    raise PipelineError(
                        str(path.relative_to(repo)),
                        f"WorkflowTemplate {metadata['name']}: every spec.arguments.parameters entry "
                        "needs a name (a Workflow sets parameters by name)",
                    )
                documents.append(doc)
        found.append(TrainingPipeline(folder.parent.name, tuple(documents)))
    declared_templates(found)
    return found


@dataclass(frozen=True, kw_only=True)
class ArgoWorkflowsArgs(ServiceArgs):
    settings: ArgoWorkflowsConfig  # services.argo_workflows
    # MinIO: the artifact bucket and the model store. Each app's artifact user (`workflow_artifacts`)
    # and the `register` step's model store writer (`model_publisher`) are Secrets it seeded, whose
    # Vault paths are synced here; the release waits for MinIO's.
    artifact_store: minio.Minio
    # MLflow's release: the registry the `register` step writes new versions to.
    registry: pulumi.Resource
    # The internal CA (cert_manager.py), which MinIO's certificate chains to.
    ca: InternalCa
    pipelines: tuple[TrainingPipeline, ...]
    # The repository the pipelines clone and push to, and the revision: what Argo CD syncs
    # (services.argocd; infra/gitops.py `with_platform_repository`).
    repository: ArgoCdConfig


def computed_values(
    workflows: ArgoWorkflowsConfig, pipelines: tuple[TrainingPipeline, ...]
) -> dict[str, Any]:
    server: dict[str, Any] = {"authModes": ["client"]}
    if workflows.sso is not None:
        # SSO only: `client` would still let any holder of a Kubernetes token in.
        server = {
            "authModes": ["sso"],
            "sso": {
                "enabled": True,
                "issuer": workflows.sso.issuer,
                "clientId": {"name": SSO_SECRET, "key": "client-id"},
                "clientSecret": {"name": SSO_SECRET, "key": "client-secret"},
                "redirectUrl": SSO_REDIRECT,
                "scopes": ["groups"],
                # Users act as the ServiceAccount their groups map to, never as the server's own.
                "rbac": {"enabled": True},
            },
        }
    return {
        "controller": {"serviceAccount": {"name": CONTROLLER_SERVICE_ACCOUNT}},
        "server": server,
        "workflow": {
            "rbac": {
                "serviceAccounts": [
                    {"name": account, "namespace": NAMESPACE}
                    for pipeline in pipelines
                    for account in pipeline.service_accounts
                ]
            }
        },
        # No `artifactRepository`: no default with bucket-wide credentials to fall back to (module docstring).
    }


def artifact_repositories() -> dict[str, str]:
    """ConfigMap `artifact-repositories`: one artifact repository per app with a pipeline, keyed by the
    app, each with the app's own prefix and credentials. No `default-artifact-repository` annotation:
    a pipeline names its own key or gets none."""
    repositories = {}
    for owner in minio.workflow_artifacts_users():
        s3 = {
            "bucket": minio.WORKFLOW_ARTIFACTS_BUCKET,
            "endpoint": minio.ENDPOINT.removeprefix("https://"),
            "insecure": False,
            "caSecret": {"name": CA_SECRET, "key": CA_KEY},
            # The default is `{{workflow.name}}/{{pod.name}}` (v4.0.6 pkg/apis/workflow/v1alpha1/
            # artifact_repository_types.go DefaultArchivePattern): under the app's prefix, the only one
            # its user may reach. Key-only input artifacts (the checkpoints) take bucket and
            # credentials from this repository too (v4.0.6 docs/key-only-artifacts.md).
            "keyFormat": f"{owner.prefix}{{{{workflow.name}}}}/{{{{pod.name}}}}",
            "accessKeySecret": {"name": owner.secret, "key": "AWS_ACCESS_KEY_ID"},
            "secretKeySecret": {
                "name": owner.secret,
                "key": "AWS_SECRET_ACCESS_KEY",
            },  # pragma: allowlist secret
        }
        repositories[owner.app] = yaml.safe_dump({"s3": s3}, sort_keys=False)
    return repositories


class ArgoWorkflows(ChartService):
    """Argo Workflows, its credentials from Vault, and every app's training pipeline."""

    def __init__(self, name: str, args: ArgoWorkflowsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "mlplat:services:ArgoWorkflows", name, NAMESPACE, args.cluster, [args.monitoring_crds], opts
        )
        config = args.settings
        # Synced by VaultAccess (services/__init__.py) from the paths Minio seeded; role
        # `argo-workflows` reads them (platform/vault/policies/argo-workflows.hcl).
        store = args.artifact_store
        for seed in (*store.workflow_artifacts, store.model_publisher):
            self.seeds.append(SeededSecret(NAMESPACE, seed.secret_name, seed.vault_path, seed.resource))
        self.seed(
            "mlflow",
            MLFLOW_SECRET,
            MLFLOW_VAULT_PATH,
            {
                "MLFLOW_TRACKING_USERNAME": MLFLOW_USER,
                "MLFLOW_TRACKING_PASSWORD": self.password("mlflow-password"),
            },
        )
        # GitHub takes a token as the password of any user name over https; git clones with both keys.
        self.seed(
            "github", GITHUB_SECRET, GITHUB_VAULT_PATH, {"username": "x-access-token", "token": PLACEHOLDER}
        )
        if config.sso is not None:
            self.seed(
                "sso",
                SSO_SECRET,
                SSO_VAULT_PATH,
                {"client-id": config.sso.client_id, "client-secret": PLACEHOLDER},
            )
        self.ca = k8s.core.v1.Secret(
            f"{name}-internal-ca",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CA_SECRET, namespace=self.namespace.metadata.name),
            type="Opaque",
            string_data={CA_KEY: args.ca.cert_pem},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        self.artifact_repositories = k8s.core.v1.ConfigMap(
            f"{name}-artifact-repositories",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ARTIFACT_REPOSITORIES_CONFIGMAP, namespace=self.namespace.metadata.name
            ),
            data=artifact_repositories(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        self.repository = k8s.core.v1.ConfigMap(
            f"{name}-platform-repository",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=PLATFORM_REPOSITORY_CONFIGMAP, namespace=self.namespace.metadata.name
            ),
            data={
                "url": https_address(args.repository.repo_url),
                "revision": args.repository.target_revision,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace]),
        )
        # Before the controller exists, so no Workflow is ever admitted without it.
        self.admission = WorkflowAdmission(
            f"{name}-admission",
            WorkflowAdmissionArgs(
                namespace=NAMESPACE,
                templates=declared_templates(args.pipelines),
                controller_service_account=CONTROLLER_SERVICE_ACCOUNT,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.release = self.install(
            "release",
            RELEASE,
            "argo-workflows",
            computed=computed_values(config, args.pipelines),
            depends_on=[
                self.namespace,
                self.admission.binding,
                self.ca,
                self.artifact_repositories,
                self.repository,
                *(s.resource for s in self.seeds),
                args.monitoring_crds,
                args.artifact_store.release,
                args.registry,
            ],
        )
        self.pipelines = [
            _manifest(
                self,
                f"{name}-{pipeline.app}",
                _scheduled(with_platform_repository(doc, args.repository), config.schedules),
                [self.release],
            )
            for pipeline in args.pipelines
            for doc in pipeline.documents
        ]
        self.register_outputs({"release": self.release.status, "pipelines": [r.urn for r in self.pipelines]})


def _scheduled(doc: Mapping[str, Any], schedules: bool) -> Mapping[str, Any]:
    """A CronWorkflow suspended where the stack runs no schedules (`services.argo_workflows.schedules`)."""
    if doc.get("kind") != "CronWorkflow" or schedules:
        return doc
    return {**doc, "spec": {**doc["spec"], "suspend": True}}


def _manifest(
    owner: pulumi.Resource, prefix: str, doc: Mapping[str, Any], after: list[pulumi.Resource]
) -> pulumi.CustomResource:
    """One pipeline manifest as it is in git, once the chart's CRDs exist (the ServiceAccount as the
    built-in kind it is, the Argo objects as custom resources)."""
    metadata = k8s.meta.v1.ObjectMetaArgs(
        name=doc["metadata"]["name"],
        namespace=doc["metadata"]["namespace"],
        labels=doc["metadata"].get("labels"),
        annotations=doc["metadata"].get("annotations"),
    )
    name = f"{prefix}-{str(doc['kind']).lower()}-{doc['metadata']['name']}"
    opts = pulumi.ResourceOptions(parent=owner, depends_on=after)
    if (doc["apiVersion"], doc["kind"]) == ("v1", "ServiceAccount"):
        if set(doc) - {"apiVersion", "kind", "metadata"}:
            raise ValueError(
                f"ServiceAccount {doc['metadata']['name']}: a pipeline's account carries metadata only"
            )
        return k8s.core.v1.ServiceAccount(name, metadata=metadata, opts=opts)
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
    return k8s.apiextensions.CustomResource(
        name, api_version=str(doc["apiVersion"]), kind=str(doc["kind"]), metadata=metadata, opts=opts, **body
    )
