"""`mlplat`: the repository's command line. Each subcommand lives in its own module.

It acts on the checkout it is run from (or `--repo PATH`), with that checkout's code: see
`mlplat.checkout` for why the code and the files must come from the same place.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mlplat import checkout, entrypoint


def parser() -> argparse.ArgumentParser:
    from mlplat import cost, demo, generate, monitor, plan, preflight, promote, serve, validate
    from mlplat.retrain import command as retrain

    root = argparse.ArgumentParser(prog="mlplat", description=__doc__)
    checkout.add_option(root, "--repo", "the checkout to act on (default: the git work tree around .)")
    subparsers = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (plan, validate, preflight, promote, generate, serve, monitor, demo, cost, retrain):
        command.register(subparsers)
    return entrypoint.without_abbreviations(root)


def _checkout_option(argv: Sequence[str]) -> Path | None:
    """`--repo`, before the command or after it (`mlplat validate --repo PATH` means the same checkout), or a
    command's `--repo-root` (what its module entry point takes): whichever names the checkout, it is the one;
    two naming different directories are refused rather than one silently chosen."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--repo", "--repo-root", dest="repo", type=Path, action="append")
    known, _ = pre.parse_known_args(argv)
    named: list[Path] = known.repo or []
    if len({p.resolve() for p in named}) > 1:
        raise checkout.NotACheckout(
            f"--repo and --repo-root name different checkouts: {', '.join(map(str, named))}"
        )
    return named[0] if named else None


# What a shell reports for a process a closed pipe killed (128 + SIGPIPE), as `yes | head -1` shows
# under `set -o pipefail`: not 1, which `mlplat validate` exits with for findings.
CLOSED_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a reader that stops early (`mlplat cost | head -1`) ends it quietly.

    Python ignores SIGPIPE, so a write to a closed pipe raises BrokenPipeError, and the flush at exit
    raises it again: the recipe of the Python docs (library/signal.rst, "Note on SIGPIPE") flushes
    inside the try, then points stdout at devnull so the shutdown flush has nowhere to fail.
    """
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return CLOSED_PIPE
    return code


def _main(argv: list[str]) -> int:
    try:
        root = checkout.find(_checkout_option(argv), Path.cwd())
        rerun = checkout.reexec_argv(root, argv)
    except checkout.NotACheckout as err:
        # Help needs no checkout: the parser answers a help request (and exits) here, and only it can
        # tell one (`validate -h`) from a path of that name (`validate -- -h`) or an option's value.
        parser().parse_args(argv)
        print(f"mlplat: {err}", file=sys.stderr)
        return 2
    if rerun is not None:
        command, env = rerun
        os.execve(command[0], command, env)
    args = parser().parse_args(argv)
    # The one checkout every command acts on, output paths included, whatever its own option defaults to.
    setattr(args, checkout.DEST, root)
    try:
        code: int = args.func(args)
    except checkout.NotACheckout as err:  # a command that reads its files from beside its own code
        print(f"mlplat {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlplat: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as err:
        # The local runtime (demo, serve, monitor: MLflow, KServe, scikit-learn, Evidently) is the
        # `runtime` extra, which pipelines leave out; say how to get it instead of a traceback.
        print(
            f"mlplat {args.command}: the Python module {err.name!r} is not installed; this command needs the "
            "local runtime: pip install -c requirements.lock -e '.[runtime]' (make setup installs it)",
            file=sys.stderr,
        )
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
