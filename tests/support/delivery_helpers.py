"""Shared readers for the delivery tests: the bootstrap's Terraform (via python-hcl2) and the workflows."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import yaml

# The environments the bootstrap and the workflows are held to: the contract's (re-exported for the tests).
from infra.contract import ENVIRONMENTS as ENVIRONMENTS

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "infra" / "bootstrap"
WORKFLOWS = REPO / ".github" / "workflows"

_META = {"__is_block__", "__comments__", "__inline_comments__"}


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals quoted ('"x"') and keys of labelled blocks too; strip both."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k not in _META}
    return value


@cache
def terraform() -> dict[str, Any]:
    """Every block of infra/bootstrap/*.tf, indexed: resource/data as {type: {name: body}}, and
    variable/output/locals/terraform/provider, plus `files` (block kind -> file names)."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "variable": {}, "output": {}, "locals": {}}
    merged["terraform"], merged["provider"] = [], []
    for path in sorted(BOOTSTRAP.glob("*.tf")):
        with path.open(encoding="utf-8") as fh:
            doc = _unquote(hcl2.load(fh))
        for kind in ("resource", "data"):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        merged[kind].setdefault(rtype, {})[name] = body | {"__file__": path.name}
        for kind in ("variable", "output"):
            for block in doc.get(kind, []):
                for name, body in block.items():
                    merged[kind][name] = body | {"__file__": path.name}
        for block in doc.get("locals", []):
            merged["locals"].update(block)
        merged["terraform"] += doc.get("terraform", [])
        merged["provider"] += doc.get("provider", [])
    return merged


def variable_defaults() -> dict[str, Any]:
    return {name: v["default"] for name, v in terraform()["variable"].items() if "default" in v}


_REF = re.compile(r"\$\{(var|local)\.([a-z_]+)\}")


def render(template: str, each_key: str | None = None) -> str:
    """Resolve ${var.x} (to its default), ${local.x} (when it is a plain string template) and
    ${each.key}: enough to see the literal value a policy condition will hold."""
    defaults, local = variable_defaults(), terraform()["locals"]
    out = template.replace("${each.key}", each_key) if each_key is not None else template
    for _ in range(5):
        new = _REF.sub(lambda m: str((defaults if m[1] == "var" else local).get(m[2], m[0])), out)
        if each_key is not None:
            new = new.replace("${each.key}", each_key)
        if new == out:
            break
        out = new
    return out


def policy_statements(doc_name: str) -> list[dict[str, Any]]:
    """Statements of a data.aws_iam_policy_document, with defaults made explicit."""
    doc = terraform()["data"]["aws_iam_policy_document"][doc_name]
    statements = []
    for st in doc["statement"]:
        st = dict(st)
        st.setdefault("effect", "Allow")
        st.setdefault("condition", [])
        st.setdefault("principals", [])
        statements.append(st)
    return statements


def statement(doc_name: str, sid: str) -> dict[str, Any]:
    matches = [s for s in policy_statements(doc_name) if s.get("sid") == sid]
    assert len(matches) == 1, f"{doc_name}: expected one statement {sid}, found {len(matches)}"
    return matches[0]


@cache
def workflow(name: str) -> dict[str, Any]:
    """A workflow as parsed by PyYAML, with the `on` key (parsed by YAML 1.1 as True) restored."""
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
