"""Shared loaders for the observability tests: rule CRs, promtool, and a small PromQL tokenizer.

PrometheusRule CRs are what the cluster gets, but promtool reads plain rule files; `extract_rule_file`
turns one into the other so promtool checks exactly the groups that will be applied.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "reference"
PROMETHEUS = REPO / "platform" / "prometheus"
RULES_DIR = PROMETHEUS / "rules"
PROMTOOL_TESTS_DIR = PROMETHEUS / "tests"
CATALOG = PROMETHEUS / "metrics-catalog.yaml"
DASHBOARDS_DIR = REPO / "platform" / "grafana" / "dashboards"
ALERTMANAGER_CONFIG = REPO / "platform" / "alertmanager" / "config.yaml"
FALCO_RULES = REPO / "platform" / "falco" / "mlplat-rules.yaml"
ALERTS_DOC = REPO / "docs" / "alerts.md"
RUNBOOK_BASE = "docs/alerts.md#"


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise AssertionError(f"{rel(path)}: not valid YAML: {err}") from None


def rule_crs() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yaml"))


def iter_rules(path: Path) -> list[dict[str, Any]]:
    """Every rule (recording or alerting) of one PrometheusRule CR, in file order."""
    doc = load_yaml(path)
    return [rule for group in doc["spec"]["groups"] for rule in group.get("rules", [])]


def all_rules() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, rule) for path in rule_crs() for rule in iter_rules(path)]


def extract_rule_file(cr_path: Path, out_dir: Path) -> Path:
    """Write the CR's `spec.groups` as a plain Prometheus rule file named after the CR file."""
    doc = load_yaml(cr_path)
    out = out_dir / cr_path.name
    out.write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}, sort_keys=False))
    return out


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        raise AssertionError("promtool is not on the PATH: run `make tools` (Debian package `prometheus`)")
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, check=False)


# --- PromQL metric-name extraction -------------------------------------------------------------
# Not a parser: it removes what can hold identifiers that are not metric names (strings, label
# matchers, ranges, grouping clauses, Grafana variables), then keeps identifiers not followed by `(`
# that are not operators or keywords. Good enough for the expressions this repository writes.
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", "start", "end"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_CLAUSES = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?")


def metric_names(expr: str) -> set[str]:
    text = _STRINGS.sub('""', expr)
    text = _VARIABLES.sub("1", text)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _CLAUSES.sub(" ", text)
    text = re.sub(r"\b(group_left|group_right)\b", " ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


# Sample values for Grafana's variables, so a query can be parsed as PromQL.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def as_promql(query: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    return re.sub(r"\$\{?\w+\}?", ".*", query)  # remaining variables sit inside =~ matchers
