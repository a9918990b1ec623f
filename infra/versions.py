"""Every version the platform chooses: Helm charts, EKS add-ons and images, with a reason per pin.

This module is the only place a chart version, add-on version or image tag is written down;
components look their pins up here. Chart versions follow `../shared/reference/charts/`, whose
values files the tests check our values against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum


@dataclass(frozen=True)
class ChartPin:
    """A Helm chart at an exact version, and the reference folder holding its upstream defaults."""

    repo: str
    chart: str
    version: str
    reference: str  # folder name under ../shared/reference/charts


CHARTS: dict[str, ChartPin] = {
    # cert-manager before KServe: KServe's webhook certificates are issued by it.
    "cert-manager": ChartPin("https://charts.jetstack.io", "cert-manager", "v1.21.1", "cert-manager"),
    # KServe's CRDs ship in their own chart (kserve-resources has none); no values, so no reference folder.
    "kserve-crd": ChartPin("oci://ghcr.io/kserve/charts", "kserve-crd", "v0.20.0", "kserve-crd"),
    # KServe 0.20.0 is the release whose CRDs are in ../shared/reference/crds/kserve.
    "kserve": ChartPin("oci://ghcr.io/kserve/charts", "kserve-resources", "v0.20.0", "kserve-resources"),
    "kserve-runtimes": ChartPin(
        "oci://ghcr.io/kserve/charts", "kserve-runtime-configs", "v0.20.0", "kserve-runtime-configs"
    ),
    # Karpenter scales GPU pools from zero (docs/adr/0001-gpu-autoscaling.md). An OCI chart: Helm
    # takes it as `oci://public.ecr.aws/karpenter/karpenter` (aws/karpenter-provider-aws v1.14.1,
    # website/content/en/preview/getting-started/getting-started-with-karpenter/scripts/
    # step08-apply-helm-chart.sh: `helm upgrade --install karpenter oci://public.ecr.aws/karpenter/karpenter`).
    "karpenter": ChartPin("oci://public.ecr.aws/karpenter", "karpenter", "1.14.1", "karpenter"),
    # GPU Operator v26.7.0 bundles device plugin v0.20.0 and the DCGM exporter.
    "gpu-operator": ChartPin("https://helm.ngc.nvidia.com/nvidia", "gpu-operator", "v26.7.0", "gpu-operator"),
    # Community MinIO chart: distributed mode with erasure coding needs no operator.
    "minio": ChartPin("https://charts.min.io/", "minio", "5.4.0", "minio"),
    "vault": ChartPin("https://helm.releases.hashicorp.com", "vault", "0.34.1", "vault"),
    # Vault Secrets Operator delivers Vault secrets to workloads (one mechanism, chosen over ESO).
    "vault-secrets-operator": ChartPin(
        "https://helm.releases.hashicorp.com", "vault-secrets-operator", "1.4.1", "vault-secrets-operator"
    ),
    "mlflow": ChartPin("https://community-charts.github.io/helm-charts", "mlflow", "1.11.5", "mlflow"),
    "kube-prometheus-stack": ChartPin(
        "https://prometheus-community.github.io/helm-charts",
        "kube-prometheus-stack",
        "88.5.3",
        "kube-prometheus-stack",
    ),
    # The drift jobs push their scores here (README "Model monitoring"); Prometheus scrapes it with
    # honorLabels so each app's `job`/`instance` grouping survives (prometheus-community/helm-charts
    # tag prometheus-pushgateway-3.8.0, templates/servicemonitor.yaml `honorLabels`).
    "prometheus-pushgateway": ChartPin(
        "https://prometheus-community.github.io/helm-charts",
        "prometheus-pushgateway",
        "3.8.0",
        "prometheus-pushgateway",
    ),
    "falco": ChartPin("https://falcosecurity.github.io/charts", "falco", "9.1.0", "falco"),
    "argo-cd": ChartPin("https://argoproj.github.io/argo-helm", "argo-cd", "10.1.1", "argo-cd"),
    # KEDA scales GPU model servers on their request queue (apps/README.md, "Scaling"). Chart and CRDs
    # 2.20.2 are the ones in ../shared/reference (kedacore/charts tag v2.20.2, kedacore/keda tag v2.20.2);
    # the repository is the one KEDA's install guide adds (`helm repo add kedacore
    # https://kedacore.github.io/charts`, https://keda.sh/deploy "Deploying with Helm", and every kedacore/charts
    # release note, e.g. v2.16.0). The chart installs the CRDs
    # as templates (`crds.install: true`), so ScaledObjects wait for the release.
    "keda": ChartPin("https://kedacore.github.io/charts", "keda", "2.20.2", "keda"),
    # Retraining pipelines (README "Retraining"). Both charts are argo-helm's, the repository Argo CD's
    # is installed from (README.md of argoproj/argo-helm: `helm repo add argo https://argoproj.github.io/argo-helm`).
    # argo-workflows 1.0.18 deploys v4.0.6, the newest app version of the argo-helm snapshot (no chart
    # for v4.1.x yet: ../shared/reference/SOURCES.md, "Argo Workflows"). The CRDs the cluster gets are
    # the chart's own, so they match that controller: with `crds.install: true, full: false`
    # (platform/argo-workflows/values.yaml) templates/crds.yaml renders files/crds/minimal/, and the
    # chart's files/crds/ are argoproj/argo-workflows v4.0.6 manifests/base/crds/ (commit 277e9cef;
    # argo-helm argo-workflows-1.0.18 = 4f4cc4f9: the full WorkflowTemplate schema differs only by a
    # header comment and the `helm.sh/resource-policy` annotation). `mlplat validate` checks the
    # pipelines against the v4.1.2 full schemas of the reference folder, a superset that also knows
    # fields v4.0.6 ignores: on 2026-12-02 both pipelines also passed `mlplat validate --schemas` with
    # the chart's v4.0.6 full CRDs. Bump chart and reference CRDs together.
    "argo-workflows": ChartPin(
        "https://argoproj.github.io/argo-helm", "argo-workflows", "1.0.18", "argo-workflows"
    ),
    # argo-events 2.4.22 deploys v1.9.10; its CRDs are byte-identical to v1.9.11's (SOURCES.md).
    "argo-events": ChartPin("https://argoproj.github.io/argo-helm", "argo-events", "2.4.22", "argo-events"),
    # Inference gateway (docs/adr/0005-inference-gateway.md). Envoy Gateway publishes its charts to
    # Docker Hub as OCI artifacts (envoyproxy/gateway v1.9.0 tools/make/helm.mk: OCI_REGISTRY
    # oci://docker.io/envoyproxy, `helm package --version ${RELEASE_VERSION}`; install docs
    # site/content/en/v1.9/install/install-helm.md: `helm install eg oci://docker.io/envoyproxy/gateway-helm`).
    # gateway-crds-helm holds the Gateway API CRDs (standard channel v1.6.1, the version v1.9.0's
    # go.mod requires) and Envoy Gateway's own; it is rendered, never installed as a Helm release
    # (its CRDs are templates, too large for a release Secret; install-helm.md "Installing CRDs
    # separately"). No reference values: its values.yaml is three switches, set in infra/services/gateway.py.
    "gateway-crds": ChartPin(
        "oci://docker.io/envoyproxy", "gateway-crds-helm", "v1.9.0", "gateway-crds-helm"
    ),
    "envoy-gateway": ChartPin("oci://docker.io/envoyproxy", "gateway-helm", "v1.9.0", "gateway-helm"),
    # The AWS Load Balancer Controller provisions the gateway's NLB; chart repository from
    # kubernetes-sigs/aws-load-balancer-controller v3.5.0 docs/deploy/installation.md
    # (`helm repo add eks https://aws.github.io/eks-charts`). Its IAM policy is v3.5.0's too
    # (infra/aws/load_balancer_controller.py).
    "aws-load-balancer-controller": ChartPin(
        "https://aws.github.io/eks-charts",
        "aws-load-balancer-controller",
        "3.5.0",
        "aws-load-balancer-controller",
    ),
}

# EKS managed add-ons per Kubernetes minor version: a stack may only ask for a cluster version
# listed here, so every cluster runs add-ons chosen for it. Check new pins with
# `aws eks describe-addon-versions --kubernetes-version <v> --addon-name <name>` before adding.
#
# What could be checked offline, and what could not:
# - the upstream releases exist: aws/amazon-vpc-cni-k8s tag v1.20.4, kubernetes-sigs/aws-ebs-csi-driver
#   tag v1.50.1 (both seen in the repositories' tags);
# - the `-eksbuild.N` builds are published only through the EKS API (the user guide lists only the
#   newest build per version, e.g. managing-kube-proxy.adoc: 1.34 -> v1.34.0-eksbuild.5, in
#   awsdocs/amazon-eks-user-guide PR 1146), so the exact builds below are NOT verified here:
#   `mlplat preflight` checks each pin with `eks describe-addon-versions` before `pulumi up`.
EKS_ADDONS: dict[str, dict[str, str]] = {
    "1.33": {
        "vpc-cni": "v1.20.4-eksbuild.1",
        "coredns": "v1.12.1-eksbuild.2",
        "kube-proxy": "v1.33.3-eksbuild.4",
        "aws-ebs-csi-driver": "v1.50.1-eksbuild.1",
    },
    "1.34": {
        "vpc-cni": "v1.20.4-eksbuild.1",
        "coredns": "v1.12.4-eksbuild.1",
        "kube-proxy": "v1.34.0-eksbuild.2",
        "aws-ebs-csi-driver": "v1.50.1-eksbuild.1",
    },
}


class EksSupport(Enum):
    """Which EKS support window a Kubernetes minor version is in on a given day: it decides the
    control plane's price (infra/cost_prices.yaml) and what `mlplat preflight` says."""

    STANDARD = "standard"
    EXTENDED = "extended"  # billed at the extended support price; the version still runs
    ENDED = "ended"  # AWS upgrades the control plane itself, to a version the add-on pins were not chosen for


@dataclass(frozen=True)
class EksCalendar:
    """The EKS release calendar's dates for one minor version: standard support ends on
    `standard_ends` (extended support, a higher price per cluster-hour, from that day) and extended
    support on `extended_ends` (AWS then upgrades the cluster)."""

    standard_ends: date
    extended_ends: date

    def on(self, day: date) -> EksSupport:
        if day < self.standard_ends:
            return EksSupport.STANDARD
        return EksSupport.EXTENDED if day < self.extended_ends else EksSupport.ENDED


def calendar_today() -> date:
    """Today as the support calendar reads it: the UTC day, so a laptop in UTC-8 on the evening before
    a window ends and the CI runner already past midnight UTC price and warn alike (the EKS API gives
    these dates as timestamps: DescribeClusterVersions endOfStandardSupportDate, not a local day)."""
    return datetime.now(UTC).date()


# Every version a stack may pin (the keys of EKS_ADDONS). Standard support lasts 14 months from the
# version's EKS release, extended support 12 more, with extended support on by default ("Understand the
# Kubernetes version lifecycle on EKS", https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html).
# The dates are the calendar's as endoflife.date lists them (https://endoflife.date/amazon-eks, read
# 2026-12-02 in a stored copy; the EKS page's own table was not in it): 1.33 released 2025-05-28, standard
# support to 2026-07-29, extended to 2027-07-29; 1.34 released 2025-10-06, standard support to 2026-12-02,
# extended to 2027-12-02. The stacks stay on 1.34 (README "Environment knobs"): moving to 1.35 needs add-on
# pins that can only be checked against the EKS API.
EKS_SUPPORT_CALENDAR: dict[str, EksCalendar] = {
    "1.33": EksCalendar(standard_ends=date(2026, 7, 29), extended_ends=date(2027, 7, 29)),
    "1.34": EksCalendar(standard_ends=date(2026, 12, 2), extended_ends=date(2027, 12, 2)),
}

# Karpenter's AMI alias for GPU nodes, pinned to a dated release rather than @latest so nodes only
# change when this line does. Checked upstream:
# - the form is `family@version`, AL2023 versions are the EKS AMI release tags (Karpenter v1.14.1,
#   website/content/en/preview/concepts/nodeclasses.md, "alias: al2023@v20240807");
# - the AL2023 alias resolves the standard, nvidia and neuron variants and gives each its own
#   requirements, so GPU instance types get the NVIDIA AMI (pkg/providers/amifamily/al2023.go,
#   DescribeImageQuery; SSM path /aws/service/eks/optimized-ami/<k8s>/amazon-linux-2023/x86_64/nvidia/
#   amazon-eks-node-al2023-x86_64-nvidia-<k8s>-<version>/image_id);
# - release v20251108 ships amazon-eks-node-al2023-x86_64-nvidia-1.34-v20251108 and -1.33-
#   (awslabs/amazon-eks-ami tag v20251108, CHANGELOG.md "AMI Release v20251108").
# Whether the SSM parameter is published in the stack's region is for `mlplat preflight` to check.
KARPENTER_GPU_AMI_ALIAS = "al2023@v20251108"

# The mlplat CLI image: one repository and tag for everything that runs `mlplat` on the cluster (the
# drift jobs, the marshaller sidecar, the retraining steps).
MLPLAT_IMAGE = "registry.mlplat.internal/mlplat/monitor:0.2.0"

# Images the platform chooses itself (the charts' defaults are used everywhere else).
# The KServe runtimes are what model apps run on, so their tags are never left to `latest`/"".
IMAGES: dict[str, str] = {
    # MLServer serves MLflow-format models over the V2 protocol (apps with modelFormat mlflow); the
    # version KServe 0.20.0 configures and tests its runtime with.
    "kserve-mlserver": "docker.io/seldonio/mlserver:1.5.0",
    # KServe's Hugging Face server with the vLLM backend, released with KServe 0.20.0.
    "kserve-huggingfaceserver": "kserve/huggingfaceserver:v0.20.0-gpu",
    # MLflow server image of chart 1.11.5's appVersion, pinned rather than inherited.
    "mlflow": "burakince/mlflow:3.15.1",
    # Falco's userspace of chart 9.1.0; the modern eBPF probe is built into this binary, so pinning
    # the image pins the driver too (no kernel module or probe download on the node).
    "falco": "falcosecurity/falco:0.44.1",
    # The monitor command (`mlplat monitor drift|marshaller`) with this repository's apps/ folder and
    # kubectl: built from images/monitor/Dockerfile and pushed under exactly this name by
    # .github/workflows/monitor-image.yml (a published tag is never overwritten: bump it to ship a
    # change). The drift CronJobs stay suspended until `services.inference_logs.drift_jobs` says it
    # is published; the marshaller sidecar names the same image in apps/components/inference-logging
    # (a test holds the two equal).
    "mlplat-monitor": MLPLAT_IMAGE,
    # The retraining steps (`mlplat retrain fetch|train|evaluate|register|propose`) run the same mlplat
    # image: one image, one tag. apps/<app>/training/ name it literally (they are plain manifests);
    # tests/mlplat/validate/test_validate_training.py holds them to this value.
    "mlplat-retrain": MLPLAT_IMAGE,
    # MinIO's client, the release the MinIO chart 5.4.0 runs its own jobs with (values.yaml mcImage):
    # copies a drift job's window of logs and the served versions' reference data into the pod.
    "minio-mc": "quay.io/minio/mc:RELEASE.2024-11-21T17-21-54Z",
}


def image(name: str) -> tuple[str, str]:
    """(repository, tag) of a pinned image, for charts that take them as two values."""
    repository, _, tag = IMAGES[name].rpartition(":")
    return repository, tag
