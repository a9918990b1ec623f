"""The train step's checkpoint: the fitted model's files, laid out so a file-event mirror carries them.

On the cluster an `mc mirror --watch` sidecar copies the checkpoint folder to MinIO, and the next
attempt after a spot interruption gets back whatever reached the bucket. That sidecar uploads a file
only on its own event (inotify IN_CLOSE_WRITE or IN_MOVED_TO) and skips directories (minio/mc
RELEASE.2024-11-21T17-21-54Z, the sidecar's image: cmd/client-fs_linux.go `EventTypePut`,
cmd/client-fs.go `Watch` `if i.IsDir() { continue }`), so a model built elsewhere and renamed into place
as a folder never reaches the bucket. Its recursive watch on a folder created during the run is added
only after that folder's Create event (rjeczalik/notify v0.9.3 by mc's go.mod; tree_nonrecursive.go
`internal` adds the watch and emits nothing for files already there, read at notify 128e2d9c), so files
written straight into a new folder may be missed too.

Hence: every file is written at the checkpoint folder's top level (the folder the sidecar watched from
its start; the scikit-learn models here are flat), each written once and closed (its own upload), and
the stamp last, listing each file's sha256. The mirror uploads in parallel, in any order, and an
interrupted write is still closed and uploaded, so a checkpoint counts only when the stamp is for the
same inputs and every file it lists is there with those bytes; anything else is fitted again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

STAMP = "checkpoint.json"


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def save(folder: Path, fitted_for: dict[str, Any], files: dict[str, bytes]) -> None:
    """Write `files` (name -> bytes, names without folders) into `folder`, then the stamp saying what
    they were fitted for (`fitted_for`: data hash and parameters) and each one's sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    # No stamp while the files change: a kill in between never pairs old hashes with new files.
    (folder / STAMP).unlink(missing_ok=True)
    for name, body in sorted(files.items()):
        (folder / name).write_bytes(body)
    stamp = {"fitted_for": fitted_for, "files": {name: _sha256(body) for name, body in files.items()}}
    (folder / STAMP).write_text(json.dumps(stamp, sort_keys=True))


def resume(folder: Path, fitted_for: dict[str, Any]) -> dict[str, bytes] | None:
    """The checkpoint's files when its stamp is for `fitted_for` and every file it lists is in `folder`
    with the listed bytes; None otherwise (fit again). Files the stamp does not list are ignored."""
    try:
        stamp = json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("fitted_for") != fitted_for:
        return None
    listed = stamp.get("files")
    if not isinstance(listed, dict) or not listed:
        return None
    files = {}
    for name, digest in listed.items():
        if Path(name).name != name or name == STAMP:  # read from the bucket: only files of this folder
            return None
        try:
            body = (folder / name).read_bytes()
        except OSError:
            return None
        if _sha256(body) != digest:
            return None
        files[name] = body
    return files
