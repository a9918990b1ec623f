"""The parts of `mlplat validate`: targets, rendering, schemas, Argo CD fit, capacity, output.

Each module answers one question about rendered manifests and speaks in `mlplat.findings.Finding`s,
so `mlplat/validate.py` only wires them together.
"""

from __future__ import annotations

from pathlib import Path

from infra.contract import ENVIRONMENTS as ENVIRONMENTS  # re-exported to the validation modules

REPO = Path(__file__).resolve().parent.parent.parent


class UsageError(Exception):
    """Bad input the user can fix (unknown path, bad --env, bad git ref): exit code 2, no traceback."""


def rel(path: Path, root: Path = REPO) -> str:
    """Repo-relative POSIX path when possible, so findings read the same on every machine."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def within(file: str, folder: str) -> bool:
    """Whether the repository-relative `file` is `folder` or lies under it. Public because two callers
    pin render findings to the target they belong to (validate's context apps, the GPU cost's render
    at the base), and neither may take `apps/a/overlays/dev-eu/k.yaml` for `apps/a/overlays/dev`'s."""
    return file == folder or file.startswith(folder + "/")
