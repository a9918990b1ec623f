"""scripts/reference.lock.json, the pointers CI downloads ../shared/reference from, agrees with that
folder: every file listed, with its checksum, so the lock cannot rot while the tests pass beside a copy
that has moved on."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.support.fetch_reference import DOCUMENTS, LOCK, locked_files, run


def test_every_reference_file_is_locked_with_its_checksum(reference: Path) -> None:
    on_disk = {
        path.relative_to(reference).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in reference.rglob("*")
        if path.is_file() and path.relative_to(reference).as_posix() not in DOCUMENTS
    }
    locked = {entry["file"]: entry["sha256"] for entry in locked_files()}
    assert sorted(set(on_disk) - set(locked)) == [], "in ../shared/reference, not in the lock"
    assert sorted(set(locked) - set(on_disk)) == [], "in the lock, not in ../shared/reference"
    assert sorted(f for f in locked if locked[f] != on_disk[f]) == [], "checksums differ"


def test_lock_is_what_the_reference_copys_sources_give(reference: Path) -> None:
    """Repository, path and commit per file as SOURCES.md (cross-checked with index.json) states them."""
    if not (reference / "SOURCES.md").is_file():
        pytest.skip("a fetched ../shared/reference has no SOURCES.md: the lock is generated from a full copy")
    result = run("--write-lock", reference, "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def _copy_documents(reference: Path, into: Path) -> Path:
    into.mkdir()
    for name in DOCUMENTS:
        shutil.copyfile(reference / name, into / name)
    return into


def test_a_checksummed_file_without_a_sources_row_is_refused(reference: Path, tmp_path: Path) -> None:
    if not (reference / "SOURCES.md").is_file():
        pytest.skip("a fetched ../shared/reference has no SOURCES.md")
    copy = _copy_documents(reference, tmp_path / "reference")
    with (copy / "SHA256SUMS").open("a") as sums:
        sums.write(f"{'0' * 64}  crds/unlisted/extra.yaml\n")
    result = run("--write-lock", copy, "--lock", tmp_path / "lock.json")
    assert result.returncode == 2
    assert "crds/unlisted/extra.yaml has no row in SOURCES.md" in result.stderr
    assert not (tmp_path / "lock.json").exists()


def test_a_stale_lock_is_reported_by_check(reference: Path, tmp_path: Path) -> None:
    if not (reference / "SOURCES.md").is_file():
        pytest.skip("a fetched ../shared/reference has no SOURCES.md")
    stale = tmp_path / "lock.json"
    stale.write_text(LOCK.read_text(encoding="utf-8").replace(locked_files()[0]["sha256"], "f" * 64))
    result = run("--write-lock", reference, "--check", "--lock", stale)
    assert result.returncode == 1
    assert "run scripts/fetch-reference --write-lock" in result.stdout


def test_check_without_a_reference_copy_to_compare_is_a_usage_error() -> None:
    """`--check` alone used to be ignored: it downloaded instead of comparing, and said nothing."""
    result = run("--check", "--base-url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "--check goes with --write-lock DIR" in result.stderr
