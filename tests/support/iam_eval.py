"""A small IAM evaluator over the bootstrap's policy documents, enough to ask "may this role do this
action on this resource, with this request context?" offline.

It resolves the Terraform expressions the documents use (variables to their defaults, locals, each.key,
the ARNs of the bootstrap's own resources in a sample account) and evaluates statements the way IAM
does within one account: an explicit Deny wins, otherwise any matching Allow allows. It knows the
condition operators the bootstrap uses and refuses any other, so a new operator cannot be silently
treated as true or false."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from tests.support.delivery_helpers import (
    default_environments,
    flattened,
    per_environment_local,
    table_instances,
    terraform,
    variable_defaults,
)

ACCOUNT = "111111111111"
PARTITION = "aws"
ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlplat-platform-admin"
# The sample value of var.github_repository (required: it has no default to read).
GITHUB_REPOSITORY = "example-org/mlplat"

Context = Mapping[str, list[str]]


class Unresolvable(ValueError):
    """An expression this evaluator does not know how to resolve."""


@dataclass(frozen=True)
class Scope:
    """Where the documents are rendered: one environment (each.key) in one region of the sample account,
    with the bootstrap's default name prefix in the `aws` partition unless told otherwise. KMS key IDs
    are the key's name (readable findings) unless `key_ids` is "uuid", the length AWS gives them."""

    env: str
    region: str = field(default_factory=lambda: str(variable_defaults()["aws_region"]))
    name_prefix: str = field(default_factory=lambda: str(variable_defaults()["name_prefix"]))
    partition: str = PARTITION
    key_ids: str = "name"

    @property
    def state_bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.name_prefix}-pulumi-state-{ACCOUNT}-{self.region}"

    def key_arn(self, name: str) -> str:
        key_id = "0" * 8 + "-0000-0000-0000-" + "0" * 12 if self.key_ids == "uuid" else name
        return f"arn:{self.partition}:kms:{self.region}:{ACCOUNT}:key/{key_id}"


def role_arn(kind: str, env: str) -> str:
    """ARN of a bootstrap role (aws_iam_role.github["<env>/<kind>"]) in the sample account."""
    return f"arn:aws:iam::{ACCOUNT}:role/mlplat-github-{kind}-{env}"


# The bootstrap's GitHub roles per environment (aws_iam_role.github["<env>/<kind>"], deploy_roles.tf
# github_roles), each trusting one GitHub environment: `<env>` for deploy, `<env>-<kind>` for the others.
GITHUB_ROLE_KINDS = ("deploy", "preview", "drift", "promote")


def github_environment(kind: str, env: str) -> str:
    """The GitHub environment whose jobs a bootstrap role of `kind` trusts."""
    return env if kind == "deploy" else f"{env}-{kind}"


def role_of_github_environment(github_env: str) -> tuple[str, str]:
    """(kind, environment) of the bootstrap role behind a GitHub environment."""
    for kind in GITHUB_ROLE_KINDS[1:]:
        if github_env.endswith(f"-{kind}"):
            return kind, github_env.removesuffix(f"-{kind}")
    return "deploy", github_env


def boundary_arn(env: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy/mlplat-boundary-{env}"


def runner_vpc_arn(region: str | None = None) -> str:
    """ARN of the bootstrap's runner VPC (aws_vpc.runner) in the sample account."""
    return f"arn:aws:ec2:{region or Scope('dev').region}:{ACCOUNT}:vpc/vpc-0runner"


def _references(scope: Scope) -> dict[str, Any]:
    env = scope.env
    return {
        "each.key": env,
        "data.aws_partition.current.partition": scope.partition,
        "var.name_prefix": scope.name_prefix,
        "data.aws_caller_identity.current.account_id": ACCOUNT,
        "aws_s3_bucket.state.arn": scope.state_bucket_arn,
        "aws_kms_key.state.arn": scope.key_arn("state"),
        "aws_kms_key.pulumi_secrets[each.key].arn": scope.key_arn(f"pulumi-{env}"),
        "aws_iam_policy.workload_boundary[each.key].arn": boundary_arn(env),
        "aws_vpc.runner.arn": runner_vpc_arn(scope.region),
        "local.github_oidc_provider_arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com",
        "var.aws_region": scope.region,
        "var.key_admin_arns": [ADMIN_ARN],
        "var.github_repository": GITHUB_REPOSITORY,
    }


_FOR = re.compile(r'^\[for (\w+) in ([\w.]+(?:\[each\.key\])?) : "(.*)"\]$')
_FOR_PAIRS = re.compile(r'^\[for (\w+), (\w+) in (local\.\w+) : "(.*)"\]$')
_INDEX = re.compile(r"^(local\.\w+)\[each\.key\]$")
_POSITION = re.compile(r"^(local\.\w+)\[(\d+)\]$")
# `{for env in local.environments : env => [for other in local.X : other if other != env]}`: per
# environment, the others of a list (deploy_roles.tf other_environments).
_OTHERS = re.compile(
    r"^\$\{\{for (\w+) in local\.environments : \1 => \[for (\w+) in (local\.\w+) : \2 if \2 != \1\]\}\}$"
)
_STARTSWITH = re.compile(r'startswith\(var\.aws_region, "([^"]+)"\) \? "([^"]+)"')
# A GitHub role of this environment, by kind: `aws_iam_role.github["${each.key}/<kind>"].arn`.
_GITHUB_ROLE_ARN = re.compile(r'^aws_iam_role\.github\["\$\{each\.key\}/(\w+)"\]\.arn$')
# The GitHub roles of some kinds in every environment of the account (kms.tf StateReadWriteThroughS3):
# `flatten([for k in ["a", "b"] : [for e in local.environments : aws_iam_role.github["${e}/${k}"].arn]])`.
_GITHUB_ROLES_OF_KINDS = re.compile(
    r"^flatten\(\[for (\w+) in (\[[^\]]*\]) : \[for (\w+) in local\.environments : "
    r'aws_iam_role\.github\["\$\{\3\}/\$\{\1\}"\]\.arn\]\]\)$'
)


def _template_parts(text: str) -> list[tuple[bool, str]]:
    """Split a Terraform template into (is_expression, text) parts; `${...}` may nest (quoted templates
    inside a conditional or a `for` expression), so braces are matched, not pattern-matched."""
    parts: list[tuple[bool, str]] = []
    i = 0
    while i < len(text):
        start = text.find("${", i)
        if start < 0:
            parts.append((False, text[i:]))
            break
        if start > i:
            parts.append((False, text[i:start]))
        depth, j = 0, start + 1
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                break
            j += 1
        if depth:
            raise Unresolvable(f"unbalanced template: {text}")
        parts.append((True, text[start + 2 : j].strip()))
        i = j + 1
    return parts


def resolve(value: Any, scope: Scope) -> Any:
    """Resolve a python-hcl2 value (string, list) to plain strings for one scope."""
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            resolved = resolve(item, scope)
            out.extend(resolved if isinstance(resolved, list) else [resolved])
        return out
    if not isinstance(value, str):
        return value
    parts = _template_parts(value)
    if len(parts) == 1 and parts[0][0]:
        return _expression(parts[0][1], scope)
    return "".join(_scalar(_expression(text, scope)) if is_expr else text for is_expr, text in parts)


def _scalar(value: Any) -> str:
    if not isinstance(value, str):
        raise Unresolvable(f"expected a string, got {value!r}")
    return value


def _expression(expr: str, scope: Scope) -> Any:
    refs = _references(scope)
    if expr in refs:
        return refs[expr]
    github_role = _GITHUB_ROLE_ARN.match(expr)
    if github_role:
        return role_arn(github_role[1], scope.env)
    of_kinds = _GITHUB_ROLES_OF_KINDS.match(expr)
    if of_kinds:
        return [role_arn(kind, env) for kind in json.loads(of_kinds[2]) for env in default_environments()]
    if expr.startswith("var."):
        defaults = variable_defaults()
        name = expr[4:]
        if name not in defaults:
            raise Unresolvable(expr)
        return resolve(defaults[name], scope)
    index = _INDEX.match(expr)
    if index:
        table = _local(index[1][6:])
        others = _OTHERS.match(table) if isinstance(table, str) else None
        if others:
            return [other for other in resolve(f"${{{others[3]}}}", scope) if other != scope.env]
        if not isinstance(table, dict) or scope.env not in table:
            raise Unresolvable(expr)
        return resolve(table[scope.env], scope)
    position = _POSITION.match(expr)
    if position:
        items = resolve(f"${{{position[1]}}}", scope)
        if not isinstance(items, list) or int(position[2]) >= len(items):
            raise Unresolvable(expr)
        return items[int(position[2])]
    if expr.startswith("local.") and re.fullmatch(r"local\.\w+", expr):
        return _local_value(expr[6:], scope)
    pairs = _FOR_PAIRS.match(expr)
    if pairs:
        table = _local(pairs[3][6:])
        return [
            resolve(pairs[4].replace(f"${{{pairs[1]}}}", key).replace(f"${{{pairs[2]}}}", value), scope)
            for key, value in table.items()
        ]
    keys = re.fullmatch(r"keys\((local\.\w+)\)", expr)
    if keys:
        return list(_local(keys[1][6:]))
    loop = _FOR.match(expr)
    if loop:
        items = resolve(f"${{{loop[2]}}}", scope)
        return [resolve(loop[3].replace(f"${{{loop[1]}}}", item), scope) for item in items]
    if " ? " in expr and expr.startswith("each.key == local."):
        return _conditional(expr, scope)
    every = _EVERY.match(expr)
    if every:
        # `[for r in aws_x.y : r.arn]`: that resource of every environment of the account.
        ref = f"{every[2]}[each.key].arn"
        return [_references(Scope(env, scope.region))[ref] for env in default_environments()]
    if re.fullmatch(r'"[^"$]*"', expr):
        # A quoted literal inside an expression (a list of them in concat(local.x, ["a", "b"])).
        return expr[1:-1]
    if expr.startswith("concat(") and expr.endswith(")"):
        return [item for arg in _split_top_level(expr[7:-1]) for item in _expression(arg, scope)]
    if expr.startswith("[") and expr.endswith("]"):
        return [_expression(arg, scope) for arg in _split_top_level(expr[1:-1])]
    raise Unresolvable(expr)


_EVERY = re.compile(r"^\[for (\w+) in (aws_\w+\.\w+) : \1\.arn\]$")


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "(": 1, "{": 1, "]": -1, ")": -1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def _local(name: str) -> Any:
    locals_ = terraform()["locals"]
    if name not in locals_:
        raise Unresolvable(f"local.{name}")
    return locals_[name]


def _local_value(name: str, scope: Scope) -> Any:
    raw = _local(name)
    if isinstance(raw, str) and "startswith(var.aws_region" in raw:
        # The only conditional chain among the locals: Karpenter's pricing region per region prefix.
        for prefix, region in _STARTSWITH.findall(raw):
            if scope.region.startswith(prefix):
                return region
        fallback = re.search(r':\s*"([^"]+)"\s*\)?\s*\}?\s*$', raw)
        if not fallback:
            raise Unresolvable(raw)
        return fallback[1]
    return resolve(raw, scope)


def _conditional(expr: str, scope: Scope) -> Any:
    """`each.key == local.X ? A : B` with A and B JSON-compatible literals (strings or lists of strings)."""
    cond, _, rest = expr.partition(" ? ")
    local_name = cond.split("==", 1)[1].strip()
    decoder = json.JSONDecoder()
    when_true, end = decoder.raw_decode(rest)
    tail = rest[end:].lstrip()
    if not tail.startswith(":"):
        raise Unresolvable(expr)
    when_false, _ = decoder.raw_decode(tail[1:].lstrip())
    chosen = when_true if scope.env == resolve(f"${{{local_name}}}", scope) else when_false
    return resolve(chosen, scope)


# --- statements -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    doc: str
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...]
    principals: tuple[str, ...]


def _documents(doc_name: str, key: str) -> list[str]:
    """The policy documents a document names in `key` (source_ or override_policy_documents)."""
    body = terraform()["data"]["aws_iam_policy_document"][doc_name]
    return [_document_name(ref) for ref in body.get(key, [])]


def _document_name(ref: str) -> str:
    """The document a `data.aws_iam_policy_document.<name>[...].json` reference names."""
    m = re.fullmatch(
        r'\$\{data\.aws_iam_policy_document\.(\w+)(\[each\.key\]|\["\$\{each\.key\}/(\w+)"\])?\.json\}',
        ref,
    )
    if not m:
        raise Unresolvable(ref)
    # document["${each.key}/<table>"]: the per-table document delivery_helpers names <document>/<table>.
    return f"{m[1]}/{m[3]}" if m[3] else m[1]


def trust_document(kind: str) -> str:
    """The policy document a bootstrap role of `kind` takes as its trust policy, read from the roles'
    assume_role_policy (`document[each.key]`: a document over the roles' own "<env>/<kind>" instances,
    which delivery_helpers reads as one document per kind, <document>/<kind>), so the evaluation follows
    what Terraform sets. Any other reference is refused."""
    role = terraform()["resource"]["aws_iam_role"]["github"]
    trust = re.fullmatch(
        r"\$\{data\.aws_iam_policy_document\.(\w+)\[each\.key\]\.json\}", role["assume_role_policy"]
    )
    if not trust or f"{trust[1]}/{kind}" not in terraform()["data"]["aws_iam_policy_document"]:
        raise Unresolvable(
            f"assume_role_policy {role['assume_role_policy']}: no per-kind document for {kind}"
        )
    return f"{trust[1]}/{kind}"


def github_role(kind: str, env: str) -> dict[str, Any]:
    """What AWS holds of one GitHub role (aws_iam_role.github["<env>/<kind>"]) besides its trust: name,
    description, session length and tags, rendered for the environment from its table entry."""
    role = terraform()["resource"]["aws_iam_role"]["github"]
    table = re.fullmatch(r"\$\{local\.(\w+)\}", role["for_each"])
    if not table:
        raise Unresolvable(f"aws_iam_role.github for_each {role['for_each']}")
    entry = table_instances(table[1])[kind]

    def bind(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: bind(v) for k, v in value.items()}
        whole = re.fullmatch(r"\$\{each\.value\.(\w+)\}", value) if isinstance(value, str) else None
        if whole:
            return resolve(entry[whole[1]], Scope(env))
        if isinstance(value, str):
            for attr, bound in entry.items():
                value = value.replace(f"${{each.value.{attr}}}", str(bound))
        return resolve(value, Scope(env))

    return {attr: bind(role[attr]) for attr in ("name", "description", "max_session_duration", "tags")}


class DuplicateSid(ValueError):
    """A Sid the provider refuses: twice among a document's source documents, or twice among its own
    statements (terraform-provider-aws internal/service/iam/policy_document_data_source.go
    dataSourcePolicyDocumentRead, read at 04e9356d7f061e7be1890e030f420c81a783d651)."""


def _merged(into: list[Statement], new: list[Statement]) -> list[Statement]:
    """As the provider merges a document into another (iam_policy_model.go IAMPolicyDoc.Merge, read at
    cbaabdfc24ebb75c8fb50f5763efd88769d88c5e): a statement replaces the one with its Sid, without a word,
    or is appended."""
    out = list(into)
    for st in new:
        same = [i for i, mine in enumerate(out) if st.sid and mine.sid == st.sid]
        if same:
            out[same[0]] = st
        else:
            out.append(st)
    return out


def _unique_sids(statements_: list[Statement], where: str) -> None:
    sids = [st.sid for st in statements_ if st.sid]
    twice = sorted({sid for sid in sids if sids.count(sid) > 1})
    if twice:
        raise DuplicateSid(f"{where}: duplicate Sid {', '.join(twice)}")


def statements(doc_name: str, scope: Scope) -> list[Statement]:
    """The statements of a policy document rendered for a scope, as the provider assembles them: its
    source documents' (a Sid twice among them is refused), then its own merged in (replacing a source
    statement of the same Sid), then its override documents' merged in. An expression the evaluator
    cannot resolve is an error, never a statement silently left out."""
    out: list[Statement] = []
    for source in _documents(doc_name, "source_policy_documents"):
        out += statements(source, scope)
    _unique_sids(out, f"{doc_name}: source_policy_documents")
    own = _own_statements(doc_name, scope)
    _unique_sids(own, doc_name)
    out = _merged(out, own)
    for override in _documents(doc_name, "override_policy_documents"):
        out = _merged(out, statements(override, scope))
    return out


def shadowed_sids(doc_name: str) -> list[str]:
    """The Sids whose statement the provider drops when it assembles a document (as `statements` does):
    a source statement its own statement of the same Sid replaces, or one of either an override
    replaces. Read from the Sids as written, so it holds for documents this evaluator cannot render."""
    sources = {sid for source in _documents(doc_name, "source_policy_documents") for sid in _sids(source)}
    own = {
        raw.get("sid", "")
        for raw in terraform()["data"]["aws_iam_policy_document"][doc_name].get("statement", [])
    }
    overrides = {
        sid for override in _documents(doc_name, "override_policy_documents") for sid in _sids(override)
    }
    return sorted(((sources & own) | ((sources | own) & overrides)) - {""})


def _sids(doc_name: str) -> set[str]:
    """The Sids of a document as the provider assembles it (its sources', its own, its overrides')."""
    body = terraform()["data"]["aws_iam_policy_document"][doc_name]
    own = {raw.get("sid", "") for raw in body.get("statement", [])}
    return own.union(
        *(
            _sids(other)
            for key in ("source_policy_documents", "override_policy_documents")
            for other in _documents(doc_name, key)
        )
    )


def _own_statements(doc_name: str, scope: Scope) -> list[Statement]:
    """The statements a policy document writes itself (its `statement` blocks, dynamic ones expanded),
    without those of its source and override documents."""
    out: list[Statement] = []
    body = terraform()["data"]["aws_iam_policy_document"][doc_name]
    for raw in body.get("statement", []):
        conditions = tuple(
            (
                _scalar(resolve(c["test"], scope)),
                _condition_key(c["variable"]),
                tuple(resolve(c["values"], scope)),
            )
            for c in raw.get("condition", [])
        )
        out.append(
            Statement(
                doc=doc_name,
                sid=raw.get("sid", ""),
                effect=raw.get("effect", "Allow"),
                actions=tuple(resolve(raw.get("actions", []), scope)),
                resources=tuple(resolve(raw.get("resources", []), scope)),
                conditions=conditions,
                principals=tuple(
                    i for p in raw.get("principals", []) for i in resolve(p["identifiers"], scope)
                ),
            )
        )
    return out


def _condition_key(variable: str) -> str:
    """Condition keys embed the environment tag key as `${local.environment_tag}`."""
    return "".join(_local(text[6:]) if is_expr else text for is_expr, text in _template_parts(variable))


@cache
def _pattern(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(regex, 0 if case_sensitive else re.IGNORECASE)


def _like(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM's wildcard match: `*` any run of characters (`/` and `:` included), `?` one character."""
    return _pattern(pattern, case_sensitive).fullmatch(value) is not None


def _condition_holds(test: str, key: str, values: tuple[str, ...], context: Context) -> bool:
    present = key in context
    given = context.get(key, [])
    if test == "Null":
        (expected,) = values
        return (not present) == (expected == "true")
    if test in ("StringEquals", "ForAnyValue:StringEquals"):
        return present and any(v in values for v in given)
    if test in ("StringLike", "ForAnyValue:StringLike"):
        return present and any(_like(p, v) for p in values for v in given)
    if test == "StringNotEquals":
        return not present or all(v not in values for v in given)
    # ARNs as the bootstrap names them carry no wildcard, so ArnEquals and ArnLike match like StringLike.
    if test in ("ArnEquals", "ArnLike"):
        return present and any(_like(p, v) for p in values for v in given)
    if test == "Bool":
        return present and any(v.lower() in (x.lower() for x in values) for v in given)
    raise AssertionError(f"condition operator {test} is not known to this evaluator: teach it first")


def matches(
    st: Statement, action: str, resource: str, context: Context, principal: str | None = None
) -> bool:
    if (
        principal is not None
        and st.principals
        and principal not in st.principals
        and "*" not in st.principals
    ):
        return False
    if not any(_like(a, action, case_sensitive=False) for a in st.actions):
        return False
    # A trust policy's statements name no resource: the role itself is the resource.
    if st.resources and not any(_like(r, resource) for r in st.resources):
        return False
    return all(_condition_holds(test, key, values, context) for test, key, values in st.conditions)


def decide(
    policy: Iterable[Statement], action: str, resource: str, context: Context, principal: str | None = None
) -> tuple[bool, list[str]]:
    """(allowed, the statements that decided): Deny wins over Allow; nothing matching is an implicit deny."""
    allows, denies = [], []
    for st in policy:
        if matches(st, action, resource, context, principal):
            (denies if st.effect == "Deny" else allows).append(f"{st.doc}/{st.sid}")
    return (not denies and bool(allows)), (denies or allows)


def attached_documents(kind: str) -> list[str]:
    """The policy documents attached to a bootstrap role, read from its aws_iam_role_policy_attachment
    resources (role -> aws_iam_policy -> data.aws_iam_policy_document), so the evaluation follows what
    Terraform attaches."""
    docs = []
    for attachment in terraform()["resource"]["aws_iam_role_policy_attachment"].values():
        if attachment["role"] != "${each.value.role}":
            raise Unresolvable(f"attachment role {attachment['role']}: not a table's `each.value.role`")
        docs += _table_attached_documents(kind, attachment)
    if not docs:
        raise Unresolvable(f"no policy attached to the {kind} role")
    return docs


_TABLE_ENTRY_ROLE = re.compile(r'\$\{aws_iam_role\.github\["\$\{each\.key\}/(\w+)"\]\.name\}')


def _table_attached_documents(kind: str, attachment: Mapping[str, Any]) -> list[str]:
    """The documents a table of managed policies attaches to a role: the attachment and its policy
    iterate the same local, `<env>/<policy>` over a per-environment table whose entries name their
    `role` and `document` (deploy_roles.tf github_role_policies). Any other shape is refused."""
    resources = terraform()["resource"]
    policy = re.fullmatch(r"\$\{aws_iam_policy\.(\w+)\[each\.key\]\.arn\}", attachment["policy_arn"])
    if not policy or resources["aws_iam_policy"][policy[1]].get("for_each") != attachment["for_each"]:
        raise Unresolvable(f"{attachment['policy_arn']}: not the policy of the attachment's own table")
    if resources["aws_iam_policy"][policy[1]]["policy"] != "${each.value.document}":
        raise Unresolvable(resources["aws_iam_policy"][policy[1]]["policy"])
    instances = re.fullmatch(r"\$\{local\.(\w+)\}", attachment["for_each"])
    table = flattened(_local(instances[1])) if instances else None
    if not table or table.added:
        raise Unresolvable(f"attachment for_each {attachment['for_each']}")
    docs = []
    for name, entry in per_environment_local(table.table).items():
        # Every entry names its role one way; another (`.id`, which is also the name) would attach a
        # policy to a role this reader did not see, so it is refused, never skipped.
        role = _TABLE_ENTRY_ROLE.fullmatch(entry["role"])
        if not role:
            raise Unresolvable(f"{table.table}.{name}: role {entry['role']}")
        if role[1] == kind:
            docs.append(_document_name(entry["document"]))
    return docs


def inline_documents(kind: str) -> list[str]:
    """The policy documents of a bootstrap role's inline policies (aws_iam_role_policy): a table of
    them per environment on the role of one kind. An inline policy naming a GitHub role another way is
    refused, never read as no policy."""
    docs = []
    for inline in terraform()["resource"].get("aws_iam_role_policy", {}).values():
        if "aws_iam_role.github" not in inline["role"]:
            continue
        role = re.fullmatch(
            r'\$\{aws_iam_role\.github\["\$\{each\.value\.environment\}/(\w+)"\]\.id\}', inline["role"]
        )
        if not role:
            raise Unresolvable(f"inline policy role {inline['role']}")
        if role[1] == kind:
            docs += _table_inline_documents(inline)
    return docs


_INLINE_TABLE = re.compile(
    r'^\$\{merge\(\[for (\w+), (\w+) in local\.(\w+) : \{for (\w+), (\w+) in \2 : "\$\{\1\}/\$\{\4\}" => '
    r"\{environment = \1, name = \4, policy = \5\}\}\] \.\.\.\)\}$"
)


def _table_inline_documents(inline: Mapping[str, Any]) -> list[str]:
    """The documents of one aws_iam_role_policy over a per-environment table of inline policies (its
    for_each keyed "<env>/<name>" from `local.<table>[env][name]`, each a document's `.json`); any other
    for_each or policy is refused, never read as no policy."""
    table = _INLINE_TABLE.match(inline["for_each"])
    if not table or (inline["name"], inline["policy"]) != ("${each.value.name}", "${each.value.policy}"):
        raise Unresolvable(f"inline policy table: {inline['for_each']}")
    docs = []
    for policy in per_environment_local(table[3]).values():
        document = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)(\[each\.key\])?\.json\}", policy)
        if not document:
            raise Unresolvable(policy)
        docs.append(document[1])
    return docs


def role_policy(kind: str, env: str) -> list[Statement]:
    """Every identity-policy statement of one bootstrap role: its managed and its inline policies."""
    docs = attached_documents(kind) + inline_documents(kind)
    return [st for doc in docs for st in statements(doc, Scope(env))]


def request(
    *, resource_tags: Mapping[str, str] = {}, request_tags: Mapping[str, str] = {}, **keys: str
) -> dict[str, list[str]]:
    """A request context: the resource's tags, the tags the request sets (and their keys), and any other
    condition keys given as keyword arguments with `__` for `:` (e.g. aws__RequestedRegion)."""
    out = {key.replace("__", ":"): [value] for key, value in keys.items()}
    out |= {f"aws:ResourceTag/{k}": [v] for k, v in resource_tags.items()}
    out |= {f"aws:RequestTag/{k}": [v] for k, v in request_tags.items()}
    if request_tags:
        out["aws:TagKeys"] = list(request_tags)
    return out
