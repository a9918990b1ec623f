"""Promote and rollback under abuse: killed mid-way, run twice at once, failing disks, stray files.

The promotions here run in subprocesses with the registry gate stubbed out (the gate has its own
tests): what is under test is how the files are written, not which versions may be written.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mlplat import promote
from tests.support.canary import add_canary_by_hand

from .conftest import APP, tree_digest
from .conftest import promote_cli as cli

PROD_VERSION = f"apps/{APP}/overlays/prod/model-version.yaml"

# Runs one promotion of APP staging -> prod (argv: root, canary percent or "-", kill point, gate delay).
# Kill point N: SIGKILL itself just before the Nth rename/removal of a file in the repository, the steps
# that change what is on disk; 0 never.
PROMOTION = """
import os, signal, sys, time
from pathlib import Path
from mlplat import promote

root, percent, kill_at, delay = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
steps = 0

def hooked(real):
    def step(path, *rest, **kwargs):
        global steps
        if str(rest[0] if rest else path).startswith(str(root)):
            steps += 1
            if steps == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(path, *rest, **kwargs)
    return step

os.replace, os.unlink = hooked(os.replace), hooked(os.unlink)
promote._gate = lambda *args: time.sleep(delay)
try:
    print(promote.promote(root, "iris-classifier", "staging", "prod", "http://unused",
                          None if percent == "-" else int(percent)))
except (promote.UsageError, promote.Refused) as err:
    print(err, file=sys.stderr)
    sys.exit(2 if isinstance(err, promote.UsageError) else 1)
"""


def run_promotion(
    root: Path, tmp: Path, percent: str, kill_at: int = 0, delay: float = 0
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PROMOTION, str(root), percent, str(kill_at), str(delay)],
        env={**os.environ, "TMPDIR": str(tmp)},  # render_planned's scratch copies land in the test's tmp
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def fresh_copy(tmp_path: Path, name: str, with_canary: bool) -> Path:
    root = tmp_path / name
    shutil.copytree(promote.REPO / "apps", root / "apps")
    if with_canary:
        add_canary_by_hand(root, "2")  # staging runs v2: promoting it is the full rollout
    return root


@pytest.mark.parametrize(
    ("percent", "with_canary"),
    [("10", False), ("-", True)],
    ids=["canary-two-files", "full-rollout-three-files"],
)
def test_promotion_killed_at_any_step_leaves_the_overlay_before_or_after(
    tmp_path: Path, percent: str, with_canary: bool
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    reference = fresh_copy(tmp_path, "reference", with_canary)
    before = tree_digest(reference)
    done = run_promotion(reference, scratch, percent)
    assert done.wait(60) == 0, done.communicate()
    after = tree_digest(reference)
    assert after != before

    kill_at = 1
    while True:
        root = fresh_copy(tmp_path, f"kill{kill_at}", with_canary)
        run = run_promotion(root, scratch, percent, kill_at)
        if run.wait(60) == 0:
            assert tree_digest(root) == after
            break  # every step has been a kill point
        assert run.returncode == -signal.SIGKILL, run.communicate()
        with promote.exclusive(root, APP):  # what the next promote or rollback does first
            pass
        assert tree_digest(root) in (before, after), f"killed before step {kill_at}: a mixed overlay"
        # ... and the next run is not wedged by what the killed one left: it completes cleanly.
        again = run_promotion(root, scratch, percent)
        assert again.wait(60) == 0, again.communicate()
        assert tree_digest(root) == after, f"killed before step {kill_at}: the next run left strays"
        kill_at += 1
    assert kill_at > 3, "the kill points did not reach the file swaps"


def test_stray_staged_files_of_a_crashed_run_are_removed_by_the_next(tmp_path: Path) -> None:
    root = fresh_copy(tmp_path, "repo", with_canary=False)
    before = tree_digest(root)
    overlays = root / "apps" / APP / "overlays"
    strays = [
        overlays / "prod" / ".model-version.yaml.mlplat-tmp-k1l2m3",
        overlays / "staging" / ".canary.yaml.mlplat-tmp-n4o5p6",
        overlays / ".mlplat-promote.journal.mlplat-tmp-q7r8s9",  # a journal being written
    ]
    for stray in strays:
        stray.write_text("written by a run that was killed\n")
    message = promote.promote(root, APP, "dev", "staging", "http://127.0.0.1:9")  # same version: no-op
    assert "removed 3 staged file(s) of an interrupted run" in message
    assert tree_digest(root) == before


def test_two_promotions_of_one_app_at_once_cannot_both_succeed(tmp_path: Path) -> None:
    root = fresh_copy(tmp_path, "repo", with_canary=False)
    before = tree_digest(root)
    runs = [run_promotion(root, tmp_path, "-", delay=3) for _ in range(2)]
    codes = sorted(run.wait(60) for run in runs)
    errors = "".join(run.communicate()[1] for run in runs)
    assert codes == [0, 2], errors
    assert f"another `mlplat promote` or `mlplat rollback` of {APP} is running" in errors
    assert tree_digest(root) != before


def test_promote_and_rollback_refuse_while_the_app_is_locked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = fresh_copy(tmp_path, "repo", with_canary=True)
    before = tree_digest(root)
    with promote.exclusive(root, APP):  # another process holding the lock (flock is per open file)
        code = cli("rollback", APP, "--env", "prod", "--repo-root", str(root))
    assert code == 2
    assert "is running in this checkout" in capsys.readouterr().err
    assert tree_digest(root) == before


def test_unwritable_overlay_exits_2_with_the_reason_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = fresh_copy(tmp_path, "repo", with_canary=False)
    (root / "apps" / APP / "overlays" / "prod" / ".canary.yaml.mlplat-tmp-left").write_text("staged\n")

    def read_only(path: Path, missing_ok: bool = False) -> None:  # a read-only checkout (we run as root)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(promote.Path, "unlink", read_only)
    assert cli("rollback", APP, "--env", "prod", "--repo-root", str(root)) == 2
    assert "Permission denied" in capsys.readouterr().err


def plant_journal(root: Path, mode: int) -> bytes:
    """A journal in the app's overlays that would restore prod's model-version.yaml to an ungated version
    with `mode`; the bytes it would restore."""
    ungated = (root / PROD_VERSION).read_bytes().replace(b'model-version: "1"', b'model-version: "9"')
    entry = {"path": "prod/model-version.yaml", "original": base64.b64encode(ungated).decode(), "mode": mode}
    (root / "apps" / APP / "overlays" / promote.JOURNAL).write_text(json.dumps({"files": [entry]}))
    return ungated


def commit_all(root: Path, message: str) -> None:
    """`root` made a git checkout of everything in it."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-qm", message]):
        subprocess.run([*git, *step], cwd=root, check=True)


def test_journal_committed_into_apps_is_not_restored_by_an_unrelated_promote(tmp_path: Path) -> None:
    root = fresh_copy(tmp_path, "repo", with_canary=False)
    plant_journal(root, 0o100644)
    commit_all(root, "a journal rides along")
    before = (root / PROD_VERSION).read_bytes()
    message = promote.promote(root, APP, "dev", "staging", "http://127.0.0.1:9")  # same version: no-op
    assert "interrupted" not in message
    assert (root / PROD_VERSION).read_bytes() == before


def test_a_checkout_git_cannot_read_is_refused_not_taken_for_a_tree_outside_git(tmp_path: Path) -> None:
    """When git failed on a checkout (its ownership "dubious", its gitdir gone), promote fell back to a
    journal in apps/, so a committed one restored an ungated prod version."""
    root = fresh_copy(tmp_path, "repo", with_canary=False)
    ungated = plant_journal(root, 0o100644)
    (root / ".git").write_text(f"gitdir: {tmp_path / 'gone'}\n", encoding="utf-8")  # git refuses it
    before = (root / PROD_VERSION).read_bytes()
    with pytest.raises(promote.UsageError, match="git cannot read the checkout"):
        promote.promote(root, APP, "dev", "staging", "http://127.0.0.1:9")
    assert (root / PROD_VERSION).read_bytes() == before != ungated


def test_journal_restores_no_mode_bits_git_would_not_record(tmp_path: Path) -> None:
    root = fresh_copy(tmp_path, "repo", with_canary=False)  # outside git: the journal lives in overlays/
    ungated = plant_journal(root, 0o104777)  # setuid, world-writable
    message = promote.promote(root, APP, "dev", "staging", "http://127.0.0.1:9")
    assert "restored apps/iris-classifier/overlays/prod/model-version.yaml" in message
    assert (root / PROD_VERSION).read_bytes() == ungated
    assert stat.S_IMODE((root / PROD_VERSION).stat().st_mode) == 0o755


def test_in_a_git_checkout_a_killed_promotion_is_restored_from_the_journal_in_the_git_directory(
    tmp_path: Path,
) -> None:
    root = fresh_copy(tmp_path, "repo", with_canary=False)
    commit_all(root, "the checkout")
    before = tree_digest(root / "apps")
    run = run_promotion(root, tmp_path, "-", kill_at=3)  # the journal and model-version.yaml replaced
    assert run.wait(60) == -signal.SIGKILL, run.communicate()
    assert tree_digest(root / "apps") != before
    assert not list((root / "apps").rglob(f"*{promote.JOURNAL}*")), "the journal was written into apps/"
    with promote.exclusive(root, APP) as recovered:
        assert recovered is not None and "restored" in recovered
    assert tree_digest(root / "apps") == before
