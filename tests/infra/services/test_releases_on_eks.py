"""Releases that install but would not work, or not survive, for real: control-plane scrape targets
EKS does not expose, and CRDs a release would delete with every object of their kinds."""

from __future__ import annotations

from typing import Any

from infra import versions
from infra.config import load_environment
from infra.services.chart import deep_merge
from tests.support.harness import REFERENCE, RELEASES, Plan, build, reference_chart, switched_off

# Control-plane components EKS runs outside the cluster: no pods or endpoints in kube-system for the
# chart's Services to select (https://docs.aws.amazon.com/eks/latest/userguide/view-raw-metrics.html).
# Each is a top-level switch of kube-prometheus-stack 88.5.3 values.yaml, enabled by default.
HIDDEN_BY_EKS = ("kubeControllerManager", "kubeScheduler", "kubeEtcd")


def test_no_scrape_target_waits_for_control_plane_pods_eks_does_not_run(plan: Plan) -> None:
    r = plan.releases()["kube-prometheus-stack"]
    defaults, _ = reference_chart(versions.CHARTS["kube-prometheus-stack"].reference)
    assert all(defaults[component]["enabled"] for component in HIDDEN_BY_EKS), "chart defaults changed"
    values = deep_merge(defaults, r.inputs["values"])
    # Enabled, each renders a ServiceMonitor whose target never answers and a critical `absent(up…)` alert.
    scraped = [component for component in HIDDEN_BY_EKS if values[component]["enabled"]]
    assert not scraped, (
        f"{r.urn}: scrapes {scraped}, which EKS does not expose: their Down alerts fire forever"
    )


def _deletes_crds_on_uninstall(chart_key: str, values: dict[str, Any]) -> bool:
    """Whether the release's chart renders CRDs Helm deletes with the release: a CRD-only chart
    (kserve-crd: its CRDs are its templates, and it has no values to copy, SOURCES.md), or a chart whose
    reference values switch CRDs on (`crds.install`/`crds.enabled`) without `crds.keep` (Helm's
    `helm.sh/resource-policy: keep`)."""
    pin = versions.CHARTS[chart_key]
    if pin.chart.endswith("-crd"):
        return True
    if not (REFERENCE / "charts" / pin.reference).is_dir():
        return False
    defaults, _ = reference_chart(pin.reference)
    crds = deep_merge(defaults.get("crds") or {}, values.get("crds") or {})
    return bool(crds.get("install") or crds.get("enabled")) and crds.get("keep") is not True


def test_prod_releases_whose_crds_go_with_them_are_protected() -> None:
    prod = build("prod")
    assert load_environment("prod").protect_stateful
    releases = prod.releases()
    deleting = [
        name
        for name, key in RELEASES.items()
        if name not in switched_off("prod")
        and _deletes_crds_on_uninstall(key, releases[name].inputs["values"])
    ]
    # The reference charts say which: the test is void if it finds neither of the known ones.
    assert {"kserve-crd", "keda"} <= set(deleting), deleting
    unprotected = [releases[name].urn for name in deleting if not releases[name].protect]
    assert not unprotected, (
        f"uninstalling or replacing these deletes every object of their CRDs: {unprotected}"
    )
