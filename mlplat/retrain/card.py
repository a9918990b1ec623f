"""The model card of a registered version: what it is, what it was made from, how it scored, its limits.

Stored with the version (`MODEL_CARD.md` beside the model in the store, so it travels with the bytes
KServe serves) and named by the version's `mlplat.model_card` tag; written from the same lineage
tags the registry holds, so the card and the registry cannot tell different stories.
"""

from __future__ import annotations

import json

from mlplat.registry_gate import Evaluation
from mlplat.retrain import lineage


def render(
    app: str,
    version: str,
    tags: dict[str, str],
    evaluation: Evaluation,
    value: float | None,
    description: str,
    rows: dict[str, int] | None,
) -> str:
    """Markdown for `app` v`version` from its lineage `tags` and its evaluation result."""
    params = json.loads(tags.get(lineage.PARAMS) or "{}")
    if evaluation.metric is None or value is None:
        scores = ["No metric: the version is gated on its sign-off tag alone."]
    else:
        scores = [
            f"{evaluation.metric} on the hold-out split: **{value:.4f}** ({description}).",
            "",
            "| environment | threshold | meets it |",
            "|---|---|---|",
            *[
                f"| {env} | {limit:g} | {'yes' if value >= limit else 'no'} |"
                for env, limit in evaluation.thresholds.items()
            ],
        ]
    data_rows = ", ".join(f"{k} {v}" for k, v in (rows or {}).items()) or "not recorded"
    return "\n".join(
        [
            f"# {app} version {version}",
            "",
            "## Intended use",
            f"Serves `{app}` through KServe on the platform; promoted through git (`mlplat promote`) and the",
            "registry gate only. Not for decisions outside the app's documented purpose.",
            "",
            "## Lineage",
            f"- trigger: {tags.get(lineage.TRIGGER)} (by {tags.get(lineage.TRIGGERED_BY)})",
            f"- training code: git commit `{tags.get(lineage.CODE_COMMIT)}`",
            f"- training image: `{tags.get(lineage.IMAGE_DIGEST)}`",
            f"- data: `{tags.get(lineage.DATA_URI)}`, sha256 `{tags.get(lineage.DATA_SHA256)}` ({data_rows} rows)",
            f"- parent run: {tags.get(lineage.PARENT_RUN)}",
            "- parameters: " + (", ".join(f"`{k}={v}`" for k, v in sorted(params.items())) or "none"),
            "",
            "## Evaluation",
            *scores,
            "",
            "## Limitations",
            "Scores are on a held-out split of the training data, not on live traffic: the drift job",
            "(`mlplat monitor drift`) compares live inputs with this version's reference data.",
            "",
        ]
    )
