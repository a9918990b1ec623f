"""MLP-SLO-TIER: an InferenceService's latency SLO label is one the alert rules understand.

The rules map each tier of `mlplat/slo-p99-ms` to seconds one by one (PromQL cannot parse a label
value), so any other value would leave the app checked against no SLO with only an `info` alert
(ModelSloLabelInvalid) to say so, minutes after the deploy: validate says it before.
"""

from __future__ import annotations

from collections.abc import Iterable

from infra.contract import SLO_P99_LABEL, SLO_P99_NONE, SLO_P99_TIERS_MS
from mlplat.findings import Finding, Locate, RenderedDoc, label_finding

RULE = "MLP-SLO-TIER"
ALLOWED = (*SLO_P99_TIERS_MS, SLO_P99_NONE)


def slo_tier_labels(docs: Iterable[RenderedDoc], locate: Locate) -> list[Finding]:
    """One finding per rendered InferenceService whose SLO label is set to something not a tier."""
    findings = []
    for doc in docs:
        if doc.doc.get("kind") != "InferenceService":
            continue
        value = doc.labels.get(SLO_P99_LABEL)
        if value is None or value in ALLOWED:
            continue
        findings.append(
            label_finding(
                doc,
                locate,
                SLO_P99_LABEL,
                RULE,
                f"{SLO_P99_LABEL} is {value!r}, not one of the tiers {', '.join(ALLOWED)}: the alert rules "
                "would check this app's latency against no SLO",
                f"set {SLO_P99_LABEL} to the tier at or above the objective (milliseconds, quoted), or "
                f"{SLO_P99_NONE!r} for an app no whole-response p99 judges (a streaming LLM, apps/README.md)",
            )
        )
    return findings
