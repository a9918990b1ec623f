"""CKV_MLP_7: custom images come from an allowed registry and are pinned by digest or a fixed tag.

An image from an unknown registry has no scan or signature behind it; `latest` or no tag means
the code that serves the model can change without a commit.
"""

from __future__ import annotations

import re
from typing import Any

from _mlplat import POD_KINDS, EnvParams, MlplatCheck, env_params, pod_specs

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# Tags that by convention move; anything else is treated as immutable (registries enforce it).
MOVING_TAGS = frozenset({"latest", "stable", "main", "master", "nightly", "edge", "dev"})


def is_pinned(image: str) -> bool:
    name, at, digest = image.partition("@")
    if at:
        return bool(DIGEST.match(digest))
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return bool(tag) and tag.lower() not in MOVING_TAGS


def is_allowed(image: str, params: EnvParams) -> bool:
    return any(image.startswith(f"{registry}/") for registry in params.allowed_registries)


class ImageProvenance(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Images come from an allowed registry and are pinned by digest or a fixed tag",
            id="CKV_MLP_7",
            supported_entities=POD_KINDS,
            fix="push the image to an allowed registry (apps.allowed_registries, e.g. "
            "registry.mlplat.internal/) and reference it as <image>@sha256:<digest> or <image>:<version>",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        images = []
        for pod in pod_specs(conf):
            for container in pod.containers():
                # A model spec may leave the image to its ServingRuntime; a container may not.
                if "image" in container.conf or not container.is_model_spec:
                    images.append((f"{container.path}/image", container.conf.get("image")))
        if not images:
            return []
        params, why = env_params(conf)
        if params is None:
            return [why]
        problems = []
        for path, image in images:
            if not isinstance(image, str) or not image.strip():
                problems.append(f"{path} (missing)")
            elif not is_allowed(image, params):
                problems.append(f"{path} (registry not allowed in {params.name})")
            elif not is_pinned(image):
                problems.append(f"{path} (not pinned)")
        return problems


check = ImageProvenance()
