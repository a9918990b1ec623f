"""Which checkout `mlplat` acts on: the one it is run from (or `--repo`), never the one it was installed from.

Each module derives its paths from its own location (`Path(__file__)`), so the code that runs and
the files it acts on always come from the same checkout: a second clone's `mlplat validate` judges
that clone's apps with that clone's rules, and `mlplat promote` edits that clone's overlays. The
console script, though, imports the package from wherever its virtualenv was installed (a shared
`.venv`, an editable install of another clone, a non-editable install in site-packages). So the entry
point finds the checkout first (`--repo`, else `git rev-parse --show-toplevel` from the working
directory) and, when that is not the checkout the code was imported from, runs itself again with the
found checkout first on `sys.path`: the virtualenv supplies the third-party packages, the checkout
supplies mlplat, infra and every file.

The checkout found is the one every command acts on, output paths included (`root`): `cli.main`
hands it to the command, whatever the command's own option (`--repo-root`, for its module entry
point) would default to. A `--repo` tree holding apps but no code (no re-run) is judged by the code
that runs; a directory holding none of the folders commands act on is no checkout, said before
anything runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

IMPORTED_FROM = Path(__file__).resolve().parent.parent
REEXEC_MARK = "MLPLAT_CHECKOUT"  # set on the re-run: the checkout it was started for
DEST = "checkout"  # the parsed arguments' attribute holding the checkout a command acts on
# The folders the commands read or write (model apps, stack files, platform content, the bootstrap's and
# the workflows' generated files): a directory holding none of them is no checkout. Each command says
# what it lacks of the rest (validate and promote an app, generate its outputs' folders).
ACTED_ON = ("apps", "environments", "platform", "infra", ".github")


class NotACheckout(Exception):
    """No mlplat checkout to act on; the message says where it looked and what to do."""


def _is_checkout(path: Path) -> bool:
    return (path / "mlplat" / "cli.py").is_file() and (path / "Pulumi.yaml").is_file()


def find(repo: Path | None, cwd: Path) -> Path:
    """The checkout named by `--repo`, else the git work tree around `cwd`."""
    if repo is not None:
        root = (cwd / repo).resolve()
        if not root.is_dir():
            raise NotACheckout(f"--repo {repo}: {root} is not a directory")
        if not any((root / part).is_dir() for part in ACTED_ON):
            raise NotACheckout(
                f"--repo {repo}: {root} is not an mlplat checkout: it holds none of "
                f"{', '.join(part + '/' for part in ACTED_ON)}"
            )
        return root
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True, check=False
        )
    except OSError as err:
        raise NotACheckout(
            f"cannot run git to find the checkout ({err.strerror}): pass --repo PATH"
        ) from None
    found = Path(result.stdout.strip()).resolve() if result.returncode == 0 else None
    if found is None or not _is_checkout(found):
        raise NotACheckout(
            f"{cwd} is not inside an mlplat checkout: run mlplat from a clone of the repository or pass --repo PATH"
        )
    return found


def add_option(parser: argparse.ArgumentParser, flag: str, help: str) -> None:
    """A command's own checkout option, for its module entry point (`python -m mlplat.retrain` in the image,
    `python -m mlplat.serve` from the demo); under `mlplat` the checkout `find` chose replaces it (`cli.main`)."""
    parser.add_argument(flag, type=Path, dest=DEST, default=None, help=help)


def root(args: argparse.Namespace) -> Path:
    """The checkout a command acts on: the one `mlplat` found, else its entry point's option, else the folder
    above the mlplat package (the image's copy of the repository)."""
    chosen = getattr(args, DEST, None)
    return chosen.resolve() if isinstance(chosen, Path) else IMPORTED_FROM


def own_code(args: argparse.Namespace, why: str) -> Path:
    """The checkout of a command whose code reads its files from beside itself (`infra.config`'s stack
    files): it must be the one whose code runs, as a full clone is after the re-run; a `--repo` tree
    holding no code would silently be read from the installed checkout instead."""
    chosen = root(args)
    if chosen != IMPORTED_FROM:
        raise NotACheckout(
            f"{chosen} holds no mlplat code of its own (mlplat/cli.py, Pulumi.yaml): {why}; run it in a full clone"
        )
    return chosen


def reexec_argv(root: Path, argv: Sequence[str]) -> tuple[list[str], dict[str, str]] | None:
    """The command line and environment that run `argv` with `root`'s code; None when this process already
    does, or when `root` holds no code of its own (a `--repo` tree of apps and stack files only: judged by
    the code that runs)."""
    if root == IMPORTED_FROM or not _is_checkout(root):
        return None
    if os.environ.get(REEXEC_MARK) == str(root):
        # The re-run still imported mlplat from elsewhere: refuse rather than loop or act on the wrong checkout.
        raise NotACheckout(
            f"{root}: mlplat was imported from {IMPORTED_FROM} even with {root} first on sys.path"
        )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    env[REEXEC_MARK] = str(root)
    # `-P` (Python 3.11, the oldest this project runs on): `python -m` would put the working directory
    # first on sys.path, before PYTHONPATH, so run from inside another clone it would import that clone's
    # mlplat (docs.python.org/3/using/cmdline.html#cmdoption-P, "python -m module command line: Don't
    # prepend the current working directory"; PyConfig.safe_path).
    return [sys.executable, "-P", "-m", "mlplat.cli", *argv], env


def tool(venv: str, executable: str) -> Path:
    """A tool from its own virtualenv (`.venv-checkov`, `.venv-policy`): the checkout's when it has one
    (`make setup` creates them there), else the one beside the virtualenv this interpreter runs in — a
    second clone sharing the first clone's `.venv` shares its tool virtualenvs too."""
    own = IMPORTED_FROM / venv / "bin" / executable
    if own.exists():
        return own
    beside = Path(sys.prefix).parent / venv / "bin" / executable
    return beside if beside.exists() else own
