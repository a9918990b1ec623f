"""CKV_MLP_12: a model app owns only the kinds a model needs, and only a `models-<team>` Namespace.

Argo CD syncs model apps with the team's permissions in mind; cluster-scoped RBAC, raw Pods or
Deployments, Secrets or foreign namespaces in a model app escape the platform's guardrails.
"""

from __future__ import annotations

import re
from typing import Any

from _mlplat import MlplatCheck, mapping

ALLOWED_KINDS = frozenset(
    {
        "InferenceService",
        "ServingRuntime",
        "ServiceAccount",
        "NetworkPolicy",
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
        "Namespace",
    }
)
MODEL_NAMESPACE = re.compile(r"^models-[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


class AllowedKinds(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Only kinds a model app may own, and only models-<team> Namespaces",
            id="CKV_MLP_12",
            supported_entities=("*",),
            fix="keep InferenceService, ServingRuntime, ServiceAccount, NetworkPolicy, ConfigMap, Service, "
            "PodDisruptionBudget and a models-<team> Namespace; ask the platform team for anything else",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        kind = conf.get("kind")
        if kind not in ALLOWED_KINDS:
            return [f"kind ({kind} is not allowed in a model app)"]
        name = mapping(conf.get("metadata")).get("name")
        if kind == "Namespace" and not (isinstance(name, str) and MODEL_NAMESPACE.match(name)):
            return ["metadata/name (namespace must match models-<team>)"]
        return []


check = AllowedKinds()
