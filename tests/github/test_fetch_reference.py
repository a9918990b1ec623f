"""scripts/fetch-reference against a loopback server laid out as raw.githubusercontent.com serves
(<repo>/<commit>/<path>), built from ../shared/reference: it writes exactly the locked bytes, fetches
nothing already in place, and refuses (exit 2, naming the file) a corrupted file or a 404."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.fetch_reference import locked_files, run

# Three locked files from three repositories, one with a path that differs from its destination.
SAMPLE = (
    "crds/kserve/serving.kserve.io_inferenceservices.yaml",
    "charts/vault/values.yaml",
    "pulumi/project.json",
)


@dataclass
class Upstream:
    """The served tree, its base URL, the paths requested so far, and a status to answer a path's first
    request with (a transient upstream failure)."""

    root: Path
    base_url: str
    requested: list[str] = field(default_factory=list)
    fail_once: dict[str, int] = field(default_factory=dict)

    def file_of(self, entry: dict[str, str]) -> Path:
        return self.root / self.url_path(entry)

    def url_path(self, entry: dict[str, str]) -> str:
        return f"{entry['repo']}/{entry['commit']}/{entry['path']}"


@pytest.fixture
def entries() -> list[dict[str, str]]:
    by_file = {entry["file"]: entry for entry in locked_files()}
    return [by_file[name] for name in SAMPLE]


@pytest.fixture
def lock(tmp_path: Path, entries: list[dict[str, str]]) -> Path:
    path = tmp_path / "lock.json"
    path.write_text(json.dumps({"files": entries}))
    return path


@pytest.fixture
def upstream(tmp_path: Path, reference: Path, entries: list[dict[str, str]]) -> Iterator[Upstream]:
    served = Upstream(tmp_path / "upstream", "")
    for entry in entries:
        target = served.file_of(entry)
        target.parent.mkdir(parents=True)
        target.write_bytes((reference / entry["file"]).read_bytes())

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requested.append(self.path)
            status = served.fail_once.pop(self.path.lstrip("/"), None)
            if status is None:
                super().do_GET()
            else:
                self.send_error(status)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(served.root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _fetch(lock: Path, dest: Path, upstream: Upstream) -> Any:
    return run("--lock", lock, "--dest", dest, "--base-url", upstream.base_url, "--timeout", "10")


def test_fetch_writes_the_locked_bytes_under_their_destination(
    tmp_path: Path, reference: Path, lock: Path, upstream: Upstream
) -> None:
    dest = tmp_path / "shared" / "reference"
    result = _fetch(lock, dest, upstream)
    assert result.returncode == 0, result.stderr
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == sorted(SAMPLE)
    for name in SAMPLE:
        assert (dest / name).read_bytes() == (reference / name).read_bytes(), name


def test_files_already_in_place_are_not_downloaded_again(
    tmp_path: Path, lock: Path, upstream: Upstream
) -> None:
    dest = tmp_path / "reference"
    assert _fetch(lock, dest, upstream).returncode == 0
    upstream.requested.clear()
    result = _fetch(lock, dest, upstream)
    assert result.returncode == 0, result.stderr
    assert upstream.requested == []
    assert "0 downloaded, 3 already there" in result.stdout


def test_a_local_file_with_another_checksum_is_replaced(
    tmp_path: Path, reference: Path, lock: Path, upstream: Upstream
) -> None:
    dest = tmp_path / "reference"
    edited = dest / SAMPLE[1]
    edited.parent.mkdir(parents=True)
    edited.write_text("server:\n  enabled: false\n")
    assert _fetch(lock, dest, upstream).returncode == 0
    assert edited.read_bytes() == (reference / SAMPLE[1]).read_bytes()


def test_a_corrupted_upstream_file_is_refused_naming_it_and_not_written(
    tmp_path: Path, entries: list[dict[str, str]], lock: Path, upstream: Upstream
) -> None:
    corrupted = upstream.file_of(entries[1])
    corrupted.write_bytes(corrupted.read_bytes() + b"\n# appended on the way\n")
    dest = tmp_path / "reference"
    result = _fetch(lock, dest, upstream)
    assert result.returncode == 2
    assert f"{SAMPLE[1]}: " in result.stderr and f"the lock says {entries[1]['sha256']}" in result.stderr
    # The file before it was written; nothing of the refused one, not even a temporary file.
    assert [p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()] == [SAMPLE[0]]


def test_a_missing_upstream_file_is_refused_naming_it(
    tmp_path: Path, entries: list[dict[str, str]], lock: Path, upstream: Upstream
) -> None:
    upstream.file_of(entries[2]).unlink()
    result = _fetch(lock, tmp_path / "reference", upstream)
    assert result.returncode == 2
    assert f"{SAMPLE[2]}: cannot download it: " in result.stderr and "HTTP 404" in result.stderr
    assert "Traceback" not in result.stderr
    # A wrong pointer, not a transient failure: asked once.
    assert upstream.requested.count("/" + upstream.url_path(entries[2])) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_a_transient_upstream_failure_is_tried_again(
    tmp_path: Path,
    reference: Path,
    entries: list[dict[str, str]],
    lock: Path,
    upstream: Upstream,
    status: int,
) -> None:
    """One PR check downloads every locked file: one rate limit or server error should not fail it."""
    upstream.fail_once[upstream.url_path(entries[0])] = status
    dest = tmp_path / "reference"
    result = _fetch(lock, dest, upstream)
    assert result.returncode == 0, result.stderr
    assert upstream.requested.count("/" + upstream.url_path(entries[0])) == 2
    assert (dest / SAMPLE[0]).read_bytes() == (reference / SAMPLE[0]).read_bytes()


def test_a_lock_entry_outside_the_reference_folder_is_refused(
    tmp_path: Path, entries: list[dict[str, str]], upstream: Upstream
) -> None:
    lock = tmp_path / "lock.json"
    lock.write_text(json.dumps({"files": [{**entries[0], "file": "../outside.yaml"}]}))
    result = _fetch(lock, tmp_path / "reference", upstream)
    assert result.returncode == 2
    assert "files[0]: '../outside.yaml' is not a plain relative path" in result.stderr
    assert upstream.requested == [] and not (tmp_path / "outside.yaml").exists()


def test_a_local_file_that_moved_on_and_cannot_be_fetched_says_so(
    tmp_path: Path, entries: list[dict[str, str]], lock: Path, upstream: Upstream
) -> None:
    """A reference copy newer than the lock, offline: the refusal says the lock may be the stale side."""
    dest = tmp_path / "reference"
    newer = dest / SAMPLE[2]
    newer.parent.mkdir(parents=True)
    newer.write_text("{}\n")
    upstream.file_of(entries[2]).unlink()
    result = _fetch(lock, dest, upstream)
    assert result.returncode == 2
    assert f"{SAMPLE[2]}: cannot download it: " in result.stderr
    assert (
        "not the lock's: if that copy is the newer one, rewrite the lock from it (--write-lock)"
        in result.stderr
    )
    assert newer.read_text() == "{}\n"
