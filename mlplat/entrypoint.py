"""What a `python -m mlplat.<part>` entry point of the mlplat image does: parse, run the chosen command.

The image's entry points (`mlplat.monitoring`, `mlplat.retrain`) are not `mlplat.cli`, which imports
every command and finds its git checkout; each builds the parser of its own command and hands it here,
so both treat their arguments and exit code the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (the process's own arguments when None) and run the command it names; its exit code."""
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    code: int = args.func(args)
    return code
