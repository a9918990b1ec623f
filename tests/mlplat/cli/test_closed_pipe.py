"""`mlplat ... | head`: a reader that stops early ends the command quietly, without a traceback."""

from __future__ import annotations

import subprocess
import sys

from tests.support.harness import REPO


def test_output_into_a_closed_pipe_ends_quietly_with_the_shells_sigpipe_status() -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "mlplat.cli", "validate", "--no-policy-scan", "--env", "dev", "--format", "json",
         "apps/iris-classifier"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert run.stdout is not None
    run.stdout.close()  # the reader is gone before the report is written, as `| head -c 100` is soon after
    _, err = run.communicate(timeout=300)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert run.returncode == 141, err
