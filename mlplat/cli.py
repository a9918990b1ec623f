"""`mlplat`: the repository's command line. Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlplat import cost, demo, monitor, plan, preflight, promote, serve, validate

COMMANDS = (plan, validate, preflight, promote, serve, monitor, demo, cost)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mlplat", description=__doc__)
    subparsers = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("mlplat: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
