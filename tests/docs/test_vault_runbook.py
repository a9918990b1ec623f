"""docs/runbooks/vault.md run as written: section 4's copy loop against the Secrets the program seeds,
then the `vault kv` commands the runbooks give, checked against what the program's VaultStaticSecrets
and workloads read. A path nothing writes leaves its VaultStaticSecret failing and its Secret seeded
forever; a placeholder written alone (`kv put` of one key) makes VSO drop the other keys, which the
workloads then cannot read."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from infra.contract import ENVIRONMENTS
from infra.services import argo_workflows, vault
from tests.support.harness import REPO, build
from tests.support.runbook import (
    KV_MOUNT,
    RUNBOOKS,
    VAULT_PATH_ANNOTATION,
    KvStore,
    run_with_fakes,
    secret_keys_read,
    seeded_secrets,
    shell_blocks,
    synced_paths,
    vault_commands,
)

# The values the program seeds where only the adopting team knows the real one.
PLACEHOLDERS = {argo_workflows.PLACEHOLDER, vault.METRICS_TOKEN_PLACEHOLDER}
DOCS = (*sorted(RUNBOOKS.glob("*.md")), REPO / "docs" / "placeholders.md")


def _documented() -> list[list[str]]:
    return vault_commands(*(doc.read_text(encoding="utf-8") for doc in DOCS))


def _copied_by_section_4(env: str, workdir: Path) -> KvStore:
    """The kv mount after section 4's loop ran against the environment's seeded Secrets."""
    (script,) = shell_blocks("vault.md", "4.")
    kv = KvStore()
    for argv, stdin in run_with_fakes(script, seeded_secrets(build(env)), workdir):
        kv.apply(argv, stdin)
    return kv


def _written_whole_from_stdin() -> set[str]:
    """Paths a runbook writes with `vault kv put -mount=kv <path> -`: every key, from a password manager."""
    return {
        argv[-2]
        for argv in _documented()
        if argv[:2] == ["kv", "put"] and f"-mount={KV_MOUNT}" in argv and argv[-1] == "-"
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_section_4_writes_every_path_a_vault_static_secret_reads(env: str, tmp_path: Path) -> None:
    plan = build(env)
    kv = _copied_by_section_4(env, tmp_path)
    seeded = {
        s["metadata"]["annotations"][VAULT_PATH_ANNOTATION].removeprefix(f"{KV_MOUNT}/"): s
        for s in seeded_secrets(plan)
    }
    unwritten = {
        f"{namespace}/{name}": path
        for (namespace, name), path in synced_paths(plan).items()
        if path not in kv.data and path not in _written_whole_from_stdin()
    }
    assert not unwritten, (
        f"{env}: no runbook step writes the Vault paths these Secrets sync from: {unwritten}"
    )
    for path, data in kv.data.items():
        assert set(data) == set(seeded[path]["data"]), f"{env}: {path} copied with keys {sorted(data)}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_placeholder_outlives_the_runbooks_and_no_key_a_workload_reads_is_lost(
    env: str, tmp_path: Path
) -> None:
    """After section 4 and every `vault kv put/patch` the runbooks give for a path it wrote, no value
    is still a seeded placeholder, and every key a workload names in a synced Secret is there."""
    plan = build(env)
    kv = _copied_by_section_4(env, tmp_path)
    for argv in _documented():
        if argv[:1] == ["kv"] and argv[1:2] in (["put"], ["patch"]) and argv[-1] != "-":
            paths = [a for a in argv[2:] if not a.startswith("-") and "=" not in a]
            if paths and paths[0] in kv.data:
                kv.apply(argv, "")
    read = secret_keys_read(plan)
    for (namespace, name), path in synced_paths(plan).items():
        if path in _written_whole_from_stdin():
            continue
        data = kv.data.get(path, {})
        left = sorted(key for key, value in data.items() if value in PLACEHOLDERS)
        assert not left, f"{env}: {path}: no runbook command replaces the placeholder of {left}"
        lost = read.get((namespace, name), set()) - set(data)
        assert not lost, f"{env}: {namespace}/{name} from {path} lacks {sorted(lost)}, which workloads read"


def _rotation_rows() -> list[str]:
    """The Vault paths (code spans of the first cell) of the rotation table of vault.md section 9."""
    text = (RUNBOOKS / "vault.md").read_text(encoding="utf-8")
    section = text[text.index("## 9. ") :]
    cells = [re.split(r"(?<!\\)\|", line)[1] for line in section.splitlines() if line.startswith("| `")]
    return [path for cell in cells for path in re.findall(r"`([^`]+)`", cell)]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_synced_credential_has_a_rotation_order(env: str) -> None:
    """Writing Vault first breaks whatever checks the old value (MinIO, PostgreSQL, MLflow): each
    path the program syncs needs its own order in section 9."""
    rows = _rotation_rows()
    missing = sorted(
        {
            path
            for path in synced_paths(build(env)).values()
            if not any(fnmatchcase(path, row) for row in rows)
        }
    )
    assert not missing, f"{env}: vault.md section 9 says nothing of how to rotate {missing}"
