"""Shared readers for the delivery tests: the bootstrap's Terraform (via python-hcl2) and the workflows."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from ipaddress import IPv4Network
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
    variable/output/locals/terraform/provider, plus `files` (block kind -> file names).

    The locals of the generated `*.tf.json` files (contract.tf.json: the contract's environments, its
    environment tag, the runner shares) are merged in too: Terraform loads a directory's `.tf.json` files
    as JSON syntax beside its `.tf` files, and ignores a `"//"` property at a file's root or in a block
    body (https://developer.hashicorp.com/terraform/language/syntax/json, "Comment Properties").
    Map keys written as `(local.x)` (an expression key) are replaced by that local's string value, as
    Terraform evaluates them, so tag and condition maps read as AWS will see them."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "variable": {}, "output": {}, "locals": {}}
    merged["terraform"], merged["provider"] = [], []
    for path in sorted(BOOTSTRAP.glob("*.tf.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(doc) - {"//", "locals"}
        assert not unknown, (
            f"{path.name}: only generated locals are read from *.tf.json, not {sorted(unknown)}"
        )
        merged["locals"].update({k: v for k, v in doc.get("locals", {}).items() if k != "//"})
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
    for kind in ("resource", "data"):
        merged[kind] = _expression_keys(merged[kind], merged["locals"])
    return merged


_KEY_EXPRESSION = re.compile(r"^\$\{\(local\.(\w+)\)\}$")


def _expression_keys(value: Any, local: Mapping[str, Any]) -> Any:
    """`{ (local.environment_tag) = each.key }` as Terraform reads it: the key is the local's value."""
    if isinstance(value, list):
        return [_expression_keys(v, local) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        found = _KEY_EXPRESSION.match(key) if isinstance(key, str) else None
        if found and isinstance(local.get(found[1]), str):
            key = local[found[1]]
        out[key] = _expression_keys(item, local)
    return out


def default_environments() -> list[str]:
    """The environments a bootstrap applied with its defaults holds: `var.environments`, or, when that is
    null (its default), every environment of the contract (local.contract_environments)."""
    default = terraform()["variable"]["environments"].get("default")
    return list(default) if default is not None else list(terraform()["locals"]["contract_environments"])


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


def cidrsubnet(prefix: str | IPv4Network, newbits: int, netnum: int) -> IPv4Network:
    """Terraform's `cidrsubnet` for IPv4: the `netnum`-th block of `newbits` more prefix bits, and an
    error (as Terraform gives) when the number does not fit in those bits."""
    base = IPv4Network(prefix)
    if not 0 <= netnum < 2**newbits:
        raise ValueError(f"prefix extension of {newbits} does not accommodate a subnet numbered {netnum}")
    size = 2 ** (32 - base.prefixlen - newbits)
    return IPv4Network((int(base.network_address) + netnum * size, base.prefixlen + newbits))


_RUNNER_SHARE = re.compile(r"cidrsubnet\(var\.runner_vpc_cidr, ([\w.]+), local\.runner_shares\[env\]\)")
_RUNNER_NAT = re.compile(r"^\$\{cidrsubnet\(var\.runner_vpc_cidr, ([\w.]+), ([\w.]+)\)\}$")
_RUNNER_ZONE = re.compile(r"cidrsubnet\(local\.runner_environment_cidr\[pair\[0\]\], ([\w.]+), pair\[1\]\)")


def _number(token: str) -> int:
    """An integer literal or a local holding one."""
    return int(token) if token.isdigit() else int(terraform()["locals"][token.removeprefix("local.")])


def runner_layout(
    shares: Mapping[str, int] | None = None, runner_vpc_cidr: str | None = None
) -> dict[str, Any]:
    """The runner VPC as runners.tf lays it out for `shares` (default: contract.tf.json's runner_shares)
    in `runner_vpc_cidr` (default: the variable's): `nat` (the NAT subnet), `environments` (env -> its
    share of the VPC, deploy_runners.<env>.vpc_cidr), `subnets` (env -> its per-zone subnets) and `limit`
    (the first share number runners.tf refuses). Read from the HCL expressions, so a change of layout
    there is what the tests see."""
    tf = terraform()
    local = tf["locals"]
    vpc = IPv4Network(runner_vpc_cidr or tf["variable"]["runner_vpc_cidr"]["default"])
    share = _RUNNER_SHARE.search(local["runner_environment_cidr"])
    nat = _RUNNER_NAT.match(local["runner_nat_cidr"])
    zone = _RUNNER_ZONE.search(local["runner_private_subnets"])
    assert share and nat and zone, "runners.tf: the runner layout is not the one these tests read"
    given = dict(local["runner_shares"]) if shares is None else dict(shares)
    environments = {env: cidrsubnet(vpc, _number(share[1]), n) for env, n in given.items()}
    zones = len(local["runner_azs"])
    return {
        "vpc": vpc,
        "nat": cidrsubnet(vpc, _number(nat[1]), _number(nat[2])),
        "environments": environments,
        "subnets": {
            env: [cidrsubnet(block, _number(zone[1]), i) for i in range(zones)]
            for env, block in environments.items()
        },
        "limit": int(local["runner_share_limit"]),
    }
