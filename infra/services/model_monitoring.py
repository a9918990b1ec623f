"""The scheduled drift job of every monitored app (README "Model monitoring"), in namespace
`model-monitoring`.

Model apps may not own CronJobs (CKV_MLP_12, the AppProjects), so the platform runs one per app
whose base declares what its logs hold (`apps/<app>/base/monitoring.yaml`). Each run, hourly:
1. `mc mirror` copies the last day of the app's inference logs (`<namespace>/<isvc>/` of the logs
   bucket, read-only user `inference-logs-reader`) and the app's model versions (`model-reader`,
   whose reference samples the job compares with) into the pod; MinIO is verified against the
   internal CA (mc reads CAs from `<config dir>/certs/CAs/`).
2. `mlplat monitor drift APP --env ENV` scores that window against the served version's reference
   and pushes the scores to the Pushgateway under the names mlplat/monitoring/metrics.py owns.

The `mlplat-monitor` image (infra/versions.py) is built from images/monitor/Dockerfile and pushed by
.github/workflows/monitor-image.yml on main; the CronJobs are created suspended until
`services.inference_logs.drift_jobs` says it is published (a suspended job never pulls a missing
image; ModelMonitoringStale then says nothing is judged).
The job reads the registry as its own MLflow user `drift-job` (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`,
which mlplat/registry_gate.py sends as basic auth): its password is generated here and then owned
by Vault (`platform/model-monitoring/mlflow-reader`, readable by role `model-monitoring` only). The
server refuses unknown users and grants nothing by default (platform/mlflow/values.yaml
`defaultPermission: NO_PERMISSIONS`), so an MLflow admin creates the user with that password and
grants it READ on the monitored apps' registered models, as for every other MLflow client
(README "Model monitoring" gives the commands).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import versions
from infra.config import ConfigError, InferenceLogsConfig
from infra.contract import MODEL_LABEL, SUSPENDED_BY_LABEL
from infra.monitoring_contract import ContractError, load, path_of
from infra.services import minio, mlflow, monitoring
from infra.services.cert_manager import CA_BUNDLE_CONFIGMAP, InternalCa
from infra.services.chart import REPO, namespace
from infra.services.secrets import SeededSecret, password, seed_secret

NAMESPACE = "model-monitoring"
# Every drift job pod carries it: the NetworkPolicies admit these pods (and only these) to the
# Pushgateway, the logs bucket and the registry.
JOB_LABEL = {"app.kubernetes.io/component": "drift-job"}
# Hourly, off the hour; a run scores the last day of logs (`WINDOW`, mc's `#d#hh#mm#ss` duration:
# minio/docs source/reference/minio-mc/mc-mirror.rst `--newer-than`).
SCHEDULE = "17 * * * *"
WINDOW = "1d"
MLFLOW_URL = f"http://{mlflow.RELEASE}.{mlflow.NAMESPACE}.svc.cluster.local:80"
MINIO_HOST = minio.ENDPOINT.removeprefix("https://")
CA_KEY = "ca.crt"
# The job's own MLflow account (module docstring): read-only, from Vault.
MLFLOW_READER_USER = "drift-job"
MLFLOW_READER_SECRET = "mlflow-reader"  # pragma: allowlist secret (a Secret name)
MLFLOW_READER_VAULT_PATH = "platform/model-monitoring/mlflow-reader"
# The job's user: the images' non-root user, and the file owner of the emptyDirs.
RUN_AS = 65532


@dataclass(frozen=True)
class MonitoredApp:
    """An app whose base declares its logs, where its logger writes (`<namespace>/<isvc>/`), and how
    many days each environment keeps them (the contract's `retention_days`)."""

    app: str
    namespace: str
    isvc: str
    retention_days: Mapping[str, int]

    @property
    def logs_prefix(self) -> str:
        return f"{self.namespace}/{self.isvc}/"


def _retention_days(app: str, repo: Path) -> dict[str, int]:
    """The app's `retention_days`, from its contract as mlplat validates it (infra/monitoring_contract.py)."""
    try:
        contract = load(app, repo)
    except ContractError as err:
        raise ConfigError(str(path_of(app, repo)), [("(file)", str(err))]) from None
    return {env: days for env, days in contract.retention_days.items()}


def monitored_apps(repo: Path = REPO, *, environment: str | None = None) -> list[MonitoredApp]:
    """Apps with `base/monitoring.yaml`, with the namespace and name of their base InferenceService;
    with `environment`, only those whose contract keeps logs there. Every app that deploys there does
    (infra/monitoring_contract.py refuses an overlay without its retention); following the contracts
    rather than the overlays keeps an app's expiry rule and drift job in place while its overlay comes
    and goes between deploys."""
    found = []
    for contract in sorted(repo.glob("apps/*/base/monitoring.yaml")):
        base = contract.parent
        app = base.parent.name
        retention = _retention_days(app, repo)
        if environment is not None and environment not in retention:
            continue
        isvc = next(
            doc
            for path in sorted(base.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text())
            if isinstance(doc, dict) and doc.get("kind") == "InferenceService"
        )
        meta = isvc["metadata"]
        found.append(MonitoredApp(app, meta["namespace"], meta["name"], retention))
    return found


@dataclass(frozen=True, kw_only=True)
class DriftJobsArgs:
    environment: str  # the jobs judge the versions this environment serves
    settings: InferenceLogsConfig  # services.inference_logs: whether the jobs run
    # The Secrets Minio seeded for the two readers: the same Vault paths are synced here.
    logs_reader: SeededSecret
    model_reader: SeededSecret
    ca: InternalCa  # the internal CA (cert_manager.py): the jobs verify MinIO against its certificate
    # The Pushgateway's release (monitoring.py): the jobs push their scores there.
    pushgateway: pulumi.Resource


def _security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _mirror(name: str, secret: str, source: str, dest: str, newer_than: str | None) -> dict[str, Any]:
    """An init container copying `source` (alias `store`) into `dest`, credentials from `secret`."""
    key = {"name": secret}
    args = ["--config-dir", "/tmp/mc", "mirror", "--quiet", "--overwrite"]
    args += ["--newer-than", newer_than] if newer_than else []
    return {
        "name": name,
        "image": versions.IMAGES["minio-mc"],
        "args": [*args, f"store/{source}", dest],
        "env": [
            {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {**key, "key": "AWS_ACCESS_KEY_ID"}}},
            {
                "name": "AWS_SECRET_ACCESS_KEY",
                "valueFrom": {"secretKeyRef": {**key, "key": "AWS_SECRET_ACCESS_KEY"}},
            },
            # mc reads an alias from MC_HOST_<alias>; Kubernetes expands $(VAR) of earlier variables.
            {
                "name": "MC_HOST_store",
                "value": f"https://$(AWS_ACCESS_KEY_ID):$(AWS_SECRET_ACCESS_KEY)@{MINIO_HOST}",
            },
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "securityContext": _security(),
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "mc", "mountPath": "/tmp/mc"},
            {"name": "ca", "mountPath": "/tmp/mc/certs/CAs", "readOnly": True},
        ],
    }


# The setting that suspends the jobs, as the stack file spells its key path (infra/config.py
# InferenceLogsConfig.drift_jobs): a label value may hold dots (up to 63 characters,
# https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set).
DRIFT_JOBS_SETTING = "services.inference_logs.drift_jobs"


def job_labels(target: MonitoredApp, settings: InferenceLogsConfig) -> dict[str, str]:
    """Labels of one app's CronJob. While the setting keeps the jobs suspended they say so, so that
    ModelMonitoringJobNotRunning stays quiet about a configured-off job and still warns about one
    suspended by hand (platform/prometheus/rules/model-monitoring.yaml)."""
    off = {} if settings.drift_jobs else {SUSPENDED_BY_LABEL: DRIFT_JOBS_SETTING}
    return {MODEL_LABEL: target.app, **off}


def job_spec(target: MonitoredApp, env: str, settings: InferenceLogsConfig) -> dict[str, Any]:
    """The CronJob spec of one app's drift job in environment `env`."""
    suspend = not settings.drift_jobs
    logs = f"{minio.LOGS_BUCKET}/{target.logs_prefix}"
    models = f"{minio.MODEL_BUCKET}/{target.app}/"
    drift = {
        "name": "drift",
        "image": versions.IMAGES["mlplat-monitor"],
        "args": [
            *("monitor", "drift", target.app, "--env", env),
            *("--logs", "/data/logs", "--model-store", "/data/models"),
            *("--registry", MLFLOW_URL, "--pushgateway", monitoring.PUSHGATEWAY_URL),
        ],
        # Measured: 100,000 logged requests in 9.3 s and 504 MiB peak (README "Model monitoring").
        "resources": {
            "requests": {"cpu": "500m", "memory": "768Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        # The root filesystem is read-only: anything a library caches goes to the /tmp emptyDir.
        # The registry credentials are the variables mlplat/registry_gate.py (like MLflow's client) reads.
        "env": [
            {"name": "HOME", "value": "/tmp"},
            *(
                {"name": key, "valueFrom": {"secretKeyRef": {"name": MLFLOW_READER_SECRET, "key": key}}}
                for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
            ),
        ],
        "securityContext": _security(),
        "volumeMounts": [
            {"name": "data", "mountPath": "/data", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod = {
        "serviceAccountName": "drift-job",
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [
            _mirror("fetch-logs", minio.LOGS_READER.secret, logs, "/data/logs", WINDOW),
            _mirror("fetch-reference", minio.MODEL_READER.secret, models, f"/data/models/{target.app}", None),
        ],
        "containers": [drift],
        "volumes": [
            {"name": "data", "emptyDir": {"sizeLimit": "2Gi"}},
            {"name": "mc", "emptyDir": {"sizeLimit": "16Mi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            {
                "name": "ca",
                "configMap": {"name": CA_BUNDLE_CONFIGMAP, "items": [{"key": CA_KEY, "path": CA_KEY}]},
            },
        ],
    }
    return {
        "schedule": SCHEDULE,
        "suspend": suspend,
        # A slow run is never doubled; a missed one is simply skipped (the next covers the window).
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 600,
        "successfulJobsHistoryLimit": 1,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "spec": {
                "backoffLimit": 1,
                "activeDeadlineSeconds": 1800,
                "ttlSecondsAfterFinished": 86400,
                "template": {"metadata": {"labels": {**JOB_LABEL, MODEL_LABEL: target.app}}, "spec": pod},
            }
        },
    }


class DriftJobs(pulumi.ComponentResource):
    """Namespace `model-monitoring`, the readers' credentials from Vault, and one CronJob per app."""

    def __init__(self, name: str, args: DriftJobsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:DriftJobs", name, None, opts)
        self.namespace = namespace(self, f"{name}-ns", NAMESPACE)
        child = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, args.pushgateway])
        # Synced by VaultAccess (services/__init__.py) from the paths Minio seeded; role
        # `model-monitoring` reads them (platform/vault/policies/model-monitoring.hcl).
        self.seeds = [
            SeededSecret(NAMESPACE, seed.secret_name, seed.vault_path, seed.resource)
            for seed in (args.logs_reader, args.model_reader)
        ]
        self.mlflow_reader = seed_secret(
            self,
            f"{name}-mlflow-reader",
            self.namespace,
            NAMESPACE,
            MLFLOW_READER_SECRET,
            MLFLOW_READER_VAULT_PATH,
            {
                "MLFLOW_TRACKING_USERNAME": MLFLOW_READER_USER,
                "MLFLOW_TRACKING_PASSWORD": password(self, f"{name}-mlflow-reader-password"),
            },
        )
        self.seeds.append(self.mlflow_reader)
        self.ca = args.ca.bundle(self, f"{name}-internal-ca", self.namespace, CA_KEY)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="drift-job", namespace=NAMESPACE),
            automount_service_account_token=False,
            opts=child,
        )
        self.jobs: list[k8s.batch.v1.CronJob] = []
        for target in monitored_apps(environment=args.environment):
            job = k8s.batch.v1.CronJob(
                f"{name}-{target.app}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"drift-{target.app}", namespace=NAMESPACE, labels=job_labels(target, args.settings)
                ),
                # Typed Any: mypy 2.4.1 exhausts memory matching a dict against CronJobSpecArgsDict.
                spec=cast(Any, job_spec(target, args.environment, args.settings)),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[
                        self.namespace,
                        self.ca,
                        account,
                        self.mlflow_reader.resource,
                        args.pushgateway,
                    ],
                ),
            )
            self.jobs.append(job)
        self.register_outputs({"jobs": [j.metadata.name for j in self.jobs]})
