"""A small interpreter for Falco conditions, to run the platform's rules against test events.

Falco is not available offline. This evaluates the subset of the condition language the rules use
(https://falco.org/docs/concepts/rules/conditions/): `and`/`or`/`not`, parentheses, macros and
lists (expanded by name), comparisons `= != < <= > >=`, `in (...)`, `startswith`, `endswith`,
`contains`, `icontains`, `exists`. Network fields (`fd.net`, `fd.snet`, `fd.cnet`) compare as
"address in CIDR", as Falco does. A field the event lacks makes its comparison false.

Events are flat dicts of Falco field names (`proc.name`, `fd.sport`, `k8s.ns.name`, ...).
The stock macros and lists the rules use are given here in simplified form, from falco_rules.yaml
of the falcosecurity/rules stable set shipped with Falco 0.44.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

# Simplified from falcosecurity/rules rules/falco_rules.yaml (the fields each one tests).
STOCK_MACROS = {
    "spawned_process": "evt.type in (execve, execveat) and evt.dir = <",
    "container": "container.id != host",
    "open_read": "evt.type in (open, openat, openat2) and evt.is_open_read = true and fd.typechar = f",
    "open_write": "evt.type in (open, openat, openat2) and evt.is_open_write = true and fd.typechar = f",
    "shell_procs": "proc.name in (shell_binaries)",
    "proc_name_exists": "proc.name exists",
    "never_true": "evt.num = 0",
}
STOCK_LISTS = {
    "shell_binaries": ["ash", "bash", "csh", "ksh", "sh", "tcsh", "zsh", "dash"],
    "package_mgmt_binaries": ["dpkg", "apt", "apt-get", "yum", "rpm", "dnf", "pip", "pip3", "apk", "conda"],
}
NET_FIELDS = {"fd.net", "fd.snet", "fd.cnet"}
UNARY = {"exists"}
BINARY_WORDS = {"in", "startswith", "endswith", "contains", "icontains"}
TOKEN = re.compile(r'\s*(?:(\()|(\))|(,)|(!=|<=|>=|=|<|>)|"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^\s(),=<>!]+))')


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot read the condition at {text[pos : pos + 20]!r}")
        lp, rp, comma, op, dq, sq, word = match.groups()
        kind, value = (
            ("(", "(") if lp else (")", ")") if rp else (",", ",") if comma
            else ("op", op) if op else ("str", dq if dq is not None else sq) if (dq is not None or sq is not None)
            else ("word", word)
        )  # fmt: skip
        tokens.append((kind, value or ""))
        pos = match.end()
    return tokens


class Rules:
    """Macros and lists of a rules file (plus the stock ones), and the rules to evaluate."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.macros = {**STOCK_MACROS, **{i["macro"]: i["condition"] for i in items if "macro" in i}}
        self.lists: dict[str, list[Any]] = {
            **STOCK_LISTS,
            **{i["list"]: i["items"] for i in items if "list" in i},
        }
        self.rules = {i["rule"]: i for i in items if "rule" in i}

    def fired(self, event: Mapping[str, Any]) -> set[str]:
        return {name for name, rule in self.rules.items() if self.matches(rule["condition"], event)}

    def matches(self, condition: str, event: Mapping[str, Any]) -> bool:
        parser = _Parser(tokenize(condition), self, event)
        result = parser.expression()
        if parser.pos != len(parser.tokens):
            raise ValueError(f"trailing tokens in {condition!r}: {parser.tokens[parser.pos :]}")
        return result

    def expand(self, values: list[str]) -> list[str]:
        out: list[str] = []
        for value in values:
            if value in self.lists:
                out += self.expand([str(v) for v in self.lists[value]])
            else:
                out.append(value.strip('"'))
        return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], rules: Rules, event: Mapping[str, Any]) -> None:
        self.tokens, self.rules, self.event, self.pos = tokens, rules, event, 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expression(self) -> bool:
        return self.chain("or", self.conjunction)

    def conjunction(self) -> bool:
        return self.chain("and", self.negation)

    def chain(self, word: str, operand: Callable[[], bool]) -> bool:
        """`operand (word operand)*`, `word` being `and` or `or`. Every operand is parsed, whatever the
        result so far: the tokens must be consumed, so nothing short-circuits."""
        result = operand()
        while self.peek() == ("word", word):
            self.take()
            right = operand()
            result = (result or right) if word == "or" else (result and right)
        return result

    def negation(self) -> bool:
        if self.peek() == ("word", "not"):
            self.take()
            return not self.negation()
        return self.primary()

    def primary(self) -> bool:
        kind, value = self.take()
        if kind == "(":
            result = self.expression()
            assert self.take()[0] == ")", "unbalanced parentheses"
            return result
        if kind != "word":
            raise ValueError(f"unexpected {value!r}")
        if "." not in value:
            if value not in self.rules.macros:
                raise ValueError(f"undefined macro {value}")
            return self.rules.matches(self.rules.macros[value], self.event)
        return self.comparison(value)

    def values(self) -> list[str]:
        assert self.take()[0] == "(", "a list starts with ("
        found: list[str] = []
        while (token := self.take())[0] != ")":
            if token[0] != ",":
                found.append(token[1])
        return self.rules.expand(found)

    def comparison(self, field: str) -> bool:
        kind, op = self.take()
        actual = self.event.get(field)
        if op in UNARY:
            return actual is not None
        if op == "in":
            options = self.values()
            return actual is not None and any(_equal(field, actual, o) for o in options)
        if kind != "op" and op not in BINARY_WORDS:
            raise ValueError(f"{field}: unknown operator {op!r}")
        expected = self.take()[1]  # a value may look like an operator (evt.dir = <)
        if actual is None:
            return False
        text = str(actual)
        if op == "=":
            return _equal(field, actual, expected)
        if op == "!=":
            return not _equal(field, actual, expected)
        if op == "startswith":
            return text.startswith(expected)
        if op == "endswith":
            return text.endswith(expected)
        if op == "contains":
            return expected in text
        if op == "icontains":
            return expected.lower() in text.lower()
        if expected.lstrip("-").isdigit():
            number, limit = float(actual), float(expected)
        else:  # evt.res compares as a name (EINPROGRESS) when not a number
            return False
        return {"<": number < limit, "<=": number <= limit, ">": number > limit, ">=": number >= limit}[op]


def _equal(field: str, actual: Any, expected: str) -> bool:
    expected = expected.strip('"')
    if field in NET_FIELDS or (field in ("fd.sip", "fd.cip", "fd.ip") and "/" in expected):
        return ipaddress.ip_address(str(actual)) in ipaddress.ip_network(expected)
    return str(actual) == expected
