"""Render `mlplat validate --format json` output as the Markdown of a GitHub job summary.

Used by .github/workflows/pr.yml so reviewers see each finding with its fix on the run page.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLUMNS = ("where", "env", "rule", "resource", "message", "fix")


def _cell(value: Any) -> str:
    # A pipe or newline inside a cell would break the Markdown table.
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ").strip()


def _table(findings: list[dict[str, Any]]) -> list[str]:
    lines = ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for f in findings:
        where = f"{f.get('file', '')}:{f['line']}" if f.get("line") else f.get("file", "")
        row = [where, f.get("env"), f.get("rule"), f.get("resource"), f.get("message"), f.get("fix")]
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return lines


def render(report: dict[str, Any], exit_code: int) -> str:
    """Markdown for one validate run; the exit code says whether the JSON can be trusted at all."""
    lines = ["## mlplat validate", ""]
    if exit_code not in (0, 1):
        lines.append(f":x: `mlplat validate` failed with exit code {exit_code}; see the step log.")
        return "\n".join(lines) + "\n"
    findings = report.get("findings", [])
    targets = report.get("targets", [])
    waivers = report.get("waivers", [])
    if not findings:
        lines.append(f":white_check_mark: No findings in {len(targets)} changed target(s).")
    else:
        lines.append(f":x: {len(findings)} finding(s) in {len(targets)} changed target(s).")
        lines += _table(findings)
    # Warnings do not fail the run but are for the reviewer (e.g. MLP-COST-GPU-MAX, a GPU cost rise).
    warnings = report.get("warnings", [])
    if warnings:
        lines += ["", f":warning: {len(warnings)} warning(s), not failing the check:"]
        lines += _table(warnings)
    if waivers:
        lines += ["", f"{len(waivers)} waiver(s) applied."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Usage: validate_summary.py REPORT.json EXIT_CODE  (prints Markdown to stdout)."""
    path, exit_code = Path(argv[1]), int(argv[2])
    try:
        report = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, json.JSONDecodeError):
        report, exit_code = {}, exit_code if exit_code not in (0, 1) else 2
    sys.stdout.write(render(report, exit_code))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
