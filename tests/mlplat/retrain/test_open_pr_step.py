"""The pipelines' `open-pr` step (apps/<app>/training/workflowtemplate.yaml), run as written with a
stand-in `git` that records what it is asked; GitHub's API is unreachable here (a refused proxy)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlplat.registry_gate import REPO

TOKEN = "gh-token-for-tests"  # pragma: allowlist secret (not a credential)
FAKE_GIT = """#!/bin/sh
printf '%s\\n' "$(printf '%s\\037' "$@")|${GIT_CONFIG_VALUE_0:-}" >> "$GIT_CALLS"
case "$1" in
  ls-remote) exit "$REMOTE_BRANCH_MISSING" ;;
  log) echo "iris-classifier: run version 3 in dev" ;;
esac
exit 0
"""


def _source(app: str) -> str:
    doc = yaml.safe_load((REPO / "apps" / app / "training" / "workflowtemplate.yaml").read_text())
    return str(next(t for t in doc["spec"]["templates"] if t["name"] == "open-pr")["script"]["source"])


# GitHub's answer to the pull-request call, put in place of urllib's urlopen in the step's interpreter.
GITHUB_REPLY = """import io, urllib.error, urllib.request
def urlopen(request, timeout=None):
    raise urllib.error.HTTPError(request.full_url, 422, "Unprocessable Entity", {{}}, io.BytesIO({body!r}))
urllib.request.urlopen = urlopen
"""


def _run(
    app: str, tmp_path: Path, body: str, remote_branch: bool, github_422: bytes | None = None
) -> tuple[int, list[tuple[list[str], str]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(FAKE_GIT)
    (bin_dir / "git").chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GIT_CALLS": str(calls),
        "REMOTE_BRANCH_MISSING": "0" if remote_branch else "2",
        "BRANCH": "retrain/iris-classifier-v3",
        "REPO": "https://github.com/mlplat-tests/mlplat.git",
        "BASE": "main",
        "GITHUB_TOKEN": TOKEN,
        "PR_BODY": body,
        "https_proxy": "http://127.0.0.1:9",  # refused: the script never reaches GitHub here
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    if github_422 is not None:
        (bin_dir / "sitecustomize.py").write_text(GITHUB_REPLY.format(body=github_422))
        env["PYTHONPATH"] = str(bin_dir)
    done = subprocess.run(
        [sys.executable, "-c", _source(app)], env=env, capture_output=True, text=True, timeout=60
    )
    recorded = []
    for line in calls.read_text().splitlines():
        argv, _, header = line.rpartition("|")
        recorded.append(([a for a in argv.split("\x1f") if a], header))
    return done.returncode, recorded


APPS = sorted(p.parent.parent.name for p in REPO.glob("apps/*/training/workflowtemplate.yaml"))


@pytest.mark.parametrize("app", APPS)
def test_nothing_to_propose_ends_the_run_without_pushing(app: str, tmp_path: Path) -> None:
    code, calls = _run(app, tmp_path, "nothing to propose: dev already runs iris-classifier version 3", True)
    assert code == 0 and calls == [], calls


@pytest.mark.parametrize("app", APPS)
def test_a_branch_an_earlier_run_pushed_is_not_pushed_over(app: str, tmp_path: Path) -> None:
    _, calls = _run(app, tmp_path, "branch: retrain/iris-classifier-v3\n\n## body", remote_branch=True)
    assert [argv[0] for argv, _ in calls][:1] == ["ls-remote"], calls
    assert not [argv for argv, _ in calls if "push" in argv], calls


@pytest.mark.parametrize("app", APPS)
def test_the_github_token_is_never_on_a_command_line(app: str, tmp_path: Path) -> None:
    """Any process of the pod may read /proc/<pid>/cmdline: the header goes through git's environment."""
    _, calls = _run(app, tmp_path, "branch: retrain/iris-classifier-v3\n\n## body", remote_branch=False)
    header = "AUTHORIZATION: basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    pushes = [(argv, env_header) for argv, env_header in calls if "push" in argv]
    assert len(pushes) == 1, calls
    for argv, env_header in calls:
        assert not [a for a in argv if TOKEN in a or header in a], json.dumps(argv)
        if argv[0] in ("ls-remote", "push"):  # what talks to GitHub carries the header
            assert env_header == header, argv


@pytest.mark.parametrize(
    ("reply", "succeeds"),
    [
        (b'{"errors": [{"message": "A pull request already exists for mlplat-tests:retrain/x."}]}', True),
        (b'{"errors": [{"field": "base", "code": "invalid"}]}', False),
    ],
    ids=["pull-request-exists", "base-is-not-a-branch"],
)
def test_only_an_existing_pull_request_counts_as_opened(tmp_path: Path, reply: bytes, succeeds: bool) -> None:
    """GitHub answers 422 for a pull request that exists and for a base that is no branch (a tag or a
    commit as services.argocd.target_revision): the second must fail the step, not pass it unseen."""
    code, _ = _run(
        "iris-classifier", tmp_path, "branch: retrain/iris-classifier-v3\n\n## body", False, github_422=reply
    )
    assert (code == 0) is succeeds, code


@pytest.mark.parametrize("app", APPS)
def test_a_promotion_branch_already_merged_counts_as_proposed_not_as_a_failed_step(
    app: str, tmp_path: Path
) -> None:
    """retrain/<app>-vN merged and not deleted: the branch is on GitHub (not pushed over) and GitHub answers
    the pull request 422 "No commits between": the promotion is done, not a step to retry three times."""
    reply = b'{"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": "No commits between main and retrain/iris-classifier-v3"}]}'
    code, calls = _run(
        app, tmp_path, "branch: retrain/iris-classifier-v3\n\n## body", remote_branch=True, github_422=reply
    )
    assert code == 0, code
    assert not [argv for argv, _ in calls if "push" in argv], calls
