"""Mock tests of PlatformServices per environment: pins, release safety, ordering, providers, PSS."""

from __future__ import annotations

import yaml

from infra import versions
from infra.aws.karpenter import NAMESPACE as KARPENTER
from infra.services.chart import POD_SECURITY, deep_merge
from infra.services.kserve import RUNTIME_KEYS, RUNTIMES
from tests.support.harness import (
    KMS_KEY,
    REFERENCE,
    RELEASES,
    ROLE_ARN,
    Plan,
    Registered,
    build,
    reference_chart,
    switched_off,
)

ARGOCD_KINDS = ("Application", "ApplicationSet", "AppProject")


def _argocd_objects(plan: Plan) -> list[Registered]:
    """Argo CD's own objects (Argo Workflows and Events share the argoproj.io group)."""
    return [
        r
        for r in plan.resources
        if r.type.startswith("kubernetes:argoproj.io/") and r.type.rsplit(":", 1)[-1] in ARGOCD_KINDS
    ]


def test_every_service_is_a_pinned_atomic_release(plan: Plan) -> None:
    releases = plan.releases()
    expected = set(RELEASES) - set(switched_off(plan.env))
    assert set(releases) == expected, f"{plan.env}: releases {sorted(releases)}"
    for release_name in expected:
        key = RELEASES[release_name]
        r, pin = releases[release_name], versions.CHARTS[key]
        inputs = r.inputs
        if pin.repo.startswith("oci://"):
            assert inputs["chart"] == f"{pin.repo}/{pin.chart}", r.urn
            assert "repositoryOpts" not in inputs, r.urn
        else:
            assert (inputs["chart"], inputs["repositoryOpts"]["repo"]) == (pin.chart, pin.repo), r.urn
        assert inputs["version"] == pin.version, r.urn
        assert inputs["atomic"] is True and inputs["cleanupOnFail"] is True, f"{r.urn}: not atomic"
        assert inputs["skipCrds"] is False, f"{r.urn}: would skip the chart's CRDs"


def test_chart_versions_match_the_reference() -> None:
    for key, pin in versions.CHARTS.items():
        chart_file = REFERENCE / "charts" / pin.reference / "Chart.yaml"
        if not chart_file.exists():
            assert key in ("kserve-crd", "gateway-crds"), f"{key}: no reference chart {pin.reference}"
            continue
        version = str(yaml.safe_load(chart_file.read_text())["version"])
        if version in ("v0.0.0", "v1.0.0-devel", "v0.0.0-latest"):
            continue  # cert-manager, gpu-operator, gateway-helm: placeholder versions in git (SOURCES.md)
        assert version.lstrip("v") == pin.version.lstrip("v"), (
            f"{key}: pinned {pin.version}, reference {version}"
        )


def test_every_kubernetes_resource_uses_the_explicit_provider(plan: Plan) -> None:
    k8s_resources = [
        r for r in plan.resources if r.type.startswith("kubernetes:") and "providers" not in r.type
    ]
    assert len(k8s_resources) > 40, plan.env
    for r in k8s_resources:
        assert ":pulumi:providers:kubernetes::k8s::" in r.provider, f"{r.urn}: provider {r.provider!r}"


def test_platform_namespaces_enforce_pod_security(plan: Plan) -> None:
    namespaces = {r.inputs["metadata"]["name"]: r for r in plan.of_type("kubernetes:core/v1:Namespace")}
    namespaces.pop(KARPENTER)  # created with the GPU pools (infra/aws/karpenter.py), not a service
    assert set(namespaces) == set(POD_SECURITY) - set(switched_off(plan.env).values()), plan.env
    for name, r in namespaces.items():
        level = r.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        expected = "privileged" if name in ("gpu-operator", "falco", "monitoring") else level
        assert level == expected, f"{r.urn}: {level}"
        assert level in ("restricted", "baseline", "privileged"), r.urn
    for name in ("cert-manager", "kserve", "vault-secrets-operator"):
        labels = namespaces[name].inputs["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", namespaces[name].urn


def _depends(plan: Plan, dependent: str, dependency_release: str) -> None:
    r = plan.by_name(dependent)
    release_urn = plan.releases()[dependency_release].urn
    assert release_urn in r.dependencies, f"{r.urn} does not wait for {release_urn}"


def test_crd_consumers_wait_for_the_release_installing_the_crd(plan: Plan) -> None:
    _depends(plan, "platform-kserve-crd", "cert-manager")
    _depends(plan, "platform-kserve-release", "kserve-crd")
    _depends(plan, "platform-kserve-runtimes", "kserve")
    _depends(plan, "platform-kserve-controller-metrics", "kube-prometheus-stack")
    _depends(plan, "platform-monitoring-kserve-models", "kube-prometheus-stack")
    for release in ("cert-manager", "gpu-operator", "vault", "minio", "mlflow", "falco", "argocd"):
        _depends(plan, plan.releases()[release].name, "kube-prometheus-stack")  # their ServiceMonitors
    for kind in ("VaultStaticSecret", "VaultAuth"):
        for r in plan.of_type(f"kubernetes:secrets.hashicorp.com/v1beta1:{kind}"):
            if kind == "VaultAuth":
                _depends(plan, r.name, "vault-secrets-operator")
    for typ in ("PrometheusRule", "PodMonitor"):
        for r in plan.of_type(f"kubernetes:monitoring.coreos.com/v1:{typ}"):
            _depends(plan, r.name, "kube-prometheus-stack")
    gitops = _argocd_objects(plan)
    for r in gitops:
        _depends(plan, r.name, "argocd")
        assert r.inputs["metadata"]["namespace"] == "argocd", r.urn


def test_argocd_applies_only_the_current_environment(plan: Plan) -> None:
    gitops = _argocd_objects(plan)
    assert gitops, f"{plan.env}: platform/argocd/models.yaml renders an AppProject and an ApplicationSet"
    for r in gitops:
        assert f"-{plan.env}-" in r.name, r.urn


def test_prod_is_highly_available_and_dev_is_small() -> None:
    dev, prod = build("dev").releases(), build("prod").releases()
    checks = [
        ("vault", ("values", "server", "ha", "replicas"), 1, 3),
        ("minio", ("values", "mode"), "standalone", "distributed"),
        ("minio", ("values", "replicas"), 1, 4),
        ("argocd", ("values", "redis-ha", "enabled"), False, True),
        ("argocd", ("values", "server", "replicas"), 1, 2),
        ("argocd", ("values", "controller", "replicas"), 1, 2),
        ("kube-prometheus-stack", ("values", "prometheus", "prometheusSpec", "retention"), "3d", "30d"),
        ("kube-prometheus-stack", ("values", "prometheus", "prometheusSpec", "replicas"), 1, 2),
        ("mlflow", ("values", "replicaCount"), 1, 2),
    ]
    for release, path, dev_value, prod_value in checks:
        got = []
        for releases in (dev, prod):
            node = releases[release].inputs
            for part in path:
                node = node[part]
            got.append(node)
        assert got == [dev_value, prod_value], f"{prod[release].urn} {'.'.join(path)}: dev/prod {got}"
    raft = prod["vault"].inputs["values"]["server"]["ha"]["raft"]["config"]
    assert raft.count("retry_join") == 3, prod["vault"].urn
    for release in ("vault", "minio", "mlflow"):
        assert prod[release].protect and not dev[release].protect, f"{prod[release].urn}: protect_stateful"


def test_vault_unseals_with_kms_through_irsa_and_audits(plan: Plan) -> None:
    r = plan.releases()["vault"]
    server = r.inputs["values"]["server"]
    assert server["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == ROLE_ARN, r.urn
    config = server["ha"]["raft"]["config"]
    assert 'seal "awskms"' in config and f'kms_key_id = "{KMS_KEY}"' in config, r.urn
    assert 'storage "raft"' in config and server["ha"]["raft"]["enabled"] is True, r.urn
    assert server["auditStorage"]["enabled"] is True, f"{r.urn}: no audit volume"
    assert server["dataStorage"]["storageClass"] == "gp3-retain", r.urn
    assert r.inputs["values"]["injector"]["enabled"] is False, f"{r.urn}: VSO is the delivery mechanism"


def test_kserve_standard_mode_and_only_the_pinned_runtimes(plan: Plan) -> None:
    kserve, runtimes = plan.releases()["kserve"], plan.releases()["kserve-runtimes"]
    controller = kserve.inputs["values"]["kserve"]["controller"]
    assert controller["deploymentMode"] == "Standard", kserve.urn
    # No gateway installed yet: KServe creates no HTTPRoute (Gateway API mode would exit at start
    # without its CRDs, tests/infra/services/test_prerequisites.py) and no Ingress nothing would serve.
    gateway = controller["gateway"]
    assert gateway["ingressGateway"]["enableGatewayApi"] is False, kserve.urn
    assert gateway["disableIngressCreation"] is True, kserve.urn
    serving = runtimes.inputs["values"]["kserve"]["servingruntime"]
    assert serving["enabled"] is True, runtimes.urn
    chart_defaults, _ = reference_chart("kserve-runtime-configs")
    chart_runtimes = {
        k
        for k, v in chart_defaults["kserve"]["servingruntime"].items()
        if isinstance(v, dict) and "disabled" in v
    }
    assert set(RUNTIME_KEYS) == chart_runtimes, "RUNTIME_KEYS out of date with kserve-runtime-configs"
    enabled = {k for k in RUNTIME_KEYS if not serving[k]["disabled"]}
    assert enabled == set(RUNTIMES), f"{runtimes.urn}: enabled {sorted(enabled)}"
    for key, image_name in RUNTIMES.items():
        assert f"{serving[key]['image']}:{serving[key]['tag']}" == versions.IMAGES[image_name], runtimes.urn
        assert serving[key]["tag"] not in ("", "latest"), runtimes.urn


def test_falco_runs_everywhere_with_modern_ebpf_and_alerts_once_through_prometheus(plan: Plan) -> None:
    r = plan.releases()["falco"]
    values = r.inputs["values"]
    assert values["driver"]["kind"] == "modern_ebpf", r.urn
    assert {"operator": "Exists"} in values["tolerations"], f"{r.urn}: GPU nodes would go unwatched"
    sidekick = values["falcosidekick"]
    assert sidekick["enabled"] is True and sidekick["serviceMonitor"]["enabled"] is True, r.urn
    # The chart turns the Alertmanager output on when a hostport is set (falcosidekick chart 0.12.1
    # values.yaml); its alerts have no alertname or team and would double FalcoCriticalEvent.
    hostport = sidekick.get("config", {}).get("alertmanager", {}).get("hostport")
    assert not hostport, f"{r.urn}: every Falco event would also reach Alertmanager directly"


def test_gpu_operator_uses_the_ami_driver_and_tolerates_gpu_nodes(plan: Plan) -> None:
    r = plan.releases()["gpu-operator"]
    values = r.inputs["values"]
    assert values["driver"]["enabled"] is False, r.urn
    assert values["dcgmExporter"]["serviceMonitor"]["enabled"] is True, r.urn
    assert any(
        t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule"
        for t in values["daemonsets"]["tolerations"]
    )


def test_argocd_sso_disables_local_admin_only_where_oidc_is_configured(plan: Plan) -> None:
    r = plan.releases()["argocd"]
    cm = r.inputs["values"]["configs"]["cm"]
    assert (
        'condition.type == "Ready"' in cm["resource.customizations.health.serving.kserve.io_InferenceService"]
    ), r.urn
    assert "resource.customizations.ignoreDifferences.serving.kserve.io_InferenceService" in cm, r.urn
    if plan.env == "prod":
        assert cm["admin.enabled"] == "false" and "https://login.example.com" in cm["oidc.config"], r.urn
    else:
        assert "admin.enabled" not in cm and "oidc.config" not in cm, r.urn


def test_mlflow_accounts_see_nothing_they_were_not_granted(plan: Plan) -> None:
    r = plan.releases()["mlflow"]
    auth = r.inputs["values"]["auth"]
    assert auth["enabled"] is True, f"{r.urn}: basic auth off"
    # The chart default (READ) lets any account, even one created for another team, read every
    # experiment, run and registered model. Allowed values: the chart schema's enum.
    _, schema = reference_chart("mlflow")
    assert schema is not None
    allowed = schema["properties"]["auth"]["properties"]["defaultPermission"]["enum"]
    assert "NO_PERMISSIONS" in allowed
    assert auth["defaultPermission"] == "NO_PERMISSIONS", (
        f"{r.urn}: defaultPermission {auth['defaultPermission']}"
    )


def test_grafana_loads_dashboards_only_from_its_own_namespace(plan: Plan) -> None:
    r = plan.releases()["kube-prometheus-stack"]
    grafana = r.inputs["values"]["grafana"]
    chart_defaults, _ = reference_chart("kube-prometheus-stack")
    sidecar = deep_merge(chart_defaults["grafana"]["sidecar"], grafana.get("sidecar", {}))
    # Any value but the release namespace lets a ConfigMap elsewhere (an app team's, a compromised
    # pod's) put a dashboard into the platform's Grafana.
    assert sidecar["dashboards"]["searchNamespace"] == r.inputs["namespace"], (
        f"{r.urn}: {sidecar['dashboards']}"
    )
    assert sidecar.get("datasources", {}).get("searchNamespace") in (None, r.inputs["namespace"]), r.urn
    # The chart's ClusterRole for the sidecars reads every Secret of the cluster.
    assert grafana["rbac"]["namespaced"] is True, f"{r.urn}: Grafana may read Secrets in every namespace"
    dashboards = plan.of_type("kubernetes:core/v1:ConfigMap")
    labelled = [
        d for d in dashboards if d.inputs["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    assert labelled, plan.env
    for d in labelled:
        assert d.inputs["metadata"]["namespace"] == r.inputs["namespace"], (
            f"{d.urn}: Grafana would not load it"
        )
