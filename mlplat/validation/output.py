"""Report output: one line per finding plus a summary, or one JSON document for machines."""

from __future__ import annotations

import json

from mlplat.findings import Report


def as_text(report: Report, notes: list[str]) -> str:
    lines = [f.as_text() for f in report.findings]
    lines += [f"warning: {w.as_text()}" for w in report.warnings]
    lines += [f"waived: [{w.env or '-'}] {w.file} {w.resource} {w.rule}: {w.reason}" for w in report.waivers]
    lines += [f"note: {n}" for n in notes]
    verdict = "FAILED" if report.findings else "OK"
    lines.append(
        f"mlplat validate: {verdict}: {len(report.targets)} target(s), {len(report.findings)} finding(s), "
        f"{len(report.waivers)} waiver(s)"
        + (f", {len(report.warnings)} warning(s)" if report.warnings else "")
    )
    return "\n".join(lines)


def as_json(report: Report, notes: list[str]) -> str:
    return json.dumps(
        {
            "ok": not report.findings,
            "targets": report.targets,
            "findings": [f.as_dict() for f in report.findings],
            "waivers": [w.as_dict() for w in report.waivers],
            "warnings": [w.as_dict() for w in report.warnings],
            "notes": notes,
            "summary": {
                "targets": len(report.targets),
                "findings": len(report.findings),
                "waivers": len(report.waivers),
                "warnings": len(report.warnings),
            },
        },
        indent=2,
    )
