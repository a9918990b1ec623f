"""PrometheusRule CRs: valid against the real CRD, accepted by promtool, and every alert tested and documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.obs_helpers import (
    ALERTS_DOC,
    PROMTOOL_TESTS_DIR,
    REFERENCE,
    RULES_DIR,
    RUNBOOK_BASE,
    all_rules,
    extract_rule_file,
    load_yaml,
    rel,
    rule_crs,
    run_promtool,
)

CRD = REFERENCE / "crds" / "prometheus-operator" / "monitoring.coreos.com_prometheusrules.yaml"
SEVERITIES = {"critical", "warning", "info"}
STATIC_TEAMS = {"platform", "security"}
RULE_FILES = rule_crs()
TEST_FILES = sorted(PROMTOOL_TESTS_DIR.glob("*.test.yaml"))
ALERTS = [(path, rule) for path, rule in all_rules() if "alert" in rule]


def _schema() -> dict[str, Any]:
    assert CRD.is_file(), f"{CRD} is missing: the shared reference data must sit next to the repository"
    crd = load_yaml(CRD)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def unknown_keys(instance: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Keys the schema does not declare. The CRD leaves additionalProperties unset, so Kubernetes
    would prune them silently; a typo (`anotations`) must fail here instead."""
    found: list[str] = []
    if isinstance(instance, dict) and schema.get("x-kubernetes-preserve-unknown-fields"):
        return found
    if isinstance(instance, dict) and "properties" in schema:
        for key, value in instance.items():
            if key in schema["properties"]:
                found += unknown_keys(value, schema["properties"][key], f"{path}.{key}")
            elif not isinstance(schema.get("additionalProperties"), dict):
                found.append(f"{path}.{key}")
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(instance):
            found += unknown_keys(item, schema["items"], f"{path}[{i}]")
    return found


def test_unknown_key_check_catches_a_typo() -> None:
    doc = {"spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "1", "anotations": {}}]}]}}
    assert unknown_keys(doc, _schema()) == [".spec.groups[0].rules[0].anotations"]


def test_there_are_rule_files_and_test_files() -> None:
    assert RULE_FILES, f"no PrometheusRule CRs under {rel(RULES_DIR)}"
    assert TEST_FILES, f"no promtool tests under {rel(PROMTOOL_TESTS_DIR)}"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_cr_is_valid_against_the_crd(path: Path) -> None:
    doc = load_yaml(path)
    errors = sorted(jsonschema.Draft7Validator(_schema()).iter_errors(doc), key=lambda e: list(e.path))
    messages = [f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors]
    assert not messages, f"{rel(path)} does not match the PrometheusRule CRD:\n" + "\n".join(messages)
    assert not unknown_keys(doc, _schema()), f"{rel(path)}: keys the CRD does not declare"
    assert (doc["apiVersion"], doc["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule"), rel(path)
    meta = doc["metadata"]
    assert set(meta) <= {"name", "namespace", "labels", "annotations"}, (
        f"{rel(path)}: metadata keys {set(meta)}"
    )
    assert meta.get("namespace") == "monitoring", f"{rel(path)}: metadata.namespace must be monitoring"
    assert meta.get("labels", {}).get("release") == "kube-prometheus-stack", (
        f"{rel(path)}: metadata.labels.release must be kube-prometheus-stack or Prometheus ignores the rules"
    )


def test_rule_cr_names_are_unique() -> None:
    names = [load_yaml(p)["metadata"]["name"] for p in RULE_FILES]
    assert len(names) == len(set(names)), f"duplicate PrometheusRule names: {names}"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path, tmp_path: Path) -> None:
    result = run_promtool("check", "rules", str(extract_rule_file(path, tmp_path)))
    assert result.returncode == 0, f"promtool check rules {rel(path)}:\n{result.stdout}{result.stderr}"


def _rewrite_test_file(test_file: Path, out_dir: Path) -> Path:
    """Point the test's rule_files (written relative to the test, at the CRs) to extracted rule files."""
    doc = load_yaml(test_file)
    rewritten = []
    for ref in doc.get("rule_files", []):
        cr = (test_file.parent / ref).resolve()
        assert cr.is_file(), f"{rel(test_file)}: rule_files entry {ref!r} does not exist"
        rewritten.append(str(extract_rule_file(cr, out_dir)))
    doc["rule_files"] = rewritten
    out = out_dir / test_file.name
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return out


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(test_file: Path, tmp_path: Path) -> None:
    result = run_promtool("test", "rules", str(_rewrite_test_file(test_file, tmp_path)))
    assert result.returncode == 0, f"promtool test rules {rel(test_file)}:\n{result.stdout}{result.stderr}"


def _tested_alerts() -> dict[str, dict[str, int]]:
    """alertname -> {'firing': cases expecting alerts, 'quiet': cases expecting none}."""
    seen: dict[str, dict[str, int]] = {}
    for test_file in TEST_FILES:
        for case in load_yaml(test_file).get("tests", []):
            for check in case.get("alert_rule_test", []):
                counts = seen.setdefault(check["alertname"], {"firing": 0, "quiet": 0})
                counts["firing" if check.get("exp_alerts") else "quiet"] += 1
    return seen


def _alerts_expecting_a_team() -> set[str]:
    return {
        check["alertname"]
        for test_file in TEST_FILES
        for case in load_yaml(test_file).get("tests", [])
        for check in case.get("alert_rule_test", [])
        for alert in check.get("exp_alerts") or []
        if "team" in alert.get("exp_labels", {})
    }


def test_every_alert_has_firing_and_quiet_promtool_cases() -> None:
    """Quiet means an eval where the alert must not fire: before `for`, below threshold, or scoped out
    (a test expecting only some series to fire also proves the others stay quiet)."""
    tested = _tested_alerts()
    defined = {rule["alert"] for _, rule in ALERTS}
    missing = sorted(defined - set(tested))
    assert not missing, f"alerts without a promtool test in {rel(PROMTOOL_TESTS_DIR)}: {missing}"
    unknown = sorted(set(tested) - defined)
    assert not unknown, f"promtool tests name alerts no rule defines: {unknown}"
    never_fire = sorted(name for name, c in tested.items() if not c["firing"])
    assert not never_fire, f"alerts never expected to fire in any test: {never_fire}"


@pytest.mark.parametrize(
    ("path", "rule"), ALERTS, ids=[f"{r['alert']}-{r['labels'].get('severity')}" for _, r in ALERTS]
)
def test_alert_labels_and_annotations(path: Path, rule: dict[str, Any]) -> None:
    where = f"{rel(path)} alert {rule['alert']}"
    labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
    assert labels.get("severity") in SEVERITIES, (
        f"{where}: labels.severity must be one of {sorted(SEVERITIES)}"
    )
    team = labels.get("team")
    assert team in STATIC_TEAMS or (team is None and rule["alert"] in _alerts_expecting_a_team()), (
        f"{where}: set labels.team to one of {sorted(STATIC_TEAMS)}, or carry the app's team from the "
        "expression and show it in a promtool test's exp_labels"
    )
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key, "")).strip(), f"{where}: annotations.{key} is missing"
    expected = RUNBOOK_BASE + rule["alert"].lower()
    assert annotations["runbook_url"] == expected, f"{where}: runbook_url must be {expected}"


def github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub generates for headings: lowercase, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_runbook_anchor_exists() -> None:
    assert ALERTS_DOC.is_file(), f"{rel(ALERTS_DOC)} is missing"
    anchors = github_anchors(ALERTS_DOC.read_text())
    missing = sorted({r["alert"].lower() for _, r in ALERTS} - anchors)
    assert not missing, f"{rel(ALERTS_DOC)} has no section for: {missing}"
