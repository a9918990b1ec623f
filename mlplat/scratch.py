"""Where `mlplat validate` writes its short-lived files: in memory when the machine has room there.

A whole-repository run writes and deletes tens of thousands of small files (kustomize wrappers, one
file per document for checkov). On a disk filesystem that had just deleted the previous batch, each
new file cost most of a millisecond (ext4 mounted with `discard` on the development VM: 9 s of a
44 s run); on tmpfs the same files cost nothing. /dev/shm is tmpfs on Linux; a container's default
/dev/shm is only 64 MiB, so it is used only with room to spare, and the system's temporary folder
otherwise.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

MEMORY = Path("/dev/shm")
ROOM_NEEDED = 512 * 1024 * 1024  # bytes free: a 200-app scan writes ~20 MB; leave the rest to others


def folder(prefix: str, memory: Path = MEMORY) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder, in memory when `memory` is a writable folder with ROOM_NEEDED free."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=memory if _roomy(memory) else None)


def _roomy(path: Path) -> bool:
    try:
        stat = os.statvfs(path)
    except OSError:  # not there (macOS, Windows) or not readable
        return False
    return (
        path.is_dir() and os.access(path, os.W_OK | os.X_OK) and stat.f_bavail * stat.f_frsize >= ROOM_NEEDED
    )
