"""CKV_MLP_9: an InferenceService names its team, model and model version.

Ownership, cost reports, the registry gate and the storageUri check all key on these; a missing
or malformed value makes the service anonymous.
"""

from __future__ import annotations

from typing import Any

from _mlplat import (
    DNS_LABEL,
    ISVC,
    MODEL_LABEL,
    MODEL_VERSION,
    MODEL_VERSION_ANNOTATION,
    TEAM_LABEL,
    MlplatCheck,
    annotations_of,
    labels,
    mapping,
)


class ModelMetadata(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name=f"Labels {TEAM_LABEL} and {MODEL_LABEL} and annotation {MODEL_VERSION_ANNOTATION} are well-formed",
            id="CKV_MLP_9",
            supported_entities=(ISVC,),
            fix=f"set labels {TEAM_LABEL} (<team> of namespace models-<team>) and {MODEL_LABEL} (registered "
            f'model name, DNS label) and annotation {MODEL_VERSION_ANNOTATION}: "<positive integer>"',
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        found_labels, found_annotations = labels(conf), annotations_of(conf)
        problems = [
            f"metadata/labels/{key}"
            for key in (TEAM_LABEL, MODEL_LABEL)
            if not isinstance(found_labels.get(key), str) or not DNS_LABEL.match(found_labels[key])
        ]
        version = found_annotations.get(MODEL_VERSION_ANNOTATION)
        if not isinstance(version, str) or not MODEL_VERSION.match(version):
            problems.append(f"metadata/annotations/{MODEL_VERSION_ANNOTATION} (a quoted positive integer)")
        team = found_labels.get(TEAM_LABEL)
        namespace = mapping(conf.get("metadata")).get("namespace")
        if namespace is not None and isinstance(team, str) and namespace != f"models-{team}":
            problems.append(f"metadata/namespace (team {team} deploys to models-{team})")
        return problems


check = ModelMetadata()
