"""Falco runtime security on every node (GPU nodes included), alerting through Prometheus.

Falcosidekick counts Falco's events for Prometheus; platform/prometheus/rules/falco.yaml alerts on
them (platform/falco/values.yaml says why not Falcosidekick's own Alertmanager output).

The modern eBPF probe is compiled into the pinned Falco binary (CO-RE), so nothing is built or
downloaded on the node: the driver kind and version are pinned together with the image.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra import versions
from infra.services.chart import PLATFORM, ChartService, ServiceArgs

NAMESPACE = "falco"


def custom_rules() -> dict[str, str]:
    """`platform/falco/*.yaml` rule files (not our values files), by file name, as the chart expects."""
    rules: dict[str, str] = {}
    for path in sorted((PLATFORM / "falco").glob("*.yaml")):
        if path.name == "values.yaml" or path.name.startswith("values-"):
            continue
        if not path.read_text().strip():
            continue
        rules[path.name] = path.read_text()
    return rules


def computed_values() -> dict[str, Any]:
    repository, tag = versions.image("falco")
    return {
        "image": {"repository": repository, "tag": tag},
        "customRules": custom_rules(),
    }


class Falco(ChartService):
    """Falco DaemonSet with falcosidekick and the platform's rules."""

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:Falco", name, NAMESPACE, args.cluster, [args.monitoring_crds], opts)
        self.release = self.install("release", "falco", "falco", computed=computed_values())
        self.register_outputs({"release": self.release.status, "rules": sorted(custom_rules())})
