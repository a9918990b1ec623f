"""Shared readers for the delivery tests: the bootstrap's Terraform (via python-hcl2) and the workflows."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    variable/output/locals/terraform/provider, plus `files` (block kind -> file names) and `moved` (the
    moved blocks of the `*.tf.json` files, as written: from and to are address strings).

    The locals of the generated `*.tf.json` files (contract.tf.json: the contract's environments, its
    environment tag, the runner shares) are merged in too: Terraform loads a directory's `.tf.json` files
    as JSON syntax beside its `.tf` files, and ignores a `"//"` property at a file's root or in a block
    body (https://developer.hashicorp.com/terraform/language/syntax/json, "Comment Properties").
    Map keys written as `(local.x)` (an expression key) are replaced by that local's string value, as
    Terraform evaluates them, so tag and condition maps read as AWS will see them."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "variable": {}, "output": {}, "locals": {}}
    merged["terraform"], merged["provider"], merged["moved"] = [], [], []
    for path in sorted(BOOTSTRAP.glob("*.tf.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(doc) - {"//", "locals", "moved"}
        assert not unknown, (
            f"{path.name}: only generated locals and moved blocks are read from *.tf.json, not {sorted(unknown)}"
        )
        merged["locals"].update({k: v for k, v in doc.get("locals", {}).items() if k != "//"})
        merged["moved"] += [block | {"__file__": path.name} for block in doc.get("moved", [])]
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
    documents = merged["data"].get("aws_iam_policy_document", {})
    merged["data"]["aws_iam_policy_document"] = _per_table_documents(documents, merged["locals"])
    for kind in ("resource", "data"):
        merged[kind] = _expand_dynamic(_expression_keys(merged[kind], merged["locals"]), merged["locals"])
    return merged


_TABLE_LOCAL = re.compile(r"\blocal\.(\w+)\b")


def _per_table_documents(documents: Mapping[str, Any], local: Mapping[str, Any]) -> dict[str, Any]:
    """A policy document with one instance per environment and table (its `for_each` keyed
    "<env>/<table>" over a per-environment local of statement tables, its `dynamic "statement"` over
    `each.value`), read as one per-environment document per table named `<document>/<table>`: the name
    iam_eval gives a `document["${each.key}/<table>"]` reference, with `each.key` the environment as in
    every other per-environment document."""
    out = {}
    for name, body in documents.items():
        tables = [
            d for d in body.get("dynamic", []) if d.get("statement", {}).get("for_each") == "${each.value}"
        ]
        if not tables:
            out |= _per_entry_documents(name, body, local)
            continue
        # One local of tables, or several merged (`merge(local.a[env], local.b[env])`), each per environment.
        sources = sorted(set(_TABLE_LOCAL.findall(body["for_each"])) - {"environments"})
        assert sources, f"{name}: a per-table for_each reads no local of tables"
        for source in sources:
            for table in _per_environment(source, local):
                assert f"{name}/{table}" not in out, f"{name}: two locals hold a table {table!r}"
                spec = tables[0]["statement"] | {"for_each": f"${{local.{source}[each.key].{table}}}"}
                out[f"{name}/{table}"] = body | {
                    "for_each": "${local.environments}",
                    "dynamic": [{"statement": spec}],
                }
    return out


_EACH_VALUE = re.compile(r"^\$\{each\.value\.(\w+)\}$")


def _per_entry_documents(name: str, body: Mapping[str, Any], local: Mapping[str, Any]) -> dict[str, Any]:
    """A policy document with one instance per environment and entry (its `for_each` keyed
    "<env>/<entry>" over a per-environment local of entries or a local flattening one (_FLATTENED), its
    statements naming `each.value.<attr>`, as deploy_roles.tf github_trust), read as one per-environment
    document per entry, `<document>/<entry>`, with each `each.value.<attr>` written out as the entry's.
    A document of any other form is kept."""
    if "${each.value." not in json.dumps(body):
        return {name: body}
    sources = set(_TABLE_LOCAL.findall(body["for_each"]))
    assert len(sources) == 1, f"{name}: a per-entry for_each reads one local, not {sorted(sources)}"
    (source,) = sources

    def bind(value: Any, entry: Mapping[str, Any]) -> Any:
        if isinstance(value, list):
            return [bind(v, entry) for v in value]
        if isinstance(value, dict):
            return {k: bind(v, entry) for k, v in value.items()}
        found = _EACH_VALUE.match(value) if isinstance(value, str) else None
        assert not (isinstance(value, str) and "each.value" in value and not found), (
            f"{name}: {value!r} is not an `each.value.<attr>` this reader knows"
        )
        assert not found or found[1] in entry, f"{name}: its entries have no `{found[1] if found else ''}`"
        return entry[found[1]] if found else value

    flat = flattened(local[source])
    entries = _per_table_entries(flat, local) if flat else _per_environment(source, local)
    return {
        f"{name}/{key}": bind(body, entry) | {"for_each": "${local.environments}"}
        for key, entry in entries.items()
    }


# `merge([for env, entries in local.<table> : { for key, entry in entries : "${env}/${key}" => <value> }]...)`:
# a per-environment table flattened to one instance per entry, keyed "<env>/<key>", its value the entry
# itself or `merge(entry, { attr = env, attr = key, ... })` (deploy_roles.tf github_role_instances).
_FLATTENED = re.compile(
    r"^\$\{merge\(\[for (?P<env>\w+), (?P<entries>\w+) in local\.(?P<table>\w+) : \{ ?for (?P<key>\w+), "
    r'(?P<entry>\w+) in (?P=entries) : "\$\{(?P=env)\}/\$\{(?P=key)\}" => (?P<value>.+?) ?\}\] ?\.\.\.\)\}$'
)
_MERGED_ENTRY = re.compile(r"^merge\((\w+), \{(.*)\}\)$")


@dataclass(frozen=True)
class Flattened:
    """A flattened per-environment table: the local it flattens, and the attributes each instance gains
    beside the entry's own, each the instance's environment (`${each.key}` as the readers write it) or
    its entry's name (`key`)."""

    table: str
    added: Mapping[str, str]


def flattened(expression: Any) -> Flattened | None:
    """The table a local or a for_each flattens into "<env>/<entry>" instances (_FLATTENED), or None when
    it is no such flattening. An added attribute of another form is an error, never left out."""
    found = _FLATTENED.match(expression) if isinstance(expression, str) else None
    if not found:
        return None
    if found["value"] == found["entry"]:
        return Flattened(found["table"], {})
    merged = _MERGED_ENTRY.match(found["value"])
    assert merged and merged[1] == found["entry"], f"flattened table: cannot read {found['value']!r}"
    added = {}
    for item in merged[2].split(","):
        attr, _, ref = (part.strip() for part in item.partition("="))
        assert ref in (found["env"], found["key"]), (
            f"flattened table: {attr} = {ref} is neither {found['env']} nor {found['key']}"
        )
        added[attr] = "${each.key}" if ref == found["env"] else "key"
    return Flattened(found["table"], added)


def _per_table_entries(flat: Flattened, local: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of a flattened table as one environment's instances are written (the environment as
    `${each.key}`), each with the attributes the flattening adds."""
    return {
        key: entry | {attr: key if value == "key" else value for attr, value in flat.added.items()}
        for key, entry in _per_environment(flat.table, local).items()
    }


def table_instances(name: str) -> dict[str, Any]:
    """The instances of a local that flattens a per-environment table (_FLATTENED), by entry name, as one
    environment's are written: the environment as `${each.key}`, with the attributes the flattening adds."""
    flat = flattened(terraform()["locals"][name])
    assert flat, f"local.{name} is not a flattened per-environment table of the form this reader knows"
    return _per_table_entries(flat, terraform()["locals"])


def _expand_dynamic(value: Any, local: Mapping[str, Any]) -> Any:
    """`dynamic "<type>"` blocks written out as the `<type>` blocks Terraform makes of them, so every
    reader (policy_statements, iam_eval) sees the real statements and conditions. Terraform expands a
    dynamic block where it stands (hashicorp/hcl ext/dynblock/expand_body.go, expandBlocks); here the
    expanded blocks follow the static ones of their type, which no reader of a policy depends on.
    A `for_each` this reader cannot resolve is an error, never a block left out."""
    if isinstance(value, list):
        return [_expand_dynamic(item, local) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: _expand_dynamic(item, local) for key, item in value.items() if key != "dynamic"}
    for dynamic in value.get("dynamic", []):
        for block_type, spec in dynamic.items():
            (content,) = spec["content"]
            for item in _for_each_items(spec["for_each"], local):
                block = _expand_dynamic(_bind(content, block_type, item), local)
                out.setdefault(block_type, []).append(block)
    return out


_ITERATOR_VALUE = re.compile(r"^\$\{(\w+)\.value\.(\w+)\}$")
# `<iterator>.key` and `<iterator>.value` of a map's item.
_ITERATOR_KEY_OR_VALUE = re.compile(r"^\$\{(\w+)\.(key|value)\}$")
# `try(<iterator>.value.<attr>, "<default>")`: an attribute only some items of a table carry.
_ITERATOR_VALUE_OR = re.compile(r'^\$\{try\((\w+)\.value\.(\w+), "(\w+)"\)\}$')
# `local.<name>` holding a literal map or list (the same for every environment).
_PLAIN_LOCAL = re.compile(r"^\$\{local\.(\w+)\}$")
_PER_ENVIRONMENT_ATTR = re.compile(r"^\$\{local\.(\w+)\[each\.key\]\.(\w+)\}$")
_PER_ENVIRONMENT = re.compile(r"^\$\{\{for (\w+) in local\.environments : \1 => (\{.*\})\}\}$", re.DOTALL)


def _bind(content: Any, iterator: str, item: Mapping[str, Any]) -> Any:
    """A dynamic block's content with `<iterator>.value.<attr>` references (or their `try` with a
    default), and a map item's `<iterator>.key` and `<iterator>.value`, replaced by the item's."""
    if isinstance(content, list):
        return [_bind(v, iterator, item) for v in content]
    if isinstance(content, dict):
        return {k: _bind(v, iterator, item) for k, v in content.items()}
    if not isinstance(content, str):
        return content
    # A list item's attributes are `<iterator>.value.<attr>`; a map item's, its value's.
    attributes = item["value"] if isinstance(item, _MapItem) else item
    found = _ITERATOR_VALUE.match(content)
    if found and found[1] == iterator:
        return attributes[found[2]]
    found = _ITERATOR_KEY_OR_VALUE.match(content)
    if found and found[1] == iterator:
        return item[found[2]]
    found = _ITERATOR_VALUE_OR.match(content)
    return attributes.get(found[2], found[3]) if found and found[1] == iterator else content


class _MapItem(dict[str, Any]):
    """A map's item as a dynamic block sees it: `<iterator>.key` and `<iterator>.value`."""


def _for_each_items(for_each: Any, local: Mapping[str, Any]) -> list[Any]:
    """The items of a dynamic block: a literal list, a literal map (as `{"key", "value"}` items, in key
    order as Terraform iterates a map), a local holding one of those, or an attribute of a
    per-environment local."""
    if isinstance(for_each, list):
        return for_each
    if isinstance(for_each, dict):
        return [_MapItem(key=key, value=for_each[key]) for key in sorted(for_each)]
    plain = _PLAIN_LOCAL.match(for_each) if isinstance(for_each, str) else None
    if plain and isinstance(local.get(plain[1]), (dict, list)):
        return _for_each_items(local[plain[1]], local)
    found = _PER_ENVIRONMENT_ATTR.match(for_each) if isinstance(for_each, str) else None
    assert found, f"dynamic block: cannot expand for_each = {for_each!r}: teach delivery_helpers first"
    items = _per_environment(found[1], local)[found[2]]
    assert isinstance(items, list), f"local.{found[1]}[each.key].{found[2]} is not a list"
    return items


def _per_environment(name: str, local: Mapping[str, Any]) -> Any:
    """A local `{ for env in local.environments : env => { ... } }` as each environment's value is
    written in place: the object with the environment as `${each.key}`, for the readers to resolve."""
    found = _PER_ENVIRONMENT.match(local[name])
    assert found, f"local.{name} is not a per-environment object of the form this reader knows"
    # The iterator as a whole name inside an interpolation (`${env}`, `local.x[env]`), never a word of
    # the literal text around it.
    iterator = re.compile(rf"(?<![\w.]){found[1]}(?!\w)")

    def as_each_key(value: Any) -> Any:
        """python-hcl2 leaves a reference inside a nested collection bare (`env`), where it wraps one
        elsewhere (`${env}`): both become `${each.key}`; literals keep their quotes for _unquote."""
        if isinstance(value, list):
            return [as_each_key(v) for v in value]
        if isinstance(value, dict):
            return {k: as_each_key(v) for k, v in value.items()}
        if not isinstance(value, str):
            return value
        wrapped = value if value.startswith(('"', "${")) else f"${{{value}}}"
        return _in_expressions(wrapped, lambda chunk: iterator.sub("each.key", chunk))

    table = _FOR_TABLE.match(found[2])
    value = (
        {key: _for_item(table, item) for key, item in local[table["table"]].items()}
        if table
        else hcl2.loads(f"value = {found[2]}\n")["value"]
    )
    return _unquote(as_each_key(value))


# `{for <key>, <item> in local.<table> : <key> => <value>}`: an environment's value built from a literal
# table (deploy_roles.tf tag_held_statements), one entry per item of it.
_FOR_TABLE = re.compile(
    r"^\{for (?P<key>\w+), (?P<item>\w+) in local\.(?P<table>\w+) : (?P=key) => (?P<value>.*)\}$", re.DOTALL
)


def _for_item(table: re.Match[str], item: Mapping[str, Any]) -> Any:
    """One entry of a `_FOR_TABLE` value, as python-hcl2 parses it, with the item's attributes written in:
    `${<item>.<attr>}` in a template as the attribute's text, `<item>.<attr>` in an expression as its
    literal value. An attribute the item lacks, or one of another form, is an error."""
    name = table["item"]

    def text(found: re.Match[str]) -> str:
        value = item[found[1]]
        assert isinstance(value, str) and not set(value) & set('"${}'), f"{name}.{found[1]}: not plain text"
        return value

    written = re.sub(rf"\$\{{{name}\.(\w+)\}}", text, table["value"])
    reference = re.compile(rf"(?<![\w.]){name}\.(\w+)")
    written = _in_expressions(
        f"${{{written}}}", lambda code: reference.sub(lambda found: json.dumps(item[found[1]]), code)
    )[2:-1]
    assert not reference.search(written), f"{name}: a reference this reader cannot write in: {written}"
    return hcl2.loads(f"value = {written}\n")["value"]


def per_environment_local(name: str) -> Any:
    """A per-environment local (`{ for env in local.environments : env => { ... } }`) as each environment's
    value is written, with the environment as `${each.key}`."""
    return _per_environment(name, terraform()["locals"])


def _in_expressions(text: str, substitute: Callable[[str], str]) -> str:
    """`text` with `substitute` applied to its expression code only: inside `${...}`, at any depth (a
    conditional whose branches are quoted templates with their own `${...}`), never to the literal text
    of a quoted string or template."""
    out: list[str] = []
    # Frames: ("lit", depth) for template text, ("expr", open braces) for expression code.
    frames: list[list[Any]] = [["lit", 0]]
    code = ""
    i = 0
    while i < len(text):
        kind = frames[-1][0]
        if kind == "lit" and text.startswith("${", i):
            frames.append(["expr", 0])
            out.append("${")
            i += 2
            continue
        if kind == "lit":
            if text[i] == '"' and len(frames) > 1:
                frames.pop()
            out.append(text[i])
            i += 1
            continue
        char = text[i]
        if char == '"' or (char == "}" and frames[-1][1] == 0):
            out.append(substitute(code) + char)
            code = ""
            if char == '"':
                frames.append(["lit", 0])
            else:
                frames.pop()
        else:
            frames[-1][1] += {"{": 1, "}": -1}.get(char, 0)
            code += char
        i += 1
    return "".join(out) + substitute(code)


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


def runner_layout(shares: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The runner VPC as runners.tf lays it out for `shares` (default: contract.tf.json's runner_shares)
    in the default runner_vpc_cidr: `vpc`, `nat` (the NAT subnet), `environments` (env -> its
    share of the VPC, deploy_runners.<env>.vpc_cidr), `subnets` (env -> its per-zone subnets) and `limit`
    (the first share number runners.tf refuses). Read from the HCL expressions, so a change of layout
    there is what the tests see."""
    tf = terraform()
    local = tf["locals"]
    vpc = IPv4Network(tf["variable"]["runner_vpc_cidr"]["default"])
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
