"""MinIO: the S3 store for model artifacts (`apps.model_store_uri`) and MLflow's artifacts.

Distributed with erasure coding where `services.minio` says so (prod: 4+ replicas), on the Retain
StorageClass. Root and MLflow credentials are generated, seeded once into Kubernetes Secrets and
then owned by Vault (see secrets.py); the chart only ever sees Secret names (`existingSecret`).

A read-only `model-reader` user is what KServe's storage initializer in every `models-<team>`
namespace downloads model artifacts with (docs/runbooks/model-namespaces.md): it can list and read
the model store bucket and nothing else.

Inference logs (README "Model monitoring") have their own bucket `mlplat-inference-logs`, never the
model store: objects expire after `services.inference_logs.retention_days` (a lifecycle rule), and
two users reach it, each for one purpose. `inference-logger` may only write objects: KServe's agent
in every logged predictor uploads batches with it and can neither list nor read back what other
apps logged. `inference-logs-reader` may only list and read: the drift jobs. Their credentials live
below `platform/minio/` in Vault (the minio role reads them to create the users; model namespaces
read them through their own role, platform/vault/policies/models-inference-logging.hcl).

The retraining pipelines write new model versions as `model-publisher`: list the model store bucket,
read and add objects under the prefixes of the apps that have a pipeline only, never delete. Its credentials live at `platform/minio/model-publisher`,
synced into the argo-workflows namespace for the `register` step (argo_workflows.py). Their datasets,
step outputs and checkpoints live in bucket `argo-artifacts`, each app's under `<app>/` as its own user
`argo-artifacts-<app>` (`WorkflowArtifactsUser`): one app's pipeline cannot reach another's. The bucket
is versioned for lineage; only the training checkpoints expire (`workflow_artifacts_lifecycle_commands`).

MinIO serves TLS only, with certificate `minio/minio-tls` from the internal CA (cert_manager.py,
docs/adr/0004-internal-tls-ca.md); its SANs cover the Service and every distributed peer behind the
headless Service `minio-svc` (minio/minio 43a74029 helm/minio/templates/statefulset.yaml: peers are
`https://minio-{0...N}.minio-svc.minio.svc`). The chart mounts `tls.crt`/`tls.key` as
`public.crt`/`private.key` and the same `tls.crt` into `CAs/` for the peers, and its ServiceMonitor
scrapes over https verifying `serverName: minio` (templates/_helpers.tpl `minio.tlsKeysVolume`,
templates/servicemonitor.yaml). Clients verify against the CA: MLflow (mlflow.py) and KServe's
storage initializer (kserve.py, apps/components/model-store-access).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.config import RETRAINING_ENVIRONMENT, MinioConfig
from infra.contract import MODEL_STORE_URI, workflow_artifacts_secret
from infra.services.cert_manager import InternalCa
from infra.services.chart import ChartService, ServiceArgs
from infra.services.secrets import SeededSecret

NAMESPACE = "minio"
RELEASE = "minio"
SERVICE_HOST = f"{RELEASE}.{NAMESPACE}.svc.cluster.local"
ENDPOINT = f"https://{SERVICE_HOST}:9000"
# The chart's headless Service (`<fullname>-svc`), which names the distributed peers.
HEADLESS_SERVICE = f"{RELEASE}-svc"
TLS_SECRET = "minio-tls"  # pragma: allowlist secret (a Secret name)
ARTIFACTS_BUCKET = "mlflow-artifacts"
# The model store (apps.model_store_uri of every stack file, which infra/config.py holds to the contract's).
MODEL_BUCKET = MODEL_STORE_URI.removeprefix("s3://")
ROOT_SECRET = "minio-root"  # pragma: allowlist secret
# The inference logs bucket (see the module docstring).
LOGS_BUCKET = "mlplat-inference-logs"
# Argo Workflows' artifact bucket (argo_workflows.py): the retraining pipelines' datasets, step outputs
# and training checkpoints. Each app with a pipeline has its own user, reaching its own prefix `<app>/`
# only (`workflow_artifacts_statements`): one app's step can neither read nor overwrite another's.
WORKFLOW_ARTIFACTS_BUCKET = "argo-artifacts"


@dataclass(frozen=True)
class MinioUser:
    """A MinIO user with one purpose: its access key and policy in MinIO, and the Secret (key names
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, which boto3, KServe and mc all read) and Vault path its
    credentials live at. The chart creates the user from the Secret (`users[].existingSecret`)."""

    user: str
    policy: str
    secret: str
    vault_path: str


# MLflow's own user: the same Vault path is synced into the minio namespace (the chart creates the
# user from it) and into the mlflow namespace (the server signs requests with it).
MLFLOW = MinioUser("mlflow", "mlflow-artifacts-readwrite", "mlflow-s3", "platform/mlflow/s3")
# The other users' Vault paths are below `platform/minio/`, which the minio role can read.
# The model servers' user: model namespaces get their own role reading only this path
# (docs/runbooks/model-namespaces.md).
MODEL_READER = MinioUser("model-reader", "models-readonly", "model-reader-s3", "platform/minio/model-reader")
# The retraining pipelines' `register` step puts a new version's bytes at its store key before MLflow
# names them (mlplat/retrain/publish.py); synced into argo-workflows.
MODEL_PUBLISHER = MinioUser(
    "model-publisher", "models-publish", "model-publisher-s3", "platform/minio/model-publisher"
)
# The inference logs bucket's two single-purpose users (see the module docstring).
LOGS_WRITER = MinioUser(
    "inference-logger", "inference-logs-writeonly", "inference-logger-s3", "platform/minio/inference-logger"
)
LOGS_READER = MinioUser(
    "inference-logs-reader",
    "inference-logs-readonly",
    "inference-logs-reader-s3",
    "platform/minio/inference-logs-reader",
)


@dataclass(frozen=True)
class WorkflowArtifactsUser(MinioUser):
    """An app's user for the artifact bucket (`workflow_artifacts_users`)."""

    app: str

    @classmethod
    def of(cls, app: str) -> WorkflowArtifactsUser:
        # Longer than 20 characters for most apps: MinIO enforces a minimum access key length (3) and
        # no maximum (minio/minio 43a74029 internal/auth/credentials.go IsAccessKeyValid).
        name = f"argo-artifacts-{app}"
        return cls(name, name, workflow_artifacts_secret(app), f"platform/minio/argo-artifacts/{app}", app)

    @property
    def prefix(self) -> str:
        return f"{self.app}/"

    @property
    def checkpoints_prefix(self) -> str:
        """Where the train step's `checkpoint-sync` sidecar mirrors each run's checkpoints, under
        `<workflow.name>/` (apps/<app>/training/workflowtemplate.yaml)."""
        return f"{self.prefix}checkpoints/"


def workflow_artifacts_users() -> list[WorkflowArtifactsUser]:
    """One per app with a retraining pipeline (`apps/<app>/training/`)."""
    # Imported here: argo_workflows imports this module for the bucket's name and users.
    from infra.services.argo_workflows import training_pipelines

    return [WorkflowArtifactsUser.of(app) for app in sorted({p.app for p in training_pipelines()})]


def workflow_artifacts_statements(owner: WorkflowArtifactsUser) -> list[dict[str, Any]]:
    """What Argo's S3 driver and the pipeline's own `fetch` and checkpoint sidecar do, under the app's
    prefix only: list it (the driver lists a key's prefix to tell a file from a directory; `mc mirror`
    lists the checkpoint folder), read and add objects there. Nothing is deleted: artifact GC is off.

    `s3:prefix` is the condition key of ListObjects (ListBucket) in AWS IAM, which MinIO follows
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html#condition-key-bucket-ops-2,
    https://min.io/docs/minio/linux/administration/identity-access-management/policy-based-access-control.html);
    the chart renders a statement's `conditions` as `"<operator>": { <object> }` (minio/minio 43a74029
    helm/minio/templates/_helper_policy.tpl)."""
    bucket = f"arn:aws:s3:::{WORKFLOW_ARTIFACTS_BUCKET}"
    return [
        {"resources": [bucket], "actions": ["s3:GetBucketLocation"]},
        {
            "resources": [bucket],
            "actions": ["s3:ListBucket"],
            "conditions": [{"StringLike": f'"s3:prefix": ["{owner.prefix}*"]'}],
        },
        {
            "resources": [f"{bucket}/{owner.prefix}*"],
            "actions": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
        },
    ]


def server_dns_names() -> list[str]:
    """The Service from short to fully qualified, and every pod behind the headless Service."""
    suffixes = ("", f".{NAMESPACE}", f".{NAMESPACE}.svc", f".{NAMESPACE}.svc.cluster.local")
    names = [f"{RELEASE}{suffix}" for suffix in suffixes]
    # Wildcards: one label each (any replica count, scaling up included), nothing beyond the Service.
    names += [f"*.{HEADLESS_SERVICE}{suffix}" for suffix in suffixes]
    return names


@dataclass(frozen=True, kw_only=True)
class MinioArgs(ServiceArgs):
    settings: MinioConfig  # services.minio
    logs_retention_days: int  # services.inference_logs.retention_days: the logs bucket's expiry
    # The internal CA (cert_manager.py): MinIO serves TLS only, with a certificate of it.
    ca: InternalCa


def lifecycle_commands(bucket: str, rules: Sequence[str]) -> list[dict[str, str]]:
    """The `customCommands` that leave exactly `rules` (each the flags of one `mc ilm rule add`) on
    `bucket`, however many times the hook runs.

    The chart's `buckets` entries have no lifecycle key (minio/minio 43a74029 helm/minio/values.yaml,
    `buckets`), so the rules are `mc` commands of the chart's post-install/upgrade job, which runs
    `${MC} <command>` against alias `myminio`, one after the other under `set -e`
    (helm/minio/templates/_helper_custom_command.txt). `mc ilm rule add` appends a rule on every run
    (minio/mc RELEASE.2024-11-21T17-21-54Z, the chart's `mcImage`: cmd/ilm-rule-add.go `mainILMAdd`,
    `lfcCfg.Rules = append(...)`): appending on every upgrade would pile rules up until MinIO refuses
    the configuration (1000 rules, minio/minio RELEASE.2024-12-18T13-15-44Z
    internal/bucket/lifecycle/lifecycle.go errLifecycleTooManyRules) and the hook fails every upgrade.
    So each run first clears the rules (`mc ilm rule rm --all --force`, cmd/ilm-remove.go) and writes
    them again: a changed rule replaces the old one. `rm` fetches the configuration first and fails
    when there is none (a new bucket), so the first rule is added before it.

    No rules, no commands: `rm` would fail on a bucket that never had a configuration. A bucket that
    had rules and has none left keeps its old ones until a rule is written again.

    The hook runs on install and on every upgrade, that is whenever the release's values change, not on
    every `pulumi up`. On a first install the bucket may not exist yet when the first command runs: the
    chart starts its make-bucket and custom-command containers side by side in one Job pod
    (helm/minio/templates/post-job.yaml), so that command fails, and the container is restarted
    (`restartPolicy: OnFailure`) until the bucket is there.
    """
    if not rules:
        return []
    add = [{"command": f"ilm rule add {flags} myminio/{bucket}"} for flags in rules]
    return [add[0], {"command": f"ilm rule rm --all --force myminio/{bucket}"}, *add]


def logs_lifecycle_commands(environment: str, retention_days: int) -> list[dict[str, str]]:
    """The `customCommands` that put the expiry rules on the logs bucket (`lifecycle_commands`).

    `mc ilm rule add --expire-days N` expires current objects N days after creation, `--prefix P`
    only those under P (minio/docs source/reference/minio-mc/mc-ilm-rule-add.rst); of several rules
    the shortest expiry wins. So the environment's `retention_days` is the longest any log is kept,
    and an app whose contract (`apps/<app>/base/monitoring.yaml` `retention_days`) asks for less gets
    a rule on its own prefix (`<namespace>/<isvc>/`, where its logger writes). Rewriting the rules on
    every run lets a raised retention take effect too.
    """
    # Imported here: model_monitoring imports this module for the bucket's name and users.
    from infra.services.model_monitoring import monitored_apps

    rules = [f"--expire-days {retention_days}"]
    for target in monitored_apps(environment=environment):
        shorter = target.retention_days[environment]
        if shorter < retention_days:
            rules.append(f"--prefix {target.logs_prefix} --expire-days {shorter}")
    return lifecycle_commands(LOGS_BUCKET, rules)


# How long a run's checkpoints are kept after their last write. A run lives at most its WorkflowTemplate's
# `activeDeadlineSeconds` (21600: 6 hours), spot interruptions and the train step's 3 retries (30 s, 60 s,
# 120 s of backoff) included; `argo retry` of a failed run (same Workflow name, so the same checkpoints)
# starts that clock again (argoproj/argo-workflows v4.0.6 workflow/util/util.go `createNewRetryWorkflow`
# resets `status.startedAt`). A week outlasts any run with room for a failed run to be retried by hand
# after a weekend, and by then the weekly schedule has started a fresh run under a new name. A retry
# later than that finds nothing and the train step fits again (its checkpoints input is optional).
CHECKPOINT_EXPIRY_DAYS = 7
# An overwritten checkpoint's older copies: nothing reads them (a resume reads the current objects, and
# checks them against the stamp: mlplat/retrain/checkpoint.py), so the shortest expiry there is.
CHECKPOINT_NONCURRENT_EXPIRY_DAYS = 1


def workflow_artifacts_lifecycle_commands(owners: Sequence[WorkflowArtifactsUser]) -> list[dict[str, str]]:
    """The `customCommands` that expire the retraining checkpoints in the artifact bucket, and nothing
    else of it (`lifecycle_commands`).

    The bucket is versioned (see `computed_values`), so expiring a current object only adds a delete
    marker: per app, on `<app>/checkpoints/` (a rule's prefix is literal: minio/minio
    RELEASE.2024-12-18T13-15-44Z internal/bucket/lifecycle/lifecycle.go `FilterRules`,
    `strings.HasPrefix`), one rule expires current objects `CHECKPOINT_EXPIRY_DAYS` after their last
    write (`--expire-days`; due at the midnight after that, `ExpectedExpiryTime`) and noncurrent
    versions `CHECKPOINT_NONCURRENT_EXPIRY_DAYS` after they were replaced (`--noncurrent-expire-days`,
    counted from the successor's write), and a second removes the delete markers left with no version
    behind them (`--expire-delete-marker`): the two cannot share a rule (mc refuses it,
    cmd/ilm/parse.go `validateExpiration`; so does MinIO, expiration.go `Validate`
    errLifecycleInvalidDeleteMarker). The flags are those of minio/mc RELEASE.2024-11-21T17-21-54Z
    (commit 1681e449), the chart's `mcImage`: cmd/ilm-rule-add.go `ilmAddFlags`, cmd/ilm/options.go
    `GetLifecycleOptions`; a delete-marker-only rule is an action (minio-go v7.0.77, mc's go.mod,
    pkg/lifecycle/lifecycle.go `Expiration.IsNull`); minio/docs mc-ilm-rule-add.rst pairs the flags the
    same way.

    Everything else stays, noncurrent versions included: the datasets (`<app>/datasets/`) are
    overwritten in place and a registered version's lineage (its data hash) points back at the objects
    it was trained on, and each run's step outputs under `<app>/<workflow>/` (the artifact repository's
    keyFormat, argo_workflows.py) hold its archive of exactly the data `fetch` read, which `register`
    names in the lineage; the run's other outputs there share that prefix and cannot be told apart by
    one, so they are kept with it.

    `owners`: the apps whose pipelines run in this environment; none, no commands.
    """
    rules = [
        rule
        for owner in owners
        for rule in (
            f"--prefix {owner.checkpoints_prefix} --expire-days {CHECKPOINT_EXPIRY_DAYS} "
            f"--noncurrent-expire-days {CHECKPOINT_NONCURRENT_EXPIRY_DAYS}",
            f"--prefix {owner.checkpoints_prefix} --expire-delete-marker",
        )
    ]
    return lifecycle_commands(WORKFLOW_ARTIFACTS_BUCKET, rules)


def publisher_statements() -> list[dict[str, Any]]:
    """`model-publisher` may list the model bucket, and read and add objects under the prefixes of the
    apps that have a retraining pipeline (`apps/<app>/training/`) only: the models of every other app
    (the GPU LLM, an app trained by hand) are out of its reach."""
    # Imported here: argo_workflows imports this module for the bucket's name and users.
    from infra.services.argo_workflows import training_pipelines

    # A resource `arn:aws:s3:::<bucket>/<app>/*` matches the objects under that prefix: MinIO follows
    # AWS IAM's resource syntax, `*` matching any characters
    # (https://min.io/docs/minio/linux/administration/identity-access-management/policy-based-access-control.html,
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
    bucket = MODEL_BUCKET
    statements: list[dict[str, Any]] = [
        {"resources": [f"arn:aws:s3:::{bucket}"], "actions": ["s3:ListBucket"]}
    ]
    apps = sorted({p.app for p in training_pipelines()})
    # Without apps, no object statement at all: the chart renders an empty resource list as no `Resource`
    # key (minio/minio 43a74029 helm/minio/templates/_helper_policy.tpl), which does not mean "no objects".
    if apps:
        statements.append(
            {
                "resources": [f"arn:aws:s3:::{bucket}/{app}/*" for app in apps],
                "actions": ["s3:GetObject", "s3:PutObject"],
            }
        )
    return statements


def computed_values(args: MinioArgs) -> dict[str, Any]:
    minio = args.settings
    return {
        "mode": minio.mode,
        "replicas": minio.replicas,
        "persistence": {
            "enabled": True,
            "storageClass": args.cluster.storage_classes.retain,
            "size": f"{minio.volume_size_gi}Gi",
        },
        "existingSecret": ROOT_SECRET,
        # The cert-manager Secret and its file names. The pack reads any `privateKey` and any key
        # ending in `secret` as a credential; these two only name one, and travel as Pulumi
        # secrets like the access keys below rather than weakening the pack for every chart.
        "tls": {
            "enabled": True,
            "certSecret": pulumi.Output.secret(TLS_SECRET),
            "publicCrt": "tls.crt",
            "privateKey": pulumi.Output.secret("tls.key"),
        },
        "buckets": [
            # Model versions are immutable releases: versioning keeps an overwritten one recoverable.
            {"name": MODEL_BUCKET, "policy": "none", "purge": False, "versioning": True},
            {"name": ARTIFACTS_BUCKET, "policy": "none", "purge": False, "versioning": False},
            # No versioning: an expired log object must be gone, not kept as a noncurrent version.
            {"name": LOGS_BUCKET, "policy": "none", "purge": False, "versioning": False},
            # The datasets the pipelines read (`<app>/datasets/`) are overwritten in place: versioning keeps
            # the objects a registered version was trained on, which its lineage (the data hash, the run's
            # own archive of what it fetched: apps/*/training/workflowtemplate.yaml) points back to. The
            # chart's bucket Job runs `mc version enable` for `versioning: true` (minio/minio
            # helm/minio/templates/_helper_create_bucket.txt `createBucket`; the key is in chart 5.4.0's
            # values.yaml `buckets`, ../shared/reference/charts/minio). Checkpoints mirrored with
            # --overwrite keep their older copies as noncurrent versions too, until their own rules
            # expire them (`workflow_artifacts_lifecycle_commands`); nothing else here expires.
            {"name": WORKFLOW_ARTIFACTS_BUCKET, "policy": "none", "purge": False, "versioning": True},
        ],
        "customCommands": [
            *logs_lifecycle_commands(args.cluster.environment, args.logs_retention_days),
            # Checkpoints are written only where retraining runs (infra/config.py RETRAINING_ENVIRONMENT).
            *workflow_artifacts_lifecycle_commands(
                workflow_artifacts_users() if args.cluster.environment == RETRAINING_ENVIRONMENT else []
            ),
        ],
        "policies": [
            {
                "name": MLFLOW.policy,
                "statements": [
                    {"resources": [f"arn:aws:s3:::{ARTIFACTS_BUCKET}"], "actions": ["s3:ListBucket"]},
                    {
                        "resources": [f"arn:aws:s3:::{ARTIFACTS_BUCKET}/*"],
                        "actions": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    },
                ],
            },
            {
                "name": MODEL_READER.policy,
                "statements": [
                    {
                        "resources": [f"arn:aws:s3:::{MODEL_BUCKET}"],
                        "actions": ["s3:GetBucketLocation", "s3:ListBucket"],
                    },
                    {"resources": [f"arn:aws:s3:::{MODEL_BUCKET}/*"], "actions": ["s3:GetObject"]},
                ],
            },
            {
                # What `register` does (mlplat/retrain/publish.py), and no more: list the version's prefix
                # and read what is there (ListObjectsV2 is checked as s3:ListBucket, GetObject as
                # s3:GetObject), then add the missing files with a conditional PutObject (s3:PutObject):
                # minio/minio 43a74029 cmd/bucket-listobjects-handlers.go listObjectsV2Handler,
                # cmd/object-handlers.go GetObjectHandler and PutObjectHandler. No s3:DeleteObject: a
                # published version is never removed by a pipeline (and bucket versioning keeps any
                # overwritten object recoverable).
                "name": MODEL_PUBLISHER.policy,
                "statements": publisher_statements(),
            },
            {
                # KServe's agent only uploads (pkg/logger/store.go `BlobStore.Store` -> UploadObject);
                # an interrupted multipart upload may be aborted, nothing may be listed or read.
                "name": LOGS_WRITER.policy,
                "statements": [
                    {
                        "resources": [f"arn:aws:s3:::{LOGS_BUCKET}/*"],
                        "actions": ["s3:PutObject", "s3:AbortMultipartUpload"],
                    },
                ],
            },
            {
                "name": LOGS_READER.policy,
                "statements": [
                    {
                        "resources": [f"arn:aws:s3:::{LOGS_BUCKET}"],
                        "actions": ["s3:GetBucketLocation", "s3:ListBucket"],
                    },
                    {"resources": [f"arn:aws:s3:::{LOGS_BUCKET}/*"], "actions": ["s3:GetObject"]},
                ],
            },
            *(
                {"name": owner.policy, "statements": workflow_artifacts_statements(owner)}
                for owner in workflow_artifacts_users()
            ),
        ],
        # Replaces the chart's default `console/console123` user.
        "users": [
            {
                # A MinIO access key is a user name, but the pack (rightly) treats any access key
                # as sensitive; it travels as a Pulumi secret like the rest of the credentials.
                "accessKey": pulumi.Output.secret(account.user),
                "existingSecret": account.secret,
                "existingSecretKey": "AWS_SECRET_ACCESS_KEY",  # pragma: allowlist secret
                "policy": account.policy,
            }
            for account in (
                MLFLOW,
                MODEL_READER,
                LOGS_WRITER,
                LOGS_READER,
                MODEL_PUBLISHER,
                *workflow_artifacts_users(),
            )
        ],
    }


class Minio(ChartService):
    """MinIO with its buckets, a least-privilege MLflow user, and metrics scraped."""

    def __init__(self, name: str, args: MinioArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:Minio", name, NAMESPACE, args.cluster, [args.monitoring_crds], opts)
        self.certificate = args.ca.certificate(
            self,
            f"{name}-server-tls",
            TLS_SECRET,
            self.namespace,
            {"commonName": SERVICE_HOST, "dnsNames": server_dns_names()},
            # Peers dial each other with the same certificate.
            usages=["digital signature", "server auth", "client auth"],
        )
        self.seed(
            "root",
            ROOT_SECRET,
            "platform/minio/root",
            {"rootUser": "mlplat-root", "rootPassword": self.password("root-password")},
        )
        # Exposed for MLflow, which seeds the same values in its own namespace.
        self.mlflow_credentials: dict[str, pulumi.Input[str]] = {
            "AWS_ACCESS_KEY_ID": MLFLOW.user,
            "AWS_SECRET_ACCESS_KEY": self.password("mlflow-password"),
        }
        self.seed("mlflow-user", MLFLOW.secret, MLFLOW.vault_path, self.mlflow_credentials)
        # KServe's storage initializer, KServe's agent (logger), the drift jobs, each app's artifact
        # repository (argo_workflows.py) and boto3 in the pipelines' `register` step read these.
        self.model_reader = self.seed_user(MODEL_READER)
        self.logs_writer = self.seed_user(LOGS_WRITER)
        self.logs_reader = self.seed_user(LOGS_READER)
        self.workflow_artifacts = tuple(self.seed_user(owner) for owner in workflow_artifacts_users())
        self.model_publisher = self.seed_user(MODEL_PUBLISHER)
        self.release = self.install(
            "release",
            RELEASE,
            "minio",
            computed=computed_values(args),
            depends_on=[
                self.namespace,
                self.certificate,
                *(s.resource for s in self.seeds),
                args.monitoring_crds,
            ],
            protect=args.cluster.protect_stateful,
        )
        self.endpoint = ENDPOINT
        self.register_outputs({"release": self.release.status, "endpoint": ENDPOINT})

    def seed_user(self, account: MinioUser) -> SeededSecret:
        """`account`'s Secret with a generated password, named after its user."""
        password = self.password(f"{account.user}-password")
        credentials: dict[str, pulumi.Input[str]] = {
            "AWS_ACCESS_KEY_ID": account.user,
            "AWS_SECRET_ACCESS_KEY": password,
        }
        return self.seed(account.user, account.secret, account.vault_path, credentials)
