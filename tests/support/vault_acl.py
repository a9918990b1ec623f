"""What a Vault ACL policy allows, and which API path and capability a `vault` CLI command needs.

Matching follows Vault's policy syntax (developer.hashicorp.com/vault/docs/concepts/policies, "Policy
syntax" and "Priority matching"): a path is exact, or ends in `*` (a prefix), or holds `+` (one
segment); when several rules match, the one whose first wildcard comes latest wins, then one not
ending in `*`, then fewer `+`, then the longer path, then the lexicographically larger one; `deny`
in the winning rule refuses everything. Policies are parsed with pyhcl, the HCL 1 grammar Vault reads
them with (hashicorp/vault vault/policy.go)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import hcl  # pyhcl


def rules(policy: Path) -> dict[str, list[str]]:
    """path -> capabilities of a policy file."""
    parsed = hcl.loads(policy.read_text())
    return {path: list(rule.get("capabilities", [])) for path, rule in parsed.get("path", {}).items()}


def _matches(rule: str, path: str) -> bool:
    pattern = "".join(
        "[^/]+" if part == "+" else ".*" if part == "*" else re.escape(part)
        for part in re.split(r"(\+|\*$)", rule)
    )
    return re.fullmatch(pattern, path) is not None


def _priority(rule: str) -> tuple[int, bool, int, int, str]:
    wildcards = [i for i, c in enumerate(rule) if c in "+*"]
    return (
        wildcards[0] if wildcards else len(rule) + 1,
        not rule.endswith("*"),
        -rule.count("+"),
        len(rule),
        rule,
    )


def allows(policy: dict[str, list[str]], path: str, capability: str) -> bool:
    matching = [rule for rule in policy if _matches(rule, path)]
    if not matching:
        return False
    capabilities = policy[max(matching, key=_priority)]
    return "deny" not in capabilities and capability in capabilities


# `vault` subcommands that need no capability of the caller's policies, or only those of `default`
# (token lookup-self), or run with a root token in the sections that say so.
UNCHECKED = {("status",), ("login",), ("token", "lookup")}


def needs(argv: list[str]) -> list[tuple[str, str]]:
    """(API path, capability) pairs a `vault` command (arguments after `vault`) needs, after Vault's CLI
    (hashicorp/vault command/: `policy write` PUTs sys/policies/acl/<name>; `kv put`/`get`/`patch` use
    <mount>/data/<path>, `patch` the `patch` capability; `token create -role=R` auth/token/create/R;
    `token renew`/`revoke -accessor` auth/token/renew-accessor, revoke-accessor; `operator raft
    list-peers` sys/storage/raft/configuration). Variables and
    `<placeholders>` in paths stand for one segment. A command without its path is a mention in prose
    and needs nothing. Raises on a command it does not know."""
    words = [re.sub(r"\$\{?\w+\}?|<[^>/]+>", "x", w) for w in shlex.split(" ".join(argv))]
    flags = {w.split("=", 1)[0]: w.partition("=")[2] for w in words if w.startswith("-") and w != "-"}
    args = [w for w in words if not w.startswith("-") or w == "-"]
    command = tuple(args[:2])
    if command[:1] in UNCHECKED or command in UNCHECKED:
        return []
    if len(args) < (2 if command[:1] in (("write",), ("read",)) else 3) and command[:1] != ("token",):
        return []  # a command named in prose (`vault kv put`), not one to run
    if args[:3] == ["operator", "raft", "list-peers"]:
        return [("sys/storage/raft/configuration", "read")]
    if command == ("policy", "write"):
        return [(f"sys/policies/acl/{args[2]}", "update")]
    if command[:1] == ("write",):
        return [(args[1], "update")]
    if command[:1] == ("read",):
        return [(args[1], "read")]
    if command[:1] == ("kv",):
        path = f"{flags['-mount']}/data/{args[2]}"
        capabilities = {"put": ["create", "update"], "patch": ["patch"], "get": ["read"]}[command[1]]
        return [(path, capability) for capability in capabilities]
    if command == ("token", "create") and "-role" in flags:
        return [(f"auth/token/create/{flags['-role']}", "update")]
    if command == ("token", "create"):
        # Without a role, an orphan or a token of policies the caller lacks needs sudo
        # (hashicorp/vault vault/token_store.go handleCreateCommon).
        return [("auth/token/create", "update"), ("auth/token/create", "sudo")]
    if command in (("token", "renew"), ("token", "revoke")):
        endpoint = f"auth/token/{command[1]}" + ("-accessor" if "-accessor" in flags else "")
        return [(endpoint, "update")]
    raise ValueError(f"vault {' '.join(argv)}: which path and capability does this need?")
