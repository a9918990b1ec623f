"""Decide from `pulumi preview --json` output whether a stack has drifted, for drift.yml.

A refreshed preview that plans anything other than `same` means the cloud and the code disagree.
Writes `drift=true|false` to $GITHUB_OUTPUT and the issue body (Markdown) to the given file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def changes(preview: dict[str, Any]) -> dict[str, int]:
    """Planned operations other than `same`, with their counts."""
    summary = preview.get("changeSummary")
    if not isinstance(summary, dict):
        raise ValueError("no changeSummary in the preview output: did `pulumi preview --json` fail?")
    return {op: int(n) for op, n in sorted(summary.items()) if op != "same" and int(n) > 0}


def changed_resources(preview: dict[str, Any]) -> list[str]:
    """`op urn` of every step that is not `same`, in plan order."""
    return [f"{s.get('op')} {s.get('urn')}" for s in preview.get("steps", []) if s.get("op") != "same"]


def body(stack: str, run_url: str, preview: dict[str, Any]) -> str:
    ops = changes(preview)
    lines = [
        f"Scheduled drift check of stack `{stack}`: a refreshed `pulumi preview` plans changes.",
        "",
        "| operation | count |",
        "|---|---|",
        *(f"| {op} | {n} |" for op, n in ops.items()),
        "",
        "<details><summary>Resources</summary>",
        "",
        *(f"- `{r}`" for r in changed_resources(preview)),
        "",
        "</details>",
        "",
        f"Run: {run_url}",
        "",
        "Either reconcile with `pulumi up` (deploy.yml) or bring the code in line with the change made "
        "outside Pulumi; see docs/runbooks/failed-pulumi-up.md.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Usage: preview_changes.py PREVIEW.json STACK RUN_URL BODY.md"""
    preview_path, stack, run_url, body_path = argv[1:5]
    preview = json.loads(Path(preview_path).read_text(encoding="utf-8"))
    drift = bool(changes(preview))
    Path(body_path).write_text(body(stack, run_url, preview) if drift else "", encoding="utf-8")
    if output := os.environ.get("GITHUB_OUTPUT"):
        with open(output, "a", encoding="utf-8") as fh:
            fh.write(f"drift={'true' if drift else 'false'}\n")
    print(f"{stack}: {'drift' if drift else 'no drift'} {changes(preview)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
