"""Falco rules for ML workloads: complete rule entries, valid priorities, every macro and list defined.

Falco itself is not available offline, so references are checked here: a bare identifier in a
condition must be a macro (ours or a stock one), and an `mlplat_` name inside `in (...)` must be a list.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from obs_helpers import FALCO_RULES, load_yaml, rel

# From falco_rules.yaml shipped with Falco 0.44 (falcosecurity/rules, stable rule set). Keep this in
# step with the Falco chart pin in infra/versions.py; a name missing upstream breaks rule loading.
STOCK_MACROS = {
    "spawned_process",
    "container",
    "open_read",
    "open_write",
    "shell_procs",
    "proc_name_exists",
    "never_true",
}
STOCK_LISTS = {"package_mgmt_binaries", "shell_binaries"}
PRIORITIES = {
    "EMERGENCY",
    "ALERT",
    "CRITICAL",
    "ERROR",
    "WARNING",
    "NOTICE",
    "INFORMATIONAL",
    "INFO",
    "DEBUG",
}
REQUIRED = ("rule", "desc", "condition", "output", "priority", "tags")
OPERATORS = {
    "and", "or", "not", "in", "intersects", "pmatch", "startswith", "endswith", "contains", "icontains",
    "bcontains", "bstartswith", "glob", "iglob", "regex", "exists", "true", "false",
}  # fmt: skip

ITEMS: list[dict[str, Any]] = load_yaml(FALCO_RULES)
WHERE = rel(FALCO_RULES)
RULES = [item for item in ITEMS if "rule" in item]
MACROS = {item["macro"]: item for item in ITEMS if "macro" in item}
LISTS = {item["list"]: item for item in ITEMS if "list" in item}


def references(condition: str) -> tuple[set[str], set[str]]:
    """(bare identifiers, identifiers inside `in (...)`-style groups) of a Falco condition."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', '""', condition)
    grouped: set[str] = set()
    for group in re.findall(r"\b(?:in|intersects|pmatch)\s*\(([^()]*)\)", text):
        grouped |= {item.strip() for item in group.split(",") if re.fullmatch(r"\s*[a-z_][\w-]*\s*", item)}
    text = re.sub(r"\b(?:in|intersects|pmatch)\s*\([^()]*\)", " ", text)
    text = re.sub(r"\b(?:startswith|endswith|b?contains|icontains|bstartswith|i?glob|regex)\s+\S+", " ", text)
    text = re.sub(r"\S*[./]\S*", " ", text)  # fields (proc.name, fd.name[...]) and paths
    text = re.sub(r"[<>=!]=?\s*[\w.-]+", " ", text)  # right-hand sides of comparisons
    bare = {word for word in re.findall(r"\b[a-z_][a-z0-9_]*\b", text) if word not in OPERATORS}
    return bare, grouped


def undefined(condition: str) -> list[str]:
    bare, grouped = references(condition)
    missing = [f"macro {m}" for m in sorted(bare - set(MACROS) - STOCK_MACROS)]
    lists = {g for g in grouped if g.startswith("mlplat_") or g in STOCK_LISTS}
    missing += [f"list {g}" for g in sorted(lists - set(LISTS) - STOCK_LISTS)]
    return missing


def test_the_reference_check_can_fail() -> None:
    assert undefined("spawned_process and mlplat_nope and proc.name in (mlplat_missing, bash)") == [
        "macro mlplat_nope",
        "list mlplat_missing",
    ]
    assert undefined("open_read and fd.name startswith /mnt/models/ and evt.res = EINPROGRESS") == []


def test_there_are_rules() -> None:
    assert len(RULES) >= 5, f"{WHERE}: expected the ML workload rules"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r["rule"])
def test_rule_is_complete(rule: dict[str, Any]) -> None:
    where = f"{WHERE} rule {rule['rule']!r}"
    missing = [key for key in REQUIRED if not rule.get(key)]
    assert not missing, f"{where}: missing {missing}"
    assert str(rule["priority"]).upper() in PRIORITIES, (
        f"{where}: priority {rule['priority']} is not a Falco priority"
    )
    assert rule["rule"].startswith("mlplat "), (
        f"{where}: name our rules `mlplat ...` so alerts and metrics show them"
    )
    assert "mlplat" in rule["tags"], f"{where}: tag the rule `mlplat`"
    # Falcosidekick turns these output fields into the k8s_ns_name/k8s_pod_name labels the alerts use.
    for field in ("%k8s.ns.name", "%k8s.pod.name"):
        assert field in rule["output"], f"{where}: output must include {field}"


@pytest.mark.parametrize("item", [*RULES, *MACROS.values()], ids=lambda i: i.get("rule") or i["macro"])
def test_every_macro_and_list_is_defined(item: dict[str, Any]) -> None:
    missing = undefined(item["condition"])
    name = item.get("rule") or item.get("macro")
    assert not missing, (
        f"{WHERE} {name!r}: undefined {missing} (define it, or add a stock name with its source)"
    )


def test_every_macro_and_list_is_used() -> None:
    conditions = " ".join(item["condition"] for item in [*RULES, *MACROS.values()])
    unused = [name for name in [*MACROS, *LISTS] if not re.search(rf"\b{name}\b", conditions)]
    assert not unused, f"{WHERE}: defined but never used: {unused}"


def test_no_item_shadows_a_stock_name() -> None:
    shadowed = sorted((set(MACROS) & STOCK_MACROS) | (set(LISTS) & STOCK_LISTS))
    assert not shadowed, f"{WHERE}: {shadowed} would silently replace the stock definition"


def test_model_rules_cover_the_threats() -> None:
    text = " ".join(r["condition"] for r in RULES)
    for needle in ("shell_procs", "package_mgmt_binaries", "/mnt/models/", "mlplat_miner_binaries",
                   "mlplat_stratum_ports", "serviceaccount", ".vault-token", "mlplat_private_networks"):  # fmt: skip
        assert needle in text, f"{WHERE}: no rule uses {needle}"
