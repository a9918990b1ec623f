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


# GitHub refuses an issue or comment body longer than this (422 "body is too long (maximum is 65536
# characters)": https://github.com/trstringer/manual-approval/issues/89,
# https://github.com/peter-evans/create-issue-from-file/issues/1705), and drift.yml posts the body as one.
# Counted as JavaScript counts a string's length (UTF-16 code units), since github-script sends it.
MAX_BODY_CHARS = 65_536


def _length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def body(stack: str, run_url: str, preview: dict[str, Any]) -> str:
    """The issue body: the counts per operation, then the changed resources for as many as fit under
    GitHub's limit; the rest are counted and left to the run's log, so a large drift is still reported."""
    ops = changes(preview)
    head = [
        f"Scheduled drift check of stack `{stack}`: a refreshed `pulumi preview` plans changes.",
        "",
        "| operation | count |",
        "|---|---|",
        *(f"| {op} | {n} |" for op, n in ops.items()),
        "",
        "<details><summary>Resources</summary>",
        "",
    ]
    tail = [
        "",
        "</details>",
        "",
        f"Run: {run_url}",
        "",
        "Either reconcile with `pulumi up` (deploy.yml) or bring the code in line with the change made "
        "outside Pulumi; see docs/runbooks/failed-pulumi-up.md.",
    ]
    resources = [f"- `{r}`" for r in changed_resources(preview)]

    def text(listed: list[str], left_out: int) -> str:
        more = [f"- … and {left_out} more: every one is in the run's log, {run_url}"] if left_out else []
        return "\n".join([*head, *listed, *more, *tail]) + "\n"

    # What the rest of the body takes with the longest "… and N more" line it can have.
    budget = MAX_BODY_CHARS - _length(text([], len(resources)))
    kept = 0
    for line in resources:
        budget -= _length(line) + 1
        if budget < 0:
            break
        kept += 1
    return text(resources[:kept], len(resources) - kept)


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
    # The whole list, in the job's log: the issue body may hold only part of it (MAX_BODY_CHARS).
    for resource in changed_resources(preview):
        print(f"  {resource}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
