"""CKV_MLP_11: no Service of type LoadBalancer or NodePort.

Models are reached through the platform's ingress gateway, with its authentication and rate
limits; a LoadBalancer or NodePort opens a door around it (and a cloud load balancer costs money).
"""

from __future__ import annotations

from typing import Any

from _mlplat import MlplatCheck, mapping

EXPOSING_TYPES = ("LoadBalancer", "NodePort")


class ServiceExposure(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Services are not of type LoadBalancer or NodePort",
            id="CKV_MLP_11",
            supported_entities=("Service",),
            fix="use type ClusterIP (or omit type) and expose the model through the platform ingress gateway",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        return ["spec/type"] if mapping(conf.get("spec")).get("type") in EXPOSING_TYPES else []


check = ServiceExposure()
