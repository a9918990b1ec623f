"""A mirror driven by file events, like the train step's `mc mirror --watch` sidecar: what reaches the bucket.

mc RELEASE.2024-11-21T17-21-54Z (the sidecar's image) uploads a path on inotify IN_CLOSE_WRITE or
IN_MOVED_TO (cmd/client-fs_linux.go `EventTypePut`), after a stat: a path gone by then is skipped, and so
is a directory (cmd/client-fs.go `Watch`). Folders created while the step runs are not watched here: mc's
recursive watch reaches them only after their Create event (rjeczalik/notify, v0.9.3 by mc's go.mod,
tree_nonrecursive.go `internal`, read at 128e2d9c), so this is its strictest case. Linux only (libc's inotify), as CI and the VM are.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

IN_CLOSE_WRITE = 0x00000008  # linux/inotify.h
IN_MOVED_TO = 0x00000080
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then len bytes of name


@contextmanager
def mirrored(source: Path, target: Path) -> Iterator[None]:
    """Watch `source` and the folders in it now while the block runs; then copy into `target`, file by
    file, every path a put event named that is still a file, as the sidecar uploads it."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    try:
        watched = {}
        for folder in [source, *(p for p in source.rglob("*") if p.is_dir())]:
            wd = libc.inotify_add_watch(fd, bytes(folder), IN_CLOSE_WRITE | IN_MOVED_TO)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder}")
            watched[wd] = folder
        yield
        for wd, name in _events(fd):
            path = watched[wd] / name
            if path.is_file():
                copy = target / path.relative_to(source)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, copy)
    finally:
        os.close(fd)


def _events(fd: int) -> Iterator[tuple[int, str]]:
    """(watch descriptor, name) of every queued event."""
    queued = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        if not chunk:
            break
        queued += chunk
    offset = 0
    while offset < len(queued):
        wd, _, _, length = EVENT.unpack_from(queued, offset)
        start = offset + EVENT.size
        yield wd, os.fsdecode(queued[start : start + length].rstrip(b"\0"))
        offset = start + length
