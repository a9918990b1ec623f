"""Run the real Pulumi program under the mock engine in a fresh interpreter and read how it refused.

Why a fresh interpreter: these tests patch modules (`infra.config.STACK_DIR`, a loader) before the program is
imported, and a refusal must reach the caller the way the engine shows it (a `RunError` message, never a
traceback) without the patches or the mock engine's recording leaking into the tests that run after.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# `setup` runs first and must bind `values`, the stack configuration the program is started with.
_SCRIPT = """\
import json, pulumi
from mlplat import mocks
{setup}
recording = mocks.start({env!r}, values)
from infra import program
try:
    mocks.run(program.main)
except pulumi.RunError as err:
    print(json.dumps({{'error': str(err), 'resources': len(recording.resources)}}))
"""


@dataclass(frozen=True)
class Refusal:
    """What the program said when it refused, and how many resources it had declared by then."""

    error: str
    resources: int


def program_refusal(repo: Path, env: str, setup: str) -> Refusal:
    """Start the program of the checkout at `repo` as stack `env` after `setup`; it must refuse cleanly.

    Raises AssertionError (with the output) when the interpreter printed a traceback or the program ran
    to the end without a `RunError`.
    """
    code = _SCRIPT.format(setup=setup, env=env)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=False
    )
    if "Traceback" in result.stderr:
        raise AssertionError(f"the program raised instead of refusing:\n{result.stderr[-2000:]}")
    if not result.stdout.strip():
        raise AssertionError(f"the program did not refuse:\n{result.stderr[-2000:]}")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    return Refusal(error=outcome["error"], resources=outcome["resources"])
