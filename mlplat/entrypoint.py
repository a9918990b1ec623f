"""What a `python -m mlplat.<part>` entry point of the mlplat image does: parse, run the chosen command.

The image's entry points (`mlplat.monitoring`, `mlplat.retrain`) are not `mlplat.cli`, which imports
every command and finds its git checkout; each builds the parser of its own command and hands it here,
so both treat their arguments and exit code the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def without_abbreviations(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`parser` and every subcommand's parser under it, taking options only as spelled out.

    argparse accepts any unambiguous prefix of an option (`allow_abbrev`, default True; Python docs,
    argparse "Argument abbreviations (prefix matching)"), per parser. `mlplat` decides its checkout from
    `--repo`/`--repo-root` before parsing (`cli._checkout_option`, which cannot know every command's
    options), so `--rep DIR` or `--repo-r DIR` was taken as the option by the command and silently
    replaced by the checkout around the working directory. A subparser is a parser of its own, with its
    own `allow_abbrev`: each one is set here (the attribute is read at parse time, `_parse_optional`).
    """
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                without_abbreviations(subparser)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (the process's own arguments when None) and run the command it names; its exit code."""
    args = without_abbreviations(parser).parse_args(sys.argv[1:] if argv is None else argv)
    code: int = args.func(args)
    return code
