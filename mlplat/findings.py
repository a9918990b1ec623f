"""The verdict vocabulary every check shares: findings, waivers, and the documents they are about.

Validate, the checkov scan and the registry gate all speak in `Finding`s, so one report format
(text or JSON) and one exit-code rule serve them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RenderedDoc:
    """One Kubernetes object as rendered for an environment, with where it came from."""

    env: str | None  # None when a plain manifest is validated without --env
    target: str  # the app folder, kustomization or file that was rendered (repo-relative)
    source_file: str  # the file the object was written in (repo-relative), best effort
    doc: dict[str, Any]

    @property
    def ref(self) -> str:
        """`Kind/namespace/name`, the way findings name an object."""
        meta = self.doc.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        return f"{self.doc.get('kind', '?')}/{meta.get('namespace', '-')}/{meta.get('name', '?')}"

    @property
    def labels(self) -> dict[Any, Any]:
        """The object's labels; {} when it has none or writes something else there (the schema
        checks say so; a label check has nothing to read)."""
        meta = self.doc.get("metadata")
        labels = meta.get("labels") if isinstance(meta, dict) else None
        return labels if isinstance(labels, dict) else {}


@dataclass(frozen=True)
class Finding:
    """One problem: where, what rule, why, and how to fix it."""

    file: str
    resource: str  # Kind/namespace/name, or "-" when the file could not be parsed
    rule: str  # e.g. MLP-SCHEMA-UNKNOWN-FIELD, CKV_MLP_4, CKV_K8S_20
    message: str
    fix: str
    # The environments the finding holds in, comma-separated (dev,staging,prod): one mistake made
    # in a file every overlay renders is one finding, not one per environment.
    env: str | None = None
    line: int | None = None
    # The offending key in the rendered object, when one is known: keys joined by "/", list items as
    # [N], "/" inside a key as ~1 (spec/predictor/containers/[0]/securityContext).
    path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_text(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        env = f"[{self.env}] " if self.env else ""
        return f"{env}{where} {self.resource} {self.rule}: {self.message} (fix: {self.fix})"


# Where a key path of a rendered object was written: (file, line), the line None when unknown.
Locate = Callable[[RenderedDoc, str], tuple[str, int | None]]


def label_finding(doc: RenderedDoc, locate: Locate, label: str, rule: str, message: str, fix: str) -> Finding:
    """A finding about one label of a rendered object, pointing at the line that wrote the label (its
    key escaped as Finding.path says: `~` as ~0, `/` as ~1)."""
    path = "metadata/labels/" + label.replace("~", "~0").replace("/", "~1")
    file, line = locate(doc, path)
    return Finding(file, doc.ref, rule, message, fix, doc.env, line, path)


@dataclass(frozen=True)
class Waiver:
    """A check skipped for one resource through checkov's skip annotation, with its written reason."""

    file: str
    resource: str
    rule: str
    reason: str
    env: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    """Everything one validate run found; exit code 0 clean, 1 findings (warnings do not count)."""

    findings: list[Finding] = field(default_factory=list)
    waivers: list[Waiver] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    # Worth a reviewer's eye but not wrong (a model change that raises what its GPUs can cost): printed,
    # never counted in the exit code.
    warnings: list[Finding] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0
