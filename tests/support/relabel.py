"""Prometheus's target relabelling, enough of it to run the relabelings the program renders over the
targets a test says Prometheus discovers."""

from __future__ import annotations

import re
from typing import Any


def relabel(target: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus's relabelling of one target (keep and replace, anchored regexes); None when dropped."""
    labels = dict(target)
    for rule in rules:
        value = ";".join(labels.get(name, "") for name in rule.get("sourceLabels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if match is None:
                return None
        elif action == "replace":
            if match is not None:
                replacement = re.sub(r"\$(\d+)", r"\\\1", rule.get("replacement", "$1"))
                labels[rule["targetLabel"]] = match.expand(replacement)
        else:
            raise AssertionError(f"relabel action {action} is not simulated here")
    return labels
