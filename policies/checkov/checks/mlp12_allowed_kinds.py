"""CKV_MLP_12: a model app owns only the kinds a model needs, and only a `models-<team>` Namespace.

Argo CD syncs model apps with the team's permissions in mind; cluster-scoped RBAC, raw Pods or
Deployments, Secrets or foreign namespaces in a model app escape the platform's guardrails. The
model store credentials reach the namespace through the Vault Secrets Operator (`VaultAuth` and
`VaultStaticSecret`, component `apps/components/model-store-access`), never as a Secret in git. A GPU
model scales on its server's queue through a KEDA `ScaledObject` (apps/README.md, "Scaling").
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
        "VaultAuth",
        "VaultStaticSecret",
        "HTTPRoute",
        "ScaledObject",
    }
)
# Kinds only allowed from one API group: a same-named kind of another API is not the operator's.
VSO_GROUP = "secrets.hashicorp.com"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"  # the app's route through the platform Gateway (issue 16)
KEDA_GROUP = "keda.sh"  # the GPU LLM app scales on its queue (issue 19)
KIND_GROUPS = {
    "VaultAuth": VSO_GROUP,
    "VaultStaticSecret": VSO_GROUP,
    "HTTPRoute": GATEWAY_API_GROUP,
    "ScaledObject": KEDA_GROUP,
}
MODEL_NAMESPACE = re.compile(r"^models-[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


class AllowedKinds(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Only kinds a model app may own, and only models-<team> Namespaces",
            id="CKV_MLP_12",
            supported_entities=("*",),
            fix="keep InferenceService, ServingRuntime, ServiceAccount, NetworkPolicy, ConfigMap, Service, "
            "PodDisruptionBudget, secrets.hashicorp.com VaultAuth and VaultStaticSecret, a gateway.networking.k8s.io "
            "HTTPRoute, a keda.sh ScaledObject and a models-<team> Namespace; ask the platform team for anything else",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        kind = conf.get("kind")
        if kind not in ALLOWED_KINDS:
            return [f"kind ({kind} is not allowed in a model app)"]
        group = KIND_GROUPS.get(kind)
        api_version = conf.get("apiVersion")
        if group and not (isinstance(api_version, str) and api_version.startswith(f"{group}/")):
            return [f"apiVersion ({kind} is only allowed from {group})"]
        name = mapping(conf.get("metadata")).get("name")
        if kind == "Namespace" and not (isinstance(name, str) and MODEL_NAMESPACE.match(name)):
            return ["metadata/name (namespace must match models-<team>)"]
        return []


check = AllowedKinds()
