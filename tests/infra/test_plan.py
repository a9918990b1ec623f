"""The offline plan: every environment plans, the file has the documented shape, secrets are redacted."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.config import ENVIRONMENTS
from mlplat.plan import REDACTED, redact
from tests.support.program_refusal import program_refusal

PlanFor = Callable[[str], dict[str, Any]]
RESOURCE_KEYS = {"urn", "type", "name", "parent", "inputs", "protect", "retainOnDelete", "dependsOn"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_plan_has_the_documented_shape(offline_plan: PlanFor, env: str) -> None:
    plan = offline_plan(env)
    assert plan["stack"] == env and plan["project"] == "mlplat" and plan["kind"] == "offline-plan"
    assert plan["resources"], "an offline plan without resources"
    for resource in plan["resources"]:
        missing = RESOURCE_KEYS - set(resource)
        assert not missing, f"{resource['urn']}: missing {missing}"
    assert plan["violations"] == []
    assert plan["outputs"]["kubeconfig"] == REDACTED


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_secret_reaches_the_plan_file(offline_plan: PlanFor, env: str) -> None:
    text = json.dumps(offline_plan(env))
    # Mocked random passwords and kubeconfig credentials look like this; none may appear.
    assert "mock-" not in text and "certificate-authority-data" not in text


def test_redact_replaces_secrets_and_resource_references() -> None:
    secret = {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",  # pragma: allowlist secret
        "value": "hunter2",
    }
    ref = {
        "4dabf18193072939515e22adb298388d": "5cf8f73096256a8f31e491e813e4eb8e",  # pragma: allowlist secret
        "urn": "urn:x",
    }
    assert redact({"a": [secret, {"b": ref}], "c": 1}) == {
        "a": [REDACTED, {"b": {"resourceRef": "urn:x"}}],
        "c": 1,
    }


def test_plan_command_prints_an_offline_summary(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev.json"
    result = subprocess.run(
        [sys.executable, "-m", "mlplat.cli", "plan", "--env", "dev", "--no-policies", "--out", str(out)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OFFLINE PLAN (mock engine, no cloud) mlplat/dev")
    assert "by component:" in result.stdout and out.is_file()


def test_unknown_environment_is_a_usage_error(repo_root: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlplat.cli", "plan", "--env", "qa"],
        cwd=repo_root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "invalid choice: 'qa'" in result.stderr


def _plan_with_stack_dir(repo_root: Path, stack_dir: Path, env: str) -> subprocess.CompletedProcess[str]:
    """`mlplat plan --env ENV` with the stack files read from `stack_dir` instead of environments/."""
    code = (
        "import sys\nfrom pathlib import Path\nimport infra.config\n"
        f"infra.config.STACK_DIR = Path({str(stack_dir)!r})\n"
        "from mlplat.cli import main\n"
        f"sys.exit(main(['plan', '--env', {env!r}, '--no-policies', '--out', {str(stack_dir / 'plan.json')!r}]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("env", "old", "new", "message"),
    [
        pytest.param(
            "dev",
            "  mlplat:protect_stateful: false\n",
            "  mlplat:protect_stateful: false\n  mlplat:protect_stateful: true\n",
            "duplicate key 'mlplat:protect_stateful'",
            id="duplicate-key",
        ),
        pytest.param(
            "dev", "single\n", "per_zone\n", "mlplat:network.nat_gateways: Input should be", id="bad-value"
        ),
        pytest.param(
            "prod",
            "mlplat:environment: prod",
            "mlplat:environment: dev",
            "environment: says 'dev' in stack 'prod'",
            id="prod-stack-declaring-dev",
        ),
    ],
)
def test_plan_config_error_is_one_message_and_exit_2(
    repo_root: Path, tmp_path: Path, env: str, old: str, new: str, message: str
) -> None:
    """A config error is a usage error (2), never a traceback or a policy verdict (1)."""
    source = (repo_root / "environments" / f"Pulumi.{env}.yaml").read_text()
    assert old in source
    (tmp_path / f"Pulumi.{env}.yaml").write_text(source.replace(old, new, 1))
    result = _plan_with_stack_dir(repo_root, tmp_path, env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("mlplat plan: invalid stack configuration in "), result.stderr
    assert message in result.stderr, result.stderr


def test_program_refuses_a_stack_file_with_duplicate_keys(repo_root: Path, tmp_path: Path) -> None:
    """Under `pulumi up` the engine parses the file itself; the program still holds it to our rules."""
    source = (repo_root / "environments" / "Pulumi.dev.yaml").read_text()
    (tmp_path / "Pulumi.dev.yaml").write_text(source + "  mlplat:environment: prod\n")
    setup = (
        "from pathlib import Path\nimport infra.config\n"
        f"infra.config.STACK_DIR = Path({str(tmp_path)!r})\n"
        "values = infra.config.read_stack_file(Path('environments/Pulumi.dev.yaml'))"
    )
    outcome = program_refusal(repo_root, "dev", setup)
    assert outcome.resources == 0
    assert "duplicate key 'mlplat:environment'" in outcome.error


# A policy pack that fails, or prints more than its JSON, in place of policies/pulumi/offline.py.
BROKEN_PACKS = {
    "fails": "import sys\nsys.exit('the pack raised')\n",
    "prints before its JSON": "print('debug: loading policies')\nprint('[]')\n",
}


@pytest.mark.parametrize("pack", BROKEN_PACKS)
def test_a_plan_the_policy_pack_could_not_judge_never_reads_as_no_violations(
    repo_root: Path, tmp_path: Path, pack: str
) -> None:
    """`mlplat plan` wrote the plan with "violations": [] before the pack ran: a pack that failed left a
    file claiming no violations (which `mlplat cost --plan` then priced), replacing the last good one,
    and a pack that printed a line before its JSON ended in a JSONDecodeError traceback, exit 1 (which
    means "mandatory violations"). Now the earlier plan stays as it was and the run is a clear exit 2."""
    runner = tmp_path / "pack.py"
    runner.write_text(BROKEN_PACKS[pack], encoding="utf-8")
    out = tmp_path / "dev.json"
    out.write_text('{"earlier": "plan"}\n', encoding="utf-8")
    driver = (
        "import sys\nimport mlplat.plan\nfrom mlplat.cli import main\n"
        f"mlplat.plan.POLICY_RUNNER = mlplat.plan.Path({str(runner)!r})\n"
        f"sys.exit(main(['plan', '--env', 'dev', '--out', {str(out)!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", driver], cwd=repo_root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("mlplat plan: policy pack"), (
        result.stderr
    )
    assert out.read_text(encoding="utf-8") == '{"earlier": "plan"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.json", "pack.py"], "a temporary file was left"


def test_a_plan_out_through_a_link_is_written_through_and_a_new_file_gets_a_plain_files_mode(
    repo_root: Path, tmp_path: Path
) -> None:
    """Put in place by a sibling's rename, `--out` replaced a symbolic link with a file (as root, even
    /dev/stdout), and every plan file came out mode 0600 whatever the umask."""
    target = tmp_path / "elsewhere.json"
    target.write_text("{}\n", encoding="utf-8")
    link = tmp_path / "dev.json"
    link.symlink_to(target)
    fresh = tmp_path / "new" / "dev.json"
    for out in (link, fresh):
        result = subprocess.run(
            [sys.executable, "-c", "import os, sys; os.umask(0o022); from mlplat.cli import main; sys.exit(main())",
             "plan", "--env", "dev", "--no-policies", "--out", str(out)],
            cwd=repo_root, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert link.is_symlink() and json.loads(target.read_text(encoding="utf-8"))["stack"] == "dev"
    assert oct(fresh.stat().st_mode & 0o777) == oct(0o644)
