"""The cluster side of model monitoring beyond the logger: the Pushgateway the drift jobs push to,
one scheduled drift job per monitored app, and the flows between them (evaluated as Kubernetes
would, with the same evaluator as test_network_policies.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra import versions
from infra.config import ENVIRONMENTS, InferenceLogsConfig
from infra.contract import MODEL_LABEL, SUSPENDED_BY_LABEL
from infra.services import gateway, minio, model_monitoring, monitoring
from tests.support.harness import Plan
from tests.support.netpol import Pod
from tests.support.netpol_world import PODS, PlanFor, World

REPO = Path(__file__).resolve().parents[3]
CRONJOB = "kubernetes:batch/v1:CronJob"
MONITORED = {
    "iris-classifier": ("models-core-ml", "iris-classifier"),
    "churn-gbm": ("models-growth", "churn-gbm"),
}


def test_drift_scores_reach_prometheus_with_the_jobs_own_labels(plan: Plan) -> None:
    r = plan.releases()[monitoring.PUSHGATEWAY_RELEASE]
    assert r.inputs["chart"] == "prometheus-pushgateway" and r.inputs["version"] == "3.8.0", r.urn
    values = r.inputs["values"]
    monitor = values["serviceMonitor"]
    # Without honorLabels the pushed job/instance labels are overwritten by the scrape target's.
    assert monitor["enabled"] is True and monitor["honorLabels"] is True, f"{r.urn}: {monitor}"
    assert values["networkPolicy"] == {}, f"{r.urn}: the chart's own policy would add to the platform's"
    stack = plan.releases()["kube-prometheus-stack"]
    assert stack.urn in r.dependencies, f"{r.urn} is installed before the ServiceMonitor CRD"


def test_every_monitored_app_gets_a_drift_job_publishing_to_the_pushgateway(plan: Plan) -> None:
    jobs = {j.inputs["metadata"]["name"]: j for j in plan.of_type(CRONJOB)}
    assert sorted(jobs) == sorted(f"drift-{app}" for app in MONITORED), sorted(jobs)
    for app, (namespace, isvc) in MONITORED.items():
        job = jobs[f"drift-{app}"]
        spec = job.inputs["spec"]
        pod = spec["jobTemplate"]["spec"]["template"]
        assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "drift-job", job.urn
        (drift,) = pod["spec"]["containers"]
        args = drift["args"]
        assert args[:3] == ["monitor", "drift", app] and args[args.index("--env") + 1] == plan.env, args
        assert args[args.index("--pushgateway") + 1] == monitoring.PUSHGATEWAY_URL, args
        fetch = {c["name"]: c["args"] for c in pod["spec"]["initContainers"]}
        # The app's own prefix of the logs bucket, where its logger writes (<namespace>/<isvc>/).
        assert f"store/{minio.LOGS_BUCKET}/{namespace}/{isvc}/" in fetch["fetch-logs"], fetch
        secrets = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for c in pod["spec"]["initContainers"]
            for e in c["env"]
            if "valueFrom" in e
        }
        assert secrets == {minio.LOGS_READER.secret, minio.MODEL_READER.secret}, f"{job.urn}: {secrets}"


def test_drift_jobs_never_pull_the_unpublished_image_until_told(plan: Plan) -> None:
    document = yaml.safe_load((REPO / "environments" / f"Pulumi.{plan.env}.yaml").read_text())
    published = document["config"]["mlplat:services"]["inference_logs"].get("drift_jobs", False)
    for job in plan.of_type(CRONJOB):
        assert job.inputs["spec"]["suspend"] is (not published), job.urn
        image = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == versions.IMAGES["mlplat-monitor"], job.urn


def test_a_drift_job_the_setting_keeps_off_is_labelled_so_the_alert_rules_stay_quiet(plan: Plan) -> None:
    """ModelMonitoringJobNotRunning warned forever while drift_jobs was off (as shipped): the rules now
    skip a suspended job that carries this label, which kube-state-metrics must export to them."""
    document = yaml.safe_load((REPO / "environments" / f"Pulumi.{plan.env}.yaml").read_text())
    published = document["config"]["mlplat:services"]["inference_logs"].get("drift_jobs", False)
    for job in plan.of_type(CRONJOB):
        labels = job.inputs["metadata"]["labels"]
        expected = None if published else "services.inference_logs.drift_jobs"
        assert labels.get(SUSPENDED_BY_LABEL) == expected, f"{job.urn}: {labels}"
    stack = plan.releases()["kube-prometheus-stack"].inputs["values"]["kube-state-metrics"]
    assert f"cronjobs=[{SUSPENDED_BY_LABEL}]" in stack["metricLabelsAllowlist"]


def test_a_drift_job_switched_on_loses_the_suspended_label() -> None:
    (app, *_) = model_monitoring.monitored_apps()
    on = model_monitoring.job_labels(app, InferenceLogsConfig(retention_days=7, drift_jobs=True))
    assert SUSPENDED_BY_LABEL not in on and on[MODEL_LABEL] == app.app, on


def test_drift_jobs_run_under_restricted_pod_security(plan: Plan) -> None:
    namespace = next(
        n
        for n in plan.of_type("kubernetes:core/v1:Namespace")
        if n.inputs["metadata"]["name"] == model_monitoring.NAMESPACE
    )
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for job in plan.of_type(CRONJOB):
        pod = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, job.urn
        for c in [*pod["initContainers"], *pod["containers"]]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}, c[
                "name"
            ]
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]


def test_drift_job_readers_come_from_vault_into_their_namespace(plan: Plan) -> None:
    synced = {
        s.inputs["metadata"]["name"]: s.inputs["spec"]["path"]
        for s in plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret")
        if s.inputs["metadata"]["namespace"] == model_monitoring.NAMESPACE
    }
    assert synced == {
        minio.LOGS_READER.secret: minio.LOGS_READER.vault_path,
        minio.MODEL_READER.secret: minio.MODEL_READER.vault_path,
        model_monitoring.MLFLOW_READER_SECRET: model_monitoring.MLFLOW_READER_VAULT_PATH,
    }, synced
    policy = (REPO / "platform" / "vault" / "policies" / f"{model_monitoring.NAMESPACE}.hcl").read_text()
    paths = sorted(line.split('"')[1] for line in policy.splitlines() if line.startswith("path "))
    assert paths == sorted(f"kv/data/{p}" for p in synced.values()), paths


def test_the_monitored_apps_are_those_with_a_contract() -> None:
    found = {(t.app, t.namespace, t.isvc) for t in model_monitoring.monitored_apps()}
    assert found == {(app, ns, isvc) for app, (ns, isvc) in MONITORED.items()}, found


def test_sidecar_and_drift_job_run_the_same_mlplat_image() -> None:
    component = yaml.safe_load((REPO / "apps/components/inference-logging/kustomization.yaml").read_text())
    (image,) = component["images"]
    assert f"{image['newName']}:{image['newTag']}" == versions.IMAGES["mlplat-monitor"]


@pytest.fixture(params=ENVIRONMENTS)
def cluster(request: pytest.FixtureRequest, offline_plan: PlanFor) -> World:
    return World(request.param, offline_plan(request.param))


def _pod(world: World, namespace: str, labels: dict[str, str], name: str) -> Pod:
    return Pod(namespace, labels, next(world.hosts), name)


def test_only_drift_jobs_push_to_the_pushgateway(cluster: World) -> None:
    gateway = _pod(cluster, "monitoring", {"app.kubernetes.io/name": "prometheus-pushgateway"}, "pushgateway")
    drift = _pod(cluster, model_monitoring.NAMESPACE, model_monitoring.JOB_LABEL, "drift job")
    assert cluster.reach(drift, gateway, monitoring.PUSHGATEWAY_PORT)
    for intruder in ("model", "stranger", "mlflow", "minio"):
        assert not cluster.reach(intruder, gateway, monitoring.PUSHGATEWAY_PORT), intruder
    assert not cluster.reach(
        cluster.newcomer(model_monitoring.NAMESPACE), gateway, monitoring.PUSHGATEWAY_PORT
    )
    assert cluster.reach("prometheus", gateway, monitoring.PUSHGATEWAY_PORT)  # scraped


def test_drift_jobs_reach_the_logs_and_the_registry_and_nothing_else(cluster: World) -> None:
    drift = _pod(cluster, model_monitoring.NAMESPACE, model_monitoring.JOB_LABEL, "drift job")
    assert cluster.reach(drift, "minio", 9000) and cluster.reach(drift, "mlflow", 5000)
    for target, port in (("vault", 8200), ("postgresql", 5432), ("model", 8080), ("alertmanager", 9093)):
        assert not cluster.reach(drift, target, port), f"{target}:{port}"


@pytest.mark.parametrize("port", [9081])
def test_the_gateway_reaches_the_logging_agent_and_strangers_do_not(cluster: World, port: int) -> None:
    assert cluster.reach("envoy-proxy", "model", port)  # the inference Gateway's proxy, all its labels
    assert cluster.reach("prometheus", "model", port)
    assert not cluster.reach("stranger", "model", port)
    assert not cluster.reach("envoy-gateway", "model", port)  # the controller, same namespace


@pytest.mark.parametrize("port", [9081])
def test_another_gateways_proxies_do_not_reach_the_logging_agent(cluster: World, port: int) -> None:
    (namespace, labels) = PODS["envoy-proxy"]
    public = _pod(
        cluster, namespace, {**labels, "gateway.envoyproxy.io/owning-gateway-name": "public"}, "public proxy"
    )
    assert not cluster.reach(public, "model", port)
    bare = _pod(cluster, namespace, dict(gateway.PROXY_LABELS), "proxy without its Gateway's labels")
    assert not cluster.reach(bare, "model", port)
