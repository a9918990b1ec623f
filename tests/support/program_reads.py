"""The repository files the Pulumi program opens when it runs, to hold the workflows' path filters to them.

The program runs offline under the mock engine (mlplat/plan.py `run_program`, what `mlplat plan` runs) in
a fresh interpreter with an audit hook on `open` (https://docs.python.org/3/library/audit_events.html: the
`open` event is raised by `open()`, `io.open_code` and so every import). Only opens made while the program
runs are kept, and none of the modules the plan's own tooling (mocks, safe_yaml) imported before, so the
list is what `pulumi preview` and `pulumi up` would read; folders it only lists or tests for existence
are not in it.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.delivery_helpers import ENVIRONMENTS, REPO

_PROBE = r"""
import os, sys
import mlplat.mocks, mlplat.plan, mlplat.safe_yaml

repo = os.getcwd()
seen = set()
recording = False
# The tooling's own modules, re-read for tracebacks and frame inspection while the program runs.
tooling = {os.path.abspath(m.__file__) for m in list(sys.modules.values()) if getattr(m, "__file__", None)}


def hook(event, args):
    if recording and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if path.startswith(repo + os.sep) and os.path.isfile(path) and path not in tooling:
            seen.add(os.path.relpath(path, repo))


sys.addaudithook(hook)
for env in sys.argv[1:]:
    recording = True
    mlplat.plan.run_program(env)
    recording = False
print("\n".join(sorted(seen)))
"""


def files_the_program_opens() -> list[str]:
    """Every file git tracks (relative path, `/`-separated) that one run of the program per environment
    opens: what a pull request can change. The virtualenv, compiled modules and an editable install's
    egg-info are opened too but are nobody's change."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *ENVIRONMENTS],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    tracked = set(
        subprocess.run(
            ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    return [path for path in result.stdout.splitlines() if path in tracked]
