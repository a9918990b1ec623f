"""platform/alertmanager/config.yaml read as Alertmanager routes and inhibits alerts."""

from __future__ import annotations

import re
from typing import Any

from tests.support.obs_helpers import ALERTMANAGER_CONFIG, PROMTOOL_TESTS_DIR, load_yaml, rel

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


CONFIG: dict[str, Any] = load_yaml(ALERTMANAGER_CONFIG)


WHERE = rel(ALERTMANAGER_CONFIG)


def parse_matcher(text: str) -> tuple[str, str, str]:
    match = _MATCHER.match(text)
    if not match:
        raise ValueError(f'{WHERE}: matcher {text!r} is not `label op "value"`')
    name, op, value = match.groups()
    if op in ("=~", "!~"):
        re.compile(value)
    return name, op, value


def matches(matchers: list[str], labels: dict[str, str]) -> bool:
    for text in matchers:
        name, op, value = parse_matcher(text)
        actual = labels.get(name, "")  # a missing label matches as the empty string, as in Alertmanager
        ok = {
            "=": actual == value,
            "!=": actual != value,
            "=~": re.fullmatch(value, actual) is not None,
            "!~": re.fullmatch(value, actual) is None,
        }[op]
        if not ok:
            return False
    return True


def route_receivers(
    route: dict[str, Any], labels: dict[str, str], inherited: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    """(receiver, repeat_interval) of every route the alert is delivered through, in order."""
    settings = {**(inherited or {}), **{k: route[k] for k in ("receiver", "repeat_interval") if k in route}}
    if not matches(route.get("matchers", []), labels):
        return []
    delivered: list[tuple[str, str]] = []
    for child in route.get("routes", []):
        found = route_receivers(child, labels, settings)
        delivered += found
        if found and not child.get("continue", False):
            break
    return delivered or [(settings["receiver"], settings.get("repeat_interval", "4h"))]


def alert(alertname: str, severity: str, **labels: str) -> dict[str, str]:
    """The labels of a firing alert: the name and severity every route and inhibit rule reads, and the
    object it is about (`namespace`, `isvc`, `variant`...), which decides what it may mute."""
    return {"alertname": alertname, "severity": severity, **labels}


def inhibited(target: dict[str, str], firing: list[dict[str, str]]) -> bool:
    for rule in CONFIG["inhibit_rules"]:
        if not matches(rule["target_matchers"], target):
            continue
        for source in firing:
            if source is target or not matches(rule["source_matchers"], source):
                continue
            if all(source.get(label, "") == target.get(label, "") for label in rule.get("equal", [])):
                return True
    return False


def fired_alerts(promtool_test_file: str) -> list[dict[str, str]]:
    """The labels of each alert a promtool test file expects to fire (`exp_labels` and the alert name):
    what Alertmanager receives from those rules."""
    cases = load_yaml(PROMTOOL_TESTS_DIR / promtool_test_file)["tests"]
    return [
        {"alertname": check["alertname"], **expected["exp_labels"]}
        for case in cases
        for check in case.get("alert_rule_test", [])
        for expected in check.get("exp_alerts") or []
    ]
