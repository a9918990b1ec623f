"""Where validate writes its scratch files (mlplat/scratch.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplat import scratch


def test_scratch_files_go_to_memory_when_it_has_room(tmp_path: Path) -> None:
    """On the development VM's disk each of a whole-repository run's 10,000 scratch files cost most of
    a millisecond (9 s of 44 s); in memory they cost nothing."""
    with scratch.folder("mlplat-test-", memory=tmp_path) as folder:
        assert Path(folder).parent == tmp_path


@pytest.mark.parametrize("memory", ["missing", "a-file"])
def test_without_a_memory_folder_scratch_files_go_to_the_systems_temporary_folder(
    tmp_path: Path, memory: str
) -> None:
    (tmp_path / "a-file").write_text("")
    with scratch.folder("mlplat-test-", memory=tmp_path / memory) as folder:
        assert Path(folder).exists() and Path(folder).parent != tmp_path / memory


def test_a_small_memory_folder_is_not_filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A container's /dev/shm is 64 MiB by default: a big scan there would fail half-written."""
    monkeypatch.setattr(scratch, "ROOM_NEEDED", 1 << 62)
    with scratch.folder("mlplat-test-", memory=tmp_path) as folder:
        assert Path(folder).parent != tmp_path
