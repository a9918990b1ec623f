"""`mlplat --repo DIR` decides the checkout of every command, also when DIR holds no code of its own.

Seen before this was fixed: only `generate` read the global `--repo`; the other commands kept their own
default (the installed checkout), so `mlplat --repo EMPTY validate` judged the installed apps ("OK"),
`--repo TREE rollback` edited the installed overlays and `--repo EMPTY plan` wrote into the installed
checkout's build/plan.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from mlplat import cli

REPO = Path(__file__).resolve().parents[3]
APP = "iris-classifier"
# One line per command that acts on a checkout, each naming APP where it takes an app.
COMMANDS = [
    ["validate", "--no-policy-scan", "--env", "dev"],
    ["promote", APP, "--from", "dev", "--to", "staging", "--registry", "http://127.0.0.1:9"],
    ["rollback", APP, "--env", "dev", "--registry", "http://127.0.0.1:9"],
    ["serve", APP, "--env", "dev", "--port", "9"],
    ["monitor", "drift", APP, "--env", "dev", "--logs", "no-such-logs"],
    ["history", APP, "--registry", "http://127.0.0.1:9"],
    ["retrain", "propose", APP, "--version", "2", "--registry", "http://127.0.0.1:9"],
    ["plan", "--env", "dev", "--no-policies"],
]
# Those that look the app up in the checkout before anything else (propose asks the registry first).
ACTS_ON_APPS = [c for c in COMMANDS if APP in c and c[0] != "retrain"]


def digest(root: Path) -> dict[str, str]:
    """Every file under `root` (none when it does not exist) with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def installed_state() -> dict[str, dict[str, str]]:
    """What a command acting on the installed checkout instead would change: its app and its plans."""
    return {part: digest(REPO / part) for part in (f"apps/{APP}", "build/plan")}


def data_tree(dest: Path, *, without: str | None = None) -> Path:
    """A checkout of what validate reads (apps, stack files, platform content) and no code, so the running
    code judges it (mlplat/checkout.py); `without` one app the installed checkout has."""
    shutil.copytree(REPO / "apps", dest / "apps", ignore=shutil.ignore_patterns(without or "-"))
    for part in ("environments", "platform"):
        shutil.copytree(REPO / part, dest / part)
    return dest


@pytest.fixture(autouse=True)
def empty_model_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No model to serve or judge, so a command that wrongly went on stops at once instead of serving."""
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("MLPLAT_MODEL_STORE_ROOT", str(tmp_path / "store"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0] if c[0] != "monitor" else "monitor-drift")
def test_a_repo_that_is_no_checkout_is_a_usage_error_and_nothing_is_written(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=empty, check=True)
    before, installed = digest(empty), installed_state()
    assert cli.main(["--repo", str(empty), *command]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "not an mlplat checkout: it holds none of apps/, environments/" in err, err
    assert digest(empty) == before
    assert installed_state() == installed, "the installed checkout was written to"


@pytest.mark.parametrize("command", ACTS_ON_APPS, ids=lambda c: "-".join(c[:2]))
def test_a_repo_of_apps_and_stack_files_is_the_one_acted_on(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = data_tree(tmp_path / "tree", without=APP)  # the installed checkout has the app, this tree not
    installed = installed_state()
    assert cli.main(["--repo", str(tree), *command]) == 2
    err = capsys.readouterr().err
    assert f"unknown app {APP!r}" in err, err
    assert installed_state() == installed, "the installed checkout was written to"


@pytest.mark.parametrize("where", [["--repo", "TREE", "validate"], ["validate", "--repo", "TREE"]])
def test_validate_judges_the_repo_tree_not_the_installed_checkout(
    where: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = data_tree(tmp_path / "tree")
    overlay = tree / "apps" / APP / "overlays" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace(f"name: {APP}", "name: iris-clasifier"))
    argv = [str(tree) if a == "TREE" else a for a in where]
    assert cli.main([*argv, "--no-policy-scan", "--env", "dev", str(overlay.parent)]) == 1
    assert "MLP-PATCH-UNMATCHED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "command",
    [
        ["plan", "--env", "dev", "--no-policies"],
        ["cost", "--env", "dev"],
        ["preflight", "--env", "dev", "--backend-url", "s3://b", "--secrets-provider", "awskms://k"],
        ["demo", "--workdir", "WORKDIR"],
    ],
    ids=lambda c: c[0],
)
def test_a_command_reading_files_beside_its_code_refuses_a_tree_without_code_and_writes_nowhere(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """These read the stack files (and the demo everything) from beside the code that runs: given a tree
    of apps and stack files only, they judged the installed checkout's files instead."""
    tree = data_tree(tmp_path / "tree")
    before, installed = digest(tree), installed_state()
    argv = [str(tmp_path / "demo") if a == "WORKDIR" else a for a in command]
    assert cli.main(["--repo", str(tree), *argv]) == 2
    assert f"{tree} holds no mlplat code of its own" in capsys.readouterr().err
    assert digest(tree) == before
    assert installed_state() == installed, "the installed checkout's build/plan was written to"


def test_repo_and_a_commands_repo_root_naming_different_trees_are_refused_not_one_chosen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = data_tree(tmp_path / "first"), data_tree(tmp_path / "second")
    installed = installed_state()
    argv = ["--repo", str(first), "rollback", APP, "--env", "dev", "--repo-root", str(second)]
    assert cli.main(argv) == 2
    assert "--repo and --repo-root name different checkouts" in capsys.readouterr().err
    assert installed_state() == installed


# A promotion the working checkout has nothing to do for (dev and staging run one version): exit 0 there.
NO_OP_PROMOTION = ["promote", APP, "--from", "dev", "--to", "staging", "--registry", "http://127.0.0.1:9"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--rep", "TREE", *NO_OP_PROMOTION],
        [*NO_OP_PROMOTION, "--repo-r", "TREE"],
        ["validate", "--no-policy-scan", "--env", "dev", "--rep", "TREE"],
    ],
    ids=["rep-before-the-command", "repo-r-after-it", "validate-rep"],
)
def test_an_abbreviated_repo_option_is_refused_not_replaced_by_the_working_checkout(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse took `--rep` for `--repo`, but the checkout had been chosen before it parsed: the one
    around the working directory (this one), where promote found nothing to do and said so, exit 0."""
    tree = data_tree(tmp_path / "tree", without=APP)
    installed = installed_state()
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error
        cli.main([str(tree) if a == "TREE" else a for a in argv])
    err = capsys.readouterr().err
    # Before the command argparse reads `--rep` as unknown and the tree as the command.
    refused = ("unrecognized arguments: --re", f"invalid choice: '{tree}'")
    assert exited.value.code == 2 and any(reason in err for reason in refused), err
    assert installed_state() == installed
