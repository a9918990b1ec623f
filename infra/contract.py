"""The platform contract: names the program, the `mlplat` tools and the model apps under apps/ share.

One owner for each: the environments, the labels and annotations model manifests and nodes carry,
the storage class stateful services claim, and where a registered model version lives in the model
store. The program (infra/), the CLI (mlplat/) and the tests import these names; the YAML under
apps/ and platform/ spells them literally (it is the contract's user) and a test checks it uses
these. Standard library only, so importing it pulls in neither Pulumi nor the CLI (docs/architecture.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Literal, get_args

# The environments, least to most strict. One stack file each (environments/Pulumi.<env>.yaml) and
# one overlay each per app (apps/<app>/overlays/<env>/). Adding one starts here.
Environment = Literal["dev", "staging", "prod"]
ENVIRONMENTS: Final[tuple[Environment, ...]] = get_args(Environment)
# The production environments: the strict end of that order, held to production's gates (the stack
# config's never-weaker rules, the policy pack's prod checks, the registry's approval alias, raw personal
# fields refused in inference logs, canary rollouts). A set, not "the last name": a second production
# environment (another region) gets every gate by being named here, never by matching the text "prod".
# `mlplat generate` refuses a contract whose last environment is not one of these (mlplat/generate.py).
PRODUCTION: Final[frozenset[Environment]] = frozenset({"prod"})


def app_environments(app_dir: Path) -> tuple[Environment, ...]:
    """The environments an app deploys to, in promotion order: those it has an overlay folder for.

    Each environment's ApplicationSet makes one Application per folder `apps/*/overlays/<env>`
    (platform/argocd/models.yaml: a git directories generator, which "generates parameters using the
    directory structure", argoproj/argo-cd docs/operator-manual/applicationset/Generators-Git.md), so
    the folder is what deploys an app there, and an app owes per-environment values (evaluation
    thresholds, log retention) for these only.
    """
    overlays = app_dir / "overlays"
    return tuple(env for env in ENVIRONMENTS if (overlays / env).is_dir())


# Every label and annotation key of the contract is `<prefix>/<name>` under this one prefix (a
# Kubernetes key prefix is a DNS subdomain, https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set).
KEY_PREFIX: Final = "mlplat"


def _key(name: str) -> str:
    return f"{KEY_PREFIX}/{name}"


# Model objects (apps/<app>/base): who owns the app, which registered model it serves, and which
# registered version each environment deploys (the overlays' model-version.yaml patch it).
TEAM_LABEL: Final = _key("team")
MODEL_LABEL: Final = _key("model")
MODEL_VERSION_ANNOTATION: Final = _key("model-version")
# Written by `mlplat promote --canary` / `mlplat rollback` beside the version they change.
CANARY_VERSION_ANNOTATION: Final = _key("canary-version")
ROLLBACK_VERSION_ANNOTATION: Final = _key("rollback-version")
# GPU memory (GiB) a model needs, declared by GPU apps and checked against the pool's GPUs.
GPU_MEMORY_ANNOTATION: Final = _key("gpu-memory-gib")
# The p99 latency objective of a model app, a label on its InferenceService: KServe copies the
# InferenceService's labels to its predictor Deployment and pods, where kube-state-metrics exports it
# and the alert rules read it (platform/prometheus/rules/model-serving.yaml, docs/alerts.md). PromQL
# cannot turn a label value into a number, so the value is one of these tiers (milliseconds); an app
# without the label is held to 1000 ms. `none` says that no whole-response p99 judges the app: a
# streaming LLM's response lasts as long as its generation (minutes), so its p99 measures answer
# length, not health (apps/README.md "Serving LLMs"). `mlplat validate` refuses any other value.
SLO_P99_LABEL: Final = _key("slo-p99-ms")
SLO_P99_TIERS_MS: Final = ("100", "250", "500", "1000", "2500", "5000")
SLO_P99_NONE: Final = "none"
# On a platform object a stack setting keeps switched off (the drift CronJobs while
# `services.inference_logs.drift_jobs` is false), valued with that setting's key path: alert rules
# read it (kube-state-metrics `*_labels`) to tell "off by configuration" from "broken".
SUSPENDED_BY_LABEL: Final = _key("suspended-by")
# The environment a rendered object belongs to; also the AWS tag the deploy role's isolation keys on.
ENVIRONMENT_LABEL: Final = _key("environment")

# Node labels pods select: a GPU pool by name (`mlplat/gpu-pool=<pool>`), and the system / CPU
# model pools (`mlplat/pool=<pool>`).
GPU_POOL_LABEL: Final = _key("gpu-pool")
NODE_POOL_LABEL: Final = _key("pool")

# The StorageClass stateful services (Vault, MinIO, MLflow's database) claim: its volumes outlive
# their claims (reclaimPolicy Retain), so deleting a release never deletes its data.
STATEFUL_STORAGE_CLASS: Final = "gp3-retain"

# The model store: the MinIO bucket holding every registered version at `<model>/<N>`. Manifests'
# storageUri, the registry's version sources and the local stand-in all use this one form.
MODEL_STORE_URI: Final = "s3://mlplat-models"
MODEL_VERSION_PATH: Final = re.compile(r"^(?P<model>[a-z0-9]([a-z0-9-]*[a-z0-9])?)/(?P<version>[1-9][0-9]*)$")


def model_version_uri(model: str, version: str | int) -> str:
    """The store URI of one registered model version: `s3://mlplat-models/<model>/<N>`."""
    return f"{MODEL_STORE_URI}/{model}/{version}"


# The retraining pipelines' artifact repositories (README "Retraining: the cluster side"): the
# program writes one per app with a pipeline as key `<app>` of this ConfigMap in namespace
# argo-workflows, with that app's own MinIO user's Secret; each app's WorkflowTemplate names its own
# (`spec.artifactRepositoryRef`), which `mlplat validate` holds it to (MLP-RETRAIN-ARTIFACTS).
ARTIFACT_REPOSITORIES_CONFIGMAP: Final = "artifact-repositories"
# The repository Argo CD syncs (`services.argocd.repo_url`), key `url` of this ConfigMap in namespace
# argo-workflows, written by the program: a pipeline step that pushes to it reads it from there
# (`configMapKeyRef`), and its git artifacts name none (the program fills them in, infra/gitops.py).
PLATFORM_REPOSITORY_CONFIGMAP: Final = "platform-repository"
# Any app's artifact Secret, `argo-artifacts-<app>-s3`, wherever a text names it (the app as group `app`).
WORKFLOW_ARTIFACTS_SECRET: Final = re.compile(
    r"(?<![-a-z0-9])argo-artifacts-(?P<app>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)-s3(?![-a-z0-9])"
)


def workflow_artifacts_secret(app: str) -> str:
    """The Secret holding `app`'s MinIO user for the artifact bucket, which only its pipeline mounts."""
    return f"argo-artifacts-{app}-s3"
