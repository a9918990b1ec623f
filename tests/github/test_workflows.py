""".github/workflows: valid against GitHub's workflow schema, every action pinned to a commit, and the
job graph (events, order, environments, concurrency, permissions) as the delivery design requires."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import load_environment
from infra.services import mlflow
from mlplat.generate import PROGRAM_INPUTS
from tests.support.checkout_copy import WITH_QA, add_environment_to_the_contract, checkout_copy, edit
from tests.support.delivery_helpers import (
    ENVIRONMENTS,
    REPO,
    WORKFLOWS,
    render,
    terraform,
    workflow,
    workflow_files,
)
from tests.support.iam_eval import (
    GITHUB_REPOSITORY,
    Scope,
    decide,
    role_arn,
    role_of_github_environment,
    statements,
    trust_document,
)
from tests.support.program_reads import files_the_program_opens
from tests.support.workflow_steps import jobs, matrix_values, run_step, step_env

sys.path.insert(0, str(REPO / ".github" / "scripts"))
import image_inputs
import preview_changes
import validate_summary

NAMES = (
    "pr.yml",
    "preview.yml",
    "deploy.yml",
    "drift.yml",
    "promote.yml",
    "mutation.yml",
    "monitor-image.yml",
)
PINNED = re.compile(r"^\s*-?\s*uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)(?:\s+#\s*(?P<tag>\S+))?\s*$")
# The repository's own composite actions (`uses: ./.github/actions/<name>`).
LOCAL_ACTIONS = sorted((REPO / ".github" / "actions").glob("*/action.yml"))


def _jobs(name: str) -> dict[str, dict[str, Any]]:
    return workflow(name)["jobs"]


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def _uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in _steps(job) if s.get("uses", "").split("@")[0] == action]


def _all_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(n, j, job) for n in NAMES for j, job in _jobs(n).items()]


def test_the_seven_workflows_exist() -> None:
    assert {p.name for p in workflow_files()} == set(NAMES)


def test_workflows_validate_against_the_github_schema() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", *map(str, workflow_files())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_local_actions_validate_against_the_github_action_schema() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-actions", *map(str, LOCAL_ACTIONS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert LOCAL_ACTIONS and result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    pins: dict[str, set[str]] = {}
    for path in [*workflow_files(), *LOCAL_ACTIONS]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not re.match(r"^\s*-?\s*uses:", line):
                continue
            local = re.match(r"^\s*-?\s*uses:\s*(\./\S+)\s*$", line)
            if local:
                assert (REPO / local[1] / "action.yml").is_file(), f"{path.name}:{number}: no {local[1]}"
                continue
            match = PINNED.match(line)
            assert match, f"{path.name}:{number}: cannot read `{line.strip()}`"
            assert re.fullmatch(r"[0-9a-f]{40}", match["ref"]), f"{path.name}:{number}: not a commit SHA"
            assert match["tag"] and re.fullmatch(r"v\d+\.\d+\.\d+", match["tag"]), (
                f"{path.name}:{number}: no # vX.Y.Z"
            )
            pins.setdefault(match["action"], set()).add(f"{match['ref']} {match['tag']}")
    assert {a for a, p in pins.items() if len(p) > 1} == set(), f"one action, several pins: {pins}"
    assert "actions/checkout" in pins and "pulumi/actions" in pins


def test_triggers() -> None:
    assert set(workflow("pr.yml")["on"]) == {"pull_request"}
    preview_on = workflow("preview.yml")["on"]
    assert set(preview_on) == {"pull_request"}
    assert preview_on["pull_request"]["paths"] == list(PROGRAM_INPUTS)
    deploy_on = workflow("deploy.yml")["on"]
    assert deploy_on["push"]["branches"] == ["main"]
    assert deploy_on["push"]["paths"] == list(PROGRAM_INPUTS)
    drift_on = workflow("drift.yml")["on"]
    assert set(drift_on) == {"schedule", "workflow_dispatch"} and drift_on["schedule"][0]["cron"]
    promote_on = workflow("promote.yml")["on"]
    assert set(promote_on) == {"workflow_dispatch"}
    inputs = promote_on["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"app", "from", "to", "canary"}
    assert (
        all(inputs[name]["required"] for name in ("app", "from", "to")) and not inputs["canary"]["required"]
    )
    assert inputs["from"]["options"] == list(ENVIRONMENTS[:-1])
    assert inputs["to"]["options"] == list(ENVIRONMENTS[1:])


def _path_filter(pattern: str) -> re.Pattern[str]:
    """A workflow path filter as GitHub matches it: `**` any characters, `*` any but `/`
    (https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax, "Filter pattern
    cheat sheet"); the other special characters are not used here, and refused rather than guessed."""
    assert not set("?+[]!") & set(pattern), f"{pattern}: a filter character this test does not read"
    parts = (re.escape(part).replace(r"\*", "[^/]*") for part in pattern.split("**"))
    return re.compile(".*".join(parts))


def _uncovered(paths: list[str], filters: list[str]) -> list[str]:
    compiled = [_path_filter(f) for f in filters]
    return [path for path in paths if not any(c.fullmatch(path) for c in compiled)]


def test_every_file_the_pulumi_program_opens_runs_preview_and_deploy() -> None:
    """The program reads apps/<app>/training/ (the pipelines), base/monitoring.yaml and the base
    InferenceService (the drift jobs, the log expiry): deploy.yml and preview.yml ran on infra/, platform/
    and the stacks only, so such a change reached no cluster until some unrelated deploy, unpreviewed."""
    opened = files_the_program_opens()
    assert any(path.startswith("apps/") for path in opened), "the program read no apps/ file: stale test"
    for name, event in (("preview.yml", "pull_request"), ("deploy.yml", "push")):
        filters = workflow(name)["on"][event]["paths"]
        assert _uncovered(opened, filters) == [], f"{name}: the program reads these, the filter misses them"


def test_an_overlay_added_or_removed_runs_preview_and_deploy() -> None:
    """Which environments an app deploys to is whether apps/<app>/overlays/<env>/ exists (infra/contract.py
    app_environments, read by infra/monitoring_contract.py): no file is opened, so the test above cannot
    see it; the overlay's kustomization comes and goes with the folder."""
    overlays = sorted(str(p.relative_to(REPO)) for p in REPO.glob("apps/*/overlays/*/kustomization.yaml"))
    assert overlays
    for name, event in (("preview.yml", "pull_request"), ("deploy.yml", "push")):
        assert _uncovered(overlays, workflow(name)["on"][event]["paths"]) == [], name


def test_default_permissions_are_read_or_none_and_every_job_declares_its_own() -> None:
    for name in NAMES:
        top = workflow(name).get("permissions")
        assert top in ({}, {"contents": "read"}), f"{name}: top-level permissions {top!r}"
    for name, job_id, job in _all_jobs():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{name}/{job_id}: permissions must be an explicit map, got {perms!r}"
        assert perms.get("contents") in ("read", "write"), f"{name}/{job_id}"


def test_write_scopes_only_where_needed() -> None:
    expected = {
        ("pr.yml", "checks"): {},
        ("pr.yml", "cost"): {},
        ("pr.yml", "cost-comment"): {"pull-requests": "write"},
        ("preview.yml", "environment"): {},
        ("preview.yml", "preview"): {"id-token": "write", "pull-requests": "write"},
        **{("deploy.yml", env): {"id-token": "write"} for env in ENVIRONMENTS},
        ("drift.yml", "environments"): {},
        ("drift.yml", "drift"): {"id-token": "write", "issues": "write"},
        ("promote.yml", "promote"): {"contents": "write", "id-token": "write", "pull-requests": "write"},
        ("mutation.yml", "mutation"): {},
        ("monitor-image.yml", "image"): {},
        ("monitor-image.yml", "publish"): {},  # pushes with registry credentials, no GitHub write
    }
    actual = {
        (name, job_id): {k: v for k, v in job["permissions"].items() if v == "write"}
        for name, job_id, job in _all_jobs()
    }
    assert actual == expected


def test_id_token_exactly_where_aws_credentials_are_assumed() -> None:
    for name, job_id, job in _all_jobs():
        aws_steps = _uses(job, "aws-actions/configure-aws-credentials")
        assert (job["permissions"].get("id-token") == "write") == bool(aws_steps), f"{name}/{job_id}"
        for step in aws_steps:
            role = step["with"]["role-to-assume"]
            assert re.fullmatch(r"\$\{\{ vars\.AWS_(DEPLOY|PREVIEW|DRIFT|PROMOTE)_ROLE_ARN \}\}", role), (
                f"{name}/{job_id}: {role}"
            )
            assert not {"aws-access-key-id", "aws-secret-access-key"} & set(step["with"])


def test_no_long_lived_aws_keys_and_no_expressions_inside_run_scripts() -> None:
    for path in workflow_files():
        text = path.read_text(encoding="utf-8")
        assert "AWS_SECRET_ACCESS_KEY" not in text and "aws-secret-access-key" not in text, path.name
    for name, job_id, job in _all_jobs():
        for step in _steps(job):
            # Untrusted values reach scripts through env only (GitHub's script-injection advice).
            assert "${{" not in step.get("run", ""), f"{name}/{job_id}/{step.get('name')}"


def test_checkouts_keep_no_credentials() -> None:
    for name, job_id, job in _all_jobs():
        for step in _uses(job, "actions/checkout"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{name}/{job_id}"


def test_deploy_runs_each_environment_after_the_one_before_it_each_behind_its_environment() -> None:
    jobs = _jobs("deploy.yml")
    assert list(jobs) == list(ENVIRONMENTS)
    assert [job.get("needs") for job in jobs.values()] == [None, *ENVIRONMENTS[:-1]]
    for env, job in jobs.items():
        assert job["environment"] == {"name": env}
        assert job["concurrency"] == {"group": f"pulumi-{env}", "cancel-in-progress": False}
        assert job["if"] == "github.ref == 'refs/heads/main'"
        (up,) = _uses(job, "pulumi/actions")
        assert up["with"]["command"] == "up" and up["with"]["stack-name"] == env
        assert up["with"]["policyPacks"] == "policies/pulumi"
        assert up["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
        (aws,) = _uses(job, "aws-actions/configure-aws-credentials")
        assert aws["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
        # Credentials come before the step that needs them.
        assert _steps(job).index(aws) < _steps(job).index(up)


# --- GitHub's run conditions against the roles' trust (docs/adr/0002-preview-and-secrets.md) -------------

# The git ref of a run per event (github.ref, and the `ref` claim of its OIDC token): a push names the
# pushed branch, a schedule the default branch, a manual run whatever branch or tag the person picks, a
# pull request its merge ref.
# https://docs.github.com/en/actions/reference/workflows-and-actions/events-that-trigger-workflows
REFS_BY_EVENT = {
    "push": ("refs/heads/main", "refs/heads/feature"),
    "schedule": ("refs/heads/main",),
    "workflow_dispatch": ("refs/heads/main", "refs/heads/feature", "refs/tags/v1"),
    "pull_request": ("refs/pull/7/merge",),
}
_COMPARISON = re.compile(r"([\w.]+|'[^']*')\s*(==|!=)\s*([\w.]+|'[^']*')")


def _job_runs(job: dict[str, Any], context: dict[str, str]) -> bool:
    """Evaluate a job's `if:` for one run: comparisons of contexts and literals joined by && and ||,
    which is all the workflows use; anything else fails the test instead of guessing."""
    if "if" not in job:
        return True
    condition = str(job["if"]).strip().removeprefix("${{").removesuffix("}}")

    def operand(text: str) -> str:
        return text[1:-1] if text.startswith("'") else context[text]

    def compare(m: re.Match[str]) -> str:
        return str((operand(m[1]) == operand(m[3])) == (m[2] == "=="))

    python = _COMPARISON.sub(compare, condition).replace("&&", " and ").replace("||", " or ")
    assert re.fullmatch(r"(\s|True|False|and|or|\(|\))*", python), f"cannot evaluate if: {job['if']}"
    return bool(eval(python))  # only booleans, `and`, `or` and parentheses are left (checked above)


def _github_environments(workflow_name: str, job_id: str, job: dict[str, Any]) -> list[str]:
    environment = job.get("environment")
    if environment is None:
        return []
    name = environment["name"] if isinstance(environment, dict) else environment
    if "${{ inputs.to }}" in name:  # promote.yml: one environment per choice of its `to` input
        targets = workflow(workflow_name)["on"]["workflow_dispatch"]["inputs"]["to"]["options"]
        return [name.replace("${{ inputs.to }}", target) for target in targets]
    has_stacks = "stack" in job.get("strategy", {}).get("matrix", {})
    stacks = matrix_values(workflow_name, job_id, "stack") if has_stacks else [None]
    return [name.replace("${{ matrix.stack }}", str(stack)) for stack in stacks]


def _role_trusts(repository: str, github_env: str, ref: str) -> bool:
    """Whether the bootstrap role behind a GitHub environment accepts the OIDC subject GitHub issues a
    job of that environment on that ref (subject template repo, context, ref: infra/bootstrap/github_oidc.tf)."""
    kind, env = role_of_github_environment(github_env)
    claims = {
        "token.actions.githubusercontent.com:aud": ["sts.amazonaws.com"],
        "token.actions.githubusercontent.com:sub": [f"repo:{repository}:environment:{github_env}:ref:{ref}"],
    }
    policy = statements(trust_document(kind), Scope(env))
    return decide(policy, "sts:AssumeRoleWithWebIdentity", role_arn(kind, env), claims)[0]


def test_no_job_enters_an_environment_from_a_ref_its_role_does_not_trust() -> None:
    """A manual run of drift from a branch entered `<env>-preview` and only failed at AWS
    (sts:AssumeRoleWithWebIdentity, not authorized): every job that can reach an environment from a
    ref must be one the environment's role trusts, so the rest stop in GitHub with a reason."""
    repository = GITHUB_REPOSITORY
    for name, job_id, job in _all_jobs():
        environments = _github_environments(name, job_id, job)
        # A job without an OIDC token assumes no role (image-publish's environment holds registry secrets).
        if not environments or job["permissions"].get("id-token") != "write":
            continue
        triggers = workflow(name)["on"]
        runs = []
        for event in set(triggers) & set(REFS_BY_EVENT):
            spec = triggers[event]
            branches = spec.get("branches") if isinstance(spec, dict) else None
            for ref in REFS_BY_EVENT[event]:
                if branches and ref.removeprefix("refs/heads/") not in branches:
                    continue
                context = {
                    "github.ref": ref,
                    "github.event_name": event,
                    "github.repository": repository,
                    "github.event.pull_request.head.repo.full_name": repository,
                }
                if not _job_runs(job, context):
                    continue
                runs.append(ref)
                refused = [e for e in environments if not _role_trusts(repository, e, ref)]
                assert not refused, (
                    f"{name}/{job_id}: a {event} run from {ref} enters {refused}, whose roles refuse it"
                )
        assert runs, f"{name}/{job_id}: runs for no event at all"


# --- the deploy path to private cluster endpoints (docs/adr/0003-deploy-path-to-private-endpoints.md) ---

# Workflows whose jobs call a cluster's API (pulumi up/preview/refresh of the Kubernetes resources).
CLUSTER_API_WORKFLOWS = ("deploy.yml", "preview.yml", "drift.yml")
# Workflows whose jobs reach into an environment's VPC: the cluster API, or (promote) its registry.
IN_VPC_WORKFLOWS = (*CLUSTER_API_WORKFLOWS, "promote.yml")


def _runner_label(environment: str) -> str:
    """The runs-on label of an environment's CodeBuild-hosted runner, from the project name the
    bootstrap gives it (runners.tf local.runner_name) in the label form CodeBuild requires."""
    template = re.search(r'=> "([^"]+)"', terraform()["locals"]["runner_name"])
    assert template, 'runners.tf: local.runner_name is no longer `env => "<name>"`'
    project = render(template[1].replace("${env}", environment))
    return f"codebuild-{project}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}"


def test_every_job_calling_a_cluster_api_runs_on_its_environments_in_vpc_runner() -> None:
    """GitHub-hosted runners cannot reach private endpoints (staging, prod) nor an allowlisted one."""
    for env, job in _jobs("deploy.yml").items():
        assert job["runs-on"] == _runner_label(env), f"deploy.yml/{env}: {job['runs-on']}"
    # Pull requests preview dev only (ADR 0002); drift checks every stack from main.
    for name, job_id, stacks in (
        ("preview.yml", "preview", ["dev"]),
        ("drift.yml", "drift", list(ENVIRONMENTS)),
    ):
        job = _jobs(name)[job_id]
        assert job["runs-on"] == _runner_label("${{ matrix.stack }}"), f"{name}: {job['runs-on']}"
        assert matrix_values(name, job_id, "stack") == stacks


def test_only_workflows_the_runner_webhook_admits_run_on_the_runner() -> None:
    """The webhook starts a runner for queued jobs of these workflow names only: a job of another
    workflow asking for the runner would wait forever, and pr needs no VPC."""
    admitted = re.compile(terraform()["locals"]["runner_workflows"])
    for name in NAMES:
        uses_runner = any("codebuild-" in str(job["runs-on"]) for job in _jobs(name).values())
        assert uses_runner == (name in IN_VPC_WORKFLOWS), name
        assert bool(admitted.fullmatch(workflow(name)["name"])) == uses_runner, (
            f"{name}: workflow name {workflow(name)['name']!r} vs webhook filter {admitted.pattern}"
        )


def test_the_security_doc_names_the_workflows_the_runner_webhook_admits() -> None:
    """docs/security.md's residual risk still named `^(deploy|preview|drift)$` after promote joined the
    webhook's filter: the workflow names a pull request can borrow a runner under were understated."""
    pattern = terraform()["locals"]["runner_workflows"]
    assert f"`{pattern}`" in (REPO / "docs" / "security.md").read_text(encoding="utf-8"), pattern


def test_promotion_asks_the_target_registry_from_its_vpc_with_basic_auth_from_main_only() -> None:
    """promote.yml ran on GitHub's runner (no route to a private registry) with one repository-level
    URI and token for every environment's registry, readable from any branch, and sent that token as
    Bearer to MLflow's basic auth (401). It runs on the target environment's runner, in that
    environment's main-only `<to>-promote`, with that environment's basic-auth credentials, and reaches
    MLflow's Service through a port-forward with a role the target's stack file lets do exactly that."""
    job = _jobs("promote.yml")["promote"]
    assert job["runs-on"] == _runner_label("${{ inputs.to }}")
    assert job["environment"] == "${{ inputs.to }}-promote"
    context = {"github.ref": "refs/heads/feature"}
    assert not _job_runs(job, context) and _job_runs(job, {"github.ref": "refs/heads/main"})
    (gate,) = [s for s in _steps(job) if "mlplat promote" in s.get("run", "")]
    forward = re.search(r"kubectl .*-n (\S+) port-forward svc/(\S+) (\d+):(\d+) ", gate["run"])
    assert forward, gate["run"]
    assert (forward[1], forward[2], int(forward[4])) == (
        mlflow.NAMESPACE,
        mlflow.SERVICE,
        mlflow.SERVICE_PORT,
    )
    mlflow_env = {k: v for k, v in gate["env"].items() if k.startswith("MLFLOW_")}
    assert mlflow_env == {
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{forward[3]}",
        "MLFLOW_TRACKING_USERNAME": "${{ secrets.MLFLOW_TRACKING_USERNAME }}",
        "MLFLOW_TRACKING_PASSWORD": "${{ secrets.MLFLOW_TRACKING_PASSWORD }}",
    }
    (credentials,) = _uses(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_PROMOTE_ROLE_ARN }}"
    for github_env in _github_environments("promote.yml", "promote", job):
        kind, env = role_of_github_environment(github_env)
        role_name = role_arn(kind, env).rsplit("/", 1)[1]
        granted = {arn.rsplit("/", 1)[1] for arn in load_environment(env).cluster.promote_role_arns}
        assert role_name in granted, f"{github_env}: {role_name} may not port-forward in {env}'s cluster"


def test_every_secret_a_workflow_reads_is_a_secret_of_the_main_only_environment_of_its_job() -> None:
    """PROMOTION_PR_TOKEN, which pushes branches and opens pull requests, was documented as a repository
    secret, which a workflow of any branch can read
    (https://docs.github.com/en/actions/reference/security/secure-use#use-secrets-for-sensitive-information).
    A secret is read only by a job bound to an environment that admits main only, and the runbook's
    table lists it among that environment's secrets (where the operator puts it)."""
    runbook = (REPO / "docs" / "runbooks" / "first-deployment.md").read_text(encoding="utf-8")
    rows = runbook.partition("| environment | secrets |")[2].partition("\n\n")[0]
    table = dict(re.findall(r"^\| `([^`]+)`[^|]* \| (.*) \|$", rows, re.MULTILINE))
    read = 0
    for name, job_id, job in _all_jobs():
        secrets = set(re.findall(r"secrets\.([A-Z0-9_]+)", json.dumps(job)))
        if not secrets:
            continue
        read += 1
        assert "environment" in job, f"{name}/{job_id} reads {secrets} outside an environment"
        assert not _job_runs(job, {"github.event_name": "push", "github.ref": "refs/heads/feature"})
        env = job["environment"].replace("${{ inputs.to }}", "<env>")
        listed = table.get(env, "")
        assert {s for s in secrets if f"`{s}`" not in listed} == set(), f"{name}/{job_id}: {env}: {listed!r}"
    assert read, "no job reads a secret: the regex is wrong"


def test_promote_installs_a_kubectl_the_clusters_api_server_supports() -> None:
    """kubectl is supported within one minor version of the API server (Kubernetes version skew policy):
    the runners' CodeBuild image carries kubectl 1.25.6 (aws/aws-codebuild-docker-images
    ubuntu/standard/7.0/Dockerfile), far older than the clusters."""
    (setup,) = _uses(_jobs("promote.yml")["promote"], "azure/setup-kubectl")
    minor = ".".join(setup["with"]["version"].removeprefix("v").split(".")[:2])
    for env in ENVIRONMENTS:
        assert load_environment(env).cluster.kubernetes_version == minor, env


def test_preflight_runs_with_the_deploy_role_before_pulumi_up() -> None:
    for env, job in _jobs("deploy.yml").items():
        steps = _steps(job)
        (preflight,) = [s for s in steps if "mlplat preflight" in s.get("run", "")]
        assert preflight["run"] == f".venv/bin/mlplat preflight --env {env}"
        assert preflight["env"] == {
            "PULUMI_BACKEND_URL": "${{ vars.PULUMI_BACKEND_URL }}",
            "PULUMI_SECRETS_PROVIDER": "${{ vars.PULUMI_SECRETS_PROVIDER }}",
        }
        (aws,) = _uses(job, "aws-actions/configure-aws-credentials")
        (up,) = _uses(job, "pulumi/actions")
        assert steps.index(aws) < steps.index(preflight) < steps.index(up), env


def _budget_step(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in _steps(job) if "mlplat cost" in s.get("run", "")]
    return step


def test_deploy_holds_the_budget_on_its_own_day_before_pulumi_up() -> None:
    """The budget gated pull requests only, on the day they ran: a deploy on a day the control plane
    costs more (its version's extended support) went ahead above the budget, and unprinted."""
    for env, job in _jobs("deploy.yml").items():
        steps = _steps(job)
        (up,) = _uses(job, "pulumi/actions")
        assert steps.index(_budget_step(job)) < steps.index(up), env
    # The step as the dev job runs it: the figures printed, the budget judged over a 31-day month.
    result = run_step(_budget_step(_jobs("deploy.yml")["dev"]), REPO, {})
    assert result.returncode == 0, result.stderr
    assert "mlplat cost dev (eu-west-1)" in result.stdout and "TOTAL" in result.stdout, result.stdout
    assert re.search(
        r"the maximum over a 744-hour month \(31 days\), \$[0-9,.]+, is within it", result.stdout
    )


def test_deploy_stops_at_the_budget_check_when_the_maximum_is_above_the_budget(tmp_path: Path) -> None:
    repo = checkout_copy(tmp_path / "checkout")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)  # a runner's checkout is a clone
    (repo / ".venv").symlink_to(REPO / ".venv")
    stack = repo / "environments" / "Pulumi.dev.yaml"
    [budget] = re.findall(r"\n    max_monthly_usd: [0-9]+\n", stack.read_text())
    edit(stack, budget, "\n    max_monthly_usd: 1000\n")
    result = run_step(_budget_step(_jobs("deploy.yml")["dev"]), repo, {})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "budget cost.max_monthly_usd: $1,000.00" in result.stdout and "is ABOVE it" in result.stdout


def _newest_main_step(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in _steps(job) if "git/ref/heads/main" in s.get("run", "")]
    return step


# curl standing in for the REST API's "Get a reference" of main: it answers with $MAIN_TIP, and keeps
# the URL it was asked for.
GET_MAIN_REF = (
    'for a in "$@"; do case "$a" in https://*) echo "$a" > "$ASKED";; esac; done\n'
    'printf \'{"ref": "refs/heads/main", "object": {"type": "commit", "sha": "%s"}}\' "$MAIN_TIP"'
)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_rerun_of_an_earlier_deploy_run_applies_no_older_commit(env: str, tmp_path: Path) -> None:
    """A re-run keeps its run's commit and ref (main) for 30 days, so anyone with write access could
    re-run an old deploy run and `pulumi up` code from before a fix, through the deploy role's trust and
    the environment's branch rule. A re-run now stops before any credentials unless its commit is
    main's newest; a first attempt deploys its own commit even after main moved on (a docs merge or a
    promotion starts no deploy run that would deploy it instead)."""
    job = _jobs("deploy.yml")[env]
    steps = _steps(job)
    (credentials,) = _uses(job, "aws-actions/configure-aws-credentials")
    assert steps.index(_newest_main_step(job)) < steps.index(credentials), env
    asked = tmp_path / "asked"
    env_vars = {
        "GITHUB_TOKEN": "t0ken", "API_URL": "https://api.github.com", "REPOSITORY": "example-org/mlplat",
        "ASKED": str(asked),
    }  # fmt: skip
    old, newest = "1" * 40, "2" * 40

    def attempt(number: int, deploying: str) -> subprocess.CompletedProcess[str]:
        values = env_vars | {"RUN_ATTEMPT": str(number), "DEPLOYING": deploying, "MAIN_TIP": newest}
        return run_step(_newest_main_step(job), tmp_path, values, {"curl": GET_MAIN_REF})

    rerun = attempt(2, old)
    assert rerun.returncode == 1
    assert f"re-run 2 of a run for {old}, but main is at {newest} now" in rerun.stdout, rerun.stdout
    assert asked.read_text().strip() == "https://api.github.com/repos/example-org/mlplat/git/ref/heads/main"
    rerun_of_newest = attempt(3, newest)
    assert rerun_of_newest.returncode == 0, rerun_of_newest.stdout + rerun_of_newest.stderr
    asked.unlink()
    first = attempt(1, old)
    assert first.returncode == 0, first.stdout + first.stderr
    assert not asked.exists(), "a first attempt asked for main's tip"


def test_preview_per_environment_with_policy_pack_and_pr_comment() -> None:
    job = _jobs("preview.yml")["preview"]
    # A pull request's code previews dev only (docs/adr/0002-preview-and-secrets.md; tested against the
    # preview roles' trust in test_bootstrap.py).
    assert matrix_values("preview.yml", "preview", "stack") == ["dev"]
    assert job["strategy"]["fail-fast"] is False
    assert job["environment"] == "${{ matrix.stack }}-preview"
    (preview,) = _uses(job, "pulumi/actions")
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["stack-name"] == "${{ matrix.stack }}"
    assert preview["with"]["policyPacks"] == "policies/pulumi"
    assert preview["with"]["diff"] is True and preview["with"]["comment-on-pr"] is True
    assert preview["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert preview["with"]["secrets-provider"] == "${{ vars.PULUMI_SECRETS_PROVIDER }}"
    (aws,) = _uses(job, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"


def test_concurrency_never_cancels_a_running_pulumi_update_or_drift_check() -> None:
    groups = {}
    for name, job_id, job in _all_jobs():
        if "concurrency" in job:
            groups[(name, job_id)] = job["concurrency"]
    assert all(c["cancel-in-progress"] is False for c in groups.values()), groups
    assert _jobs("drift.yml")["drift"]["concurrency"]["group"] == "drift-${{ matrix.stack }}"
    # Only the read-only PR workflows may cancel superseded runs.
    for name in ("pr.yml", "preview.yml"):
        assert workflow(name)["concurrency"]["cancel-in-progress"] is True
    assert "concurrency" not in workflow("deploy.yml")


def test_pulumi_cli_matches_the_sdk_pin() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    (sdk,) = [d.split("==")[1] for d in deps if d.startswith("pulumi==")]
    versions = {
        s["with"]["pulumi-version"] for _, _, job in _all_jobs() for s in _uses(job, "pulumi/actions")
    }
    assert versions == {sdk}


def test_drift_previews_with_refresh_and_manages_one_issue_per_stack() -> None:
    job = _jobs("drift.yml")["drift"]
    assert matrix_values("drift.yml", "drift", "stack") == list(ENVIRONMENTS)
    runs = "\n".join(s.get("run", "") for s in _steps(job))
    assert 'pulumi preview --stack "$STACK" --refresh --policy-pack policies/pulumi --json' in runs
    (script,) = _uses(job, "actions/github-script")
    code = script["with"]["script"]
    assert "issues.create(" in code and "issues.createComment(" in code and "state: 'closed'" in code
    assert "const labels = ['drift', `stack:${stack}`]" in code
    assert script["env"]["DRIFT"] == "${{ steps.compare.outputs.drift }}"


def test_drift_refreshes_with_a_role_the_cluster_lets_read_helm_release_secrets() -> None:
    """`--refresh` reads every Helm release from Helm's Secrets: with the preview role (cluster access
    without Secrets) drift failed on every stack, every run. Each stack's drift job enters a GitHub
    environment whose bootstrap role the stack file grants Secrets read (`cluster.drift_role_arns`), a
    role no pull request can assume, and assumes that environment's role variable."""
    job = _jobs("drift.yml")["drift"]
    (credentials,) = _uses(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DRIFT_ROLE_ARN }}"
    for github_env in _github_environments("drift.yml", "drift", job):
        kind, env = role_of_github_environment(github_env)
        role_name = role_arn(kind, env).rsplit("/", 1)[1]
        cluster = load_environment(env).cluster
        assert role_name in {arn.rsplit("/", 1)[1] for arn in cluster.drift_role_arns}, github_env
        assert role_name not in {arn.rsplit("/", 1)[1] for arn in cluster.viewer_role_arns}, github_env
        assert not _role_trusts(GITHUB_REPOSITORY, github_env, "refs/pull/7/merge"), github_env


def _workflows_and_contract_with_qa(tmp_path: Path) -> Path:
    """The workflows and the contract they read, with `qa` added to the contract (docs/architecture.md,
    "a new environment")."""
    repo = tmp_path / "checkout"
    shutil.copytree(WORKFLOWS, repo / ".github" / "workflows")
    (repo / "infra").mkdir()
    for name in ("__init__.py", "contract.py"):
        shutil.copy(REPO / "infra" / name, repo / "infra" / name)
    add_environment_to_the_contract(repo)
    return repo


def test_drift_checks_an_environment_added_to_the_contract(tmp_path: Path) -> None:
    """drift.yml's matrix listed dev, staging and prod: a new environment's drift was never looked for."""
    repo = _workflows_and_contract_with_qa(tmp_path)
    assert matrix_values("drift.yml", "drift", "stack", repo) == ["dev", "qa", "staging", "prod"]


def test_pull_requests_preview_the_contracts_first_environment_not_dev_by_name(tmp_path: Path) -> None:
    """preview.yml's matrix said `[dev]`: with another environment first in the contract, pull requests
    would enter `dev-preview`, a role the bootstrap then trusts from main only, and fail at AWS."""
    repo = _workflows_and_contract_with_qa(tmp_path)
    edit(repo / "infra" / "contract.py", WITH_QA, '["qa", "dev", "staging", "prod"]')
    assert matrix_values("preview.yml", "preview", "stack", repo) == ["qa"]


def test_pr_prices_an_environment_added_to_the_contract(tmp_path: Path) -> None:
    """pr.yml's cost job looped over dev, staging and prod: a new environment's cost was never shown."""
    repo = _workflows_and_contract_with_qa(tmp_path)
    job = jobs("pr.yml", repo)["cost"]
    (diff,) = [s for s in job["steps"] if s.get("id") == "diff"]
    assert "for env in $ENVIRONMENTS; do" in diff["run"]
    assert step_env(job, diff, "ENVIRONMENTS", repo).split() == ["dev", "qa", "staging", "prod"]


def test_promote_runs_the_gate_then_opens_a_pull_request_with_the_overlay() -> None:
    job = _jobs("promote.yml")["promote"]
    names = [s.get("name", s.get("uses", "")) for s in _steps(job)]
    promote = next(s for s in _steps(job) if "mlplat promote" in s.get("run", ""))
    assert (
        promote["run"].splitlines()[-1]
        == '.venv/bin/mlplat promote "$APP" --from "$FROM" --to "$TO" ${CANARY:+--canary "$CANARY"}'
    )
    (pr,) = _uses(job, "peter-evans/create-pull-request")
    assert names.index(promote["name"]) < _steps(job).index(pr)
    assert pr["with"]["add-paths"] == "apps/${{ inputs.app }}/overlays/${{ inputs.to }}/**"


@pytest.mark.parametrize("answers_after", [3, None], ids=["tunnel-up", "tunnel-never-up"])
def test_promote_runs_the_gate_only_once_the_tunnel_to_mlflow_answers(
    tmp_path: Path, answers_after: int | None
) -> None:
    """The wait for the port-forward fell through when MLflow never answered: the gate then ran and failed
    on a refused connection, and the port-forward's log, which says why, was never shown."""
    (gate,) = [s for s in _steps(_jobs("promote.yml")["promote"]) if "mlplat promote" in s.get("run", "")]
    mlplat = tmp_path / ".venv" / "bin" / "mlplat"
    mlplat.parent.mkdir(parents=True)
    mlplat.write_text('#!/bin/bash\necho "$@" > "$GATE_RAN"\n', encoding="utf-8")
    mlplat.chmod(0o755)
    env = {
        **{k: "" for k in gate["env"]},
        **{"APP": "iris", "FROM": "staging", "TO": "prod", "REGION": "eu-west-1"},
        **{"GATE_RAN": str(tmp_path / "gate-ran"), "TRIES": str(tmp_path / "tries")},
        "ANSWERS_AFTER": str(answers_after or 1000),
    }
    fakes = {
        "aws": ":",
        "kubectl": 'echo "error: lost connection to pod"; exec python3 -c "import time; time.sleep(60)"',
        "curl": 'n=$(( $(cat "$TRIES" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$TRIES"; [ "$n" -ge "$ANSWERS_AFTER" ]',
        "sleep": ":",
    }
    result = run_step(gate, tmp_path, env, fakes)
    gate_ran = tmp_path / "gate-ran"
    if answers_after:
        assert result.returncode == 0, result.stdout + result.stderr
        assert gate_ran.read_text().split() == ["promote", "iris", "--from", "staging", "--to", "prod"]
    else:
        assert result.returncode == 2 and not gate_ran.exists(), result.stdout + result.stderr
        assert "error: lost connection to pod" in result.stdout and "::error::" in result.stdout


def test_the_promotion_pull_request_names_the_commit_the_gate_judged(tmp_path: Path) -> None:
    """A commit pushed to promote/<app>-<to> after the run is not gated again (pr.yml validates without a
    registry), and the body said only that the gate had passed: a reviewer could not tell the gated
    commit from a later hand edit. The step after create-pull-request writes that action's head commit
    into the body."""
    job = _jobs("promote.yml")["promote"]
    (pr,) = _uses(job, "peter-evans/create-pull-request")
    (name,) = [s for s in _steps(job) if "/pulls/" in s.get("run", "")]
    assert _steps(job).index(name) == _steps(job).index(pr) + 1
    assert name["env"]["GATED"] == f"${{{{ steps.{pr['id']}.outputs.pull-request-head-sha }}}}"
    sha = "c0ffee" * 6 + "c0ff"
    env = {
        **{k: "" for k in name["env"]},
        **{"APP": "iris", "FROM": "staging", "TO": "prod", "GATED": sha, "NUMBER": "42"},
        **{"BRANCH": "promote/iris-prod", "API": "https://api.example", "REPOSITORY": "org/repo"},
        "SENT": str(tmp_path / "sent"),
    }
    curl = 'for a in "$@"; do case "$a" in @*) cp "${a#@}" "$SENT.json";; https://*) echo "$a" > "$SENT.url";; esac; done'
    result = run_step(name, tmp_path, env, {"curl": curl})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "sent.url").read_text().strip() == "https://api.example/repos/org/repo/pulls/42"
    body = json.loads((tmp_path / "sent.json").read_text())["body"]
    assert f"committed it as **{sha}**" in body and "`promote/iris-prod` after it is not gated" in body, body
    assert body.startswith("iris from staging to prod passed the registry gate"), body


def test_promote_checks_its_inputs_before_anything_is_checked_out() -> None:
    """The input check is a boundary: a free-text app name or an unknown pair stops the run before the
    repository's code is on the runner, and the inputs reach that shell only through env."""
    steps = _steps(_jobs("promote.yml")["promote"])
    check = steps[0]
    assert check["name"] == "Check inputs", [s.get("name") for s in steps]
    assert check["env"] == {
        "APP": "${{ inputs.app }}",
        "FROM": "${{ inputs.from }}",
        "TO": "${{ inputs.to }}",
    }
    assert _uses(_jobs("promote.yml")["promote"], "actions/checkout"), "no checkout: the test is stale"


def test_pr_runs_make_targets_and_validate_into_the_job_summary() -> None:
    runs = [s.get("run", "") for s in _steps(_jobs("pr.yml")["checks"])]
    for target in ("make lint", "make typecheck", "make pytest"):
        assert target in runs
    validate = next(r for r in runs if "mlplat validate" in r)
    assert '--changed --base "origin/${BASE_REF}" --format json' in validate
    assert '>> "$GITHUB_STEP_SUMMARY"' in validate


def test_every_variable_the_workflows_read_is_documented() -> None:
    used = set()
    for path in workflow_files():
        used |= set(re.findall(r"vars\.([A-Z0-9_]+)", path.read_text(encoding="utf-8")))
    doc = (REPO / "docs" / "runbooks" / "first-deployment.md").read_text(encoding="utf-8")
    assert used, "no vars found: the regex is wrong"
    assert {v for v in used if f"`{v}`" not in doc} == set()


# --- the helper scripts the workflows call -------------------------------------------------------------


def test_validate_summary_lists_findings_with_their_fix() -> None:
    report = {
        "findings": [
            {
                "file": "apps/m/overlays/prod/isvc.yaml",
                "line": 12,
                "env": "prod",
                "rule": "MLP001",
                "resource": "InferenceService/m",
                "message": "no GPU | limit",
                "fix": "set limits",
            }
        ],
        "waivers": [],
        "targets": ["m/prod"],
    }
    text = validate_summary.render(report, 1)
    assert "1 finding(s) in 1 changed target(s)" in text
    assert (
        "| apps/m/overlays/prod/isvc.yaml:12 | prod | MLP001 | InferenceService/m | no GPU \\| limit |"
        in text
    )
    assert "No findings" in validate_summary.render({"findings": [], "targets": []}, 0)
    assert "exit code 2" in validate_summary.render({}, 2)


def test_validate_summary_shows_warnings_that_do_not_fail_the_check() -> None:
    warning = {
        "file": "apps/llm-chat/base/inferenceservice.yaml",
        "line": 8,
        "env": "dev",
        "rule": "MLP-COST-GPU-MAX",
        "resource": "InferenceService/models-genai/llm-chat",
        "message": "up from $1,975.38",
        "fix": "have the budget owner approve it",
    }
    text = validate_summary.render({"findings": [], "warnings": [warning], "targets": ["t"]}, 0)
    assert "No findings in 1 changed target(s)" in text
    assert "1 warning(s), not failing the check" in text
    assert "| apps/llm-chat/base/inferenceservice.yaml:8 | dev | MLP-COST-GPU-MAX |" in text


def test_validate_summary_reports_unreadable_json_as_an_error(tmp_path: Path, capsys: Any) -> None:
    broken = tmp_path / "v.json"
    broken.write_text("Traceback ...", encoding="utf-8")
    validate_summary.main(["x", str(broken), "1"])
    assert "exit code 2" in capsys.readouterr().out


def test_preview_changes_tells_drift_from_no_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    drifted = {
        "changeSummary": {"same": 40, "update": 1},
        "steps": [{"op": "update", "urn": "urn:pulumi:dev::mlplat::aws:ec2/securityGroup:SecurityGroup::sg"}],
    }
    (tmp_path / "d.json").write_text(json.dumps(drifted), encoding="utf-8")
    preview_changes.main(["x", str(tmp_path / "d.json"), "dev", "https://run", str(tmp_path / "body.md")])
    body = (tmp_path / "body.md").read_text(encoding="utf-8")
    assert "| update | 1 |" in body and "update urn:pulumi:dev::mlplat" in body
    (tmp_path / "s.json").write_text(json.dumps({"changeSummary": {"same": 41}}), encoding="utf-8")
    preview_changes.main(["x", str(tmp_path / "s.json"), "dev", "https://run", str(tmp_path / "body2.md")])
    assert out.read_text(encoding="utf-8").splitlines() == ["drift=true", "drift=false"]
    with pytest.raises(ValueError, match="changeSummary"):
        preview_changes.changes({"diagnostics": [{"message": "error"}]})


def test_a_large_drift_still_fits_in_an_issue_body(tmp_path: Path) -> None:
    """The body listed every changed resource: a drift of thousands passed GitHub's 65,536-character
    limit on issue and comment bodies, the API answered 422 and the drift job failed without an issue."""
    urn = "urn:pulumi:prod::mlplat::kubernetes:core/v1:ConfigMap::models-team-{}-" + "x" * 80
    steps = [{"op": "update", "urn": urn.format(i)} for i in range(5000)]
    drifted = {"changeSummary": {"same": 3, "update": 5000}, "steps": steps}
    (tmp_path / "d.json").write_text(json.dumps(drifted), encoding="utf-8")
    preview_changes.main(["x", str(tmp_path / "d.json"), "prod", "https://run/42", str(tmp_path / "b.md")])
    body = (tmp_path / "b.md").read_text(encoding="utf-8")
    assert len(body.encode("utf-16-le")) // 2 <= 65_536
    listed = [line for line in body.splitlines() if line.startswith("- `update ")]
    assert 0 < len(listed) < 5000 and "| update | 5000 |" in body
    assert f"- … and {5000 - len(listed)} more: every one is in the run's log, https://run/42" in body


def test_workflows_dir_has_no_stray_files() -> None:
    assert {p.name for p in WORKFLOWS.iterdir()} == set(NAMES)


def test_dependabot_keeps_the_action_pins_current() -> None:
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    ecosystems = {u["package-ecosystem"]: u.get("directories", u.get("directory")) for u in config["updates"]}
    # `directory: /` reads .github/workflows only: a composite action's pins need its folder listed.
    local = [f"/{path.parent.relative_to(REPO)}" for path in LOCAL_ACTIONS]
    assert ecosystems == {"github-actions": ["/", *local], "terraform": "/infra/bootstrap"}


def _make_prerequisites() -> dict[str, list[str]]:
    """Each Makefile rule's prerequisites (`target: a b c`), variables left as written."""
    rules: dict[str, list[str]] = {}
    for line in (REPO / "Makefile").read_text(encoding="utf-8").splitlines():
        rule = re.match(r"^([^\s:=#][^:=]*):(?![=:])\s*(.*)$", line)
        if rule:
            for target in rule[1].split():
                rules.setdefault(target, []).extend(rule[2].split())
    return rules


def _reaches(rules: dict[str, list[str]], target: str, goal: str) -> bool:
    seen, todo = set(), [target]
    while todo:
        current = todo.pop()
        if current == goal:
            return True
        if current not in seen:
            seen.add(current)
            todo.extend(rules.get(current, []))
    return False


def test_every_job_running_a_make_target_that_needs_the_system_tools_installs_them_first() -> None:
    """mutation.yml ran `make mutation`, whose `setup` runs scripts/ensure-tools: ubuntu-24.04 has no
    Terraform and the runner is not root, so the weekly run stopped in setup every time."""
    rules = _make_prerequisites()
    assert _reaches(rules, "pytest", "tools"), "Makefile: `pytest` no longer reaches `tools`: stale test"
    install = "./.github/actions/system-tools"
    checked = []
    for name, job_id, job in _all_jobs():
        steps = _steps(job)
        for index, step in enumerate(steps):
            for target in re.findall(r"(?:^|[;&|]\s*)make\s+([\w-]+)", step.get("run", ""), re.MULTILINE):
                if not _reaches(rules, target, "tools"):
                    continue
                checked.append((name, target))
                assert any(s.get("uses") == install for s in steps[:index]), (
                    f"{name}/{job_id}: `make {target}` needs Terraform and promtool; no `uses: {install}` before it"
                )
    assert {("pr.yml", "pytest"), ("mutation.yml", "mutation")} <= set(checked), checked


def test_every_make_target_that_reads_the_reference_data_fetches_it_first() -> None:
    """A GitHub runner has no ../shared/reference: the tests stopped at "../shared/reference is missing"
    and validate reported every custom resource without a schema. pytest (and mutation, which runs the
    tests) and validate reach `reference`, which runs scripts/fetch-reference."""
    rules = _make_prerequisites()
    readers = ("pytest", "test", "mutation", "validate", "demo")
    assert [t for t in readers if not _reaches(rules, t, "reference")] == []
    recipe = (REPO / "Makefile").read_text(encoding="utf-8").split("\nreference:\n", 1)[1].split("\n\n")[0]
    assert "scripts/fetch-reference" in recipe


def test_pr_fetches_the_reference_data_before_the_tests_and_validate() -> None:
    """Its own step (an unreachable upstream is named as such), before `make pytest` and before the
    validate step, which calls .venv/bin/mlplat directly and so goes through no make target."""
    runs = [s.get("run", "") for s in _steps(_jobs("pr.yml")["checks"])]
    fetch = runs.index("make reference")
    assert fetch < runs.index("make pytest")
    assert fetch < next(i for i, r in enumerate(runs) if "mlplat validate" in r)


def test_the_monitor_image_is_rebuilt_when_any_file_it_copies_changes() -> None:
    """The image copies named infra/ files; one added to the Dockerfile (infra/contract.py) but not
    to the workflow's paths would change the image's code without a build. The ignore files count too
    (image_inputs.sources reads what the tag check compares)."""
    import fnmatch

    copied = image_inputs.sources((REPO / image_inputs.DOCKERFILE).read_text())
    paths = workflow("monitor-image.yml")["on"]["push"]["paths"]
    missing = [f for f in copied if not any(fnmatch.fnmatch(f, p) or p == f"{f}/**" for p in paths)]
    assert copied and not missing, missing


def test_only_a_push_to_main_reaches_the_registry_runner_and_its_secrets() -> None:
    """The registry credentials were repository secrets, which any workflow on any branch can read
    (https://docs.github.com/en/actions/reference/security/secure-use#use-secrets-for-sensitive-information):
    only the publishing job reads them, inside the environment whose branch rule admits main only, and
    only a push to main runs it, on the runner inside the platform network."""
    jobs = _jobs("monitor-image.yml")
    publish = jobs["publish"]
    assert publish["environment"] == "image-publish"
    assert publish["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert publish["runs-on"] == "${{ vars.IMAGE_PUSH_RUNNER }}"
    for event, refs in REFS_BY_EVENT.items():
        for ref in refs:
            context = {"github.event_name": event, "github.ref": ref}
            assert _job_runs(publish, context) == (event == "push" and ref == "refs/heads/main"), (event, ref)
            assert _job_runs(jobs["image"], context) == (event != "push"), (event, ref)
    readers = [j for j, job in jobs.items() if "secrets.IMAGE_REGISTRY" in json.dumps(job)]
    assert readers == ["publish"]
    assert "ubuntu" in jobs["image"]["runs-on"]
    (push,) = [s for s in _steps(publish) if s.get("name", "").startswith("Push")]
    assert "DOCKER_CONFIG=" in push["run"] and "trap " in push["run"]
    runbook = (REPO / "docs" / "runbooks" / "first-deployment.md").read_text(encoding="utf-8")
    assert "| `image-publish` | monitor-image.yml | `main` |" in runbook
    assert "IMMUTABLE" in runbook


def test_both_monitor_image_jobs_build_and_smoke_test_the_same_way() -> None:
    """The publishing job pushes what the same steps as the pull request's built and tested."""
    for job_id, job in _jobs("monitor-image.yml").items():
        assert [s for s in _steps(job) if s.get("uses") == "./.github/actions/monitor-image"], job_id


def _monitor_image_build(job_id: str, tmp_path: Path) -> list[str]:
    """The arguments the composite action's build step gives `docker` in a monitor-image.yml job: its
    inputs as the job passes them (or their defaults), the image name from its own first step."""
    action = yaml.safe_load((REPO / ".github" / "actions" / "monitor-image" / "action.yml").read_text())
    (use,) = [
        s
        for s in _steps(_jobs("monitor-image.yml")[job_id])
        if s.get("uses") == "./.github/actions/monitor-image"
    ]
    inputs = {name: str(spec.get("default", "")) for name, spec in action.get("inputs", {}).items()}
    inputs |= {name: str(value) for name, value in use.get("with", {}).items()}
    steps = {"steps": action["runs"]["steps"]}
    (build,) = [s for s in steps["steps"] if "docker build" in s["run"]]
    env = {}
    for key, value in build["env"].items():
        given = re.fullmatch(r"\$\{\{ inputs\.(?P<name>[\w-]+) \}\}", value)
        env[key] = inputs[given["name"]] if given else step_env(steps, build, key, REPO)
    recorded = tmp_path / f"{job_id}-docker-arguments"
    env |= {"GITHUB_SHA": "0" * 40, "RECORDED": str(recorded)}
    result = run_step(build, REPO, env, {"docker": 'printf "%s\\n" "$@" > "$RECORDED"'})
    assert result.returncode == 0, result.stderr
    return recorded.read_text().splitlines()


def test_every_monitor_image_build_pulls_its_base_and_the_published_one_uses_no_cache(tmp_path: Path) -> None:
    """The push runner is self-hosted and persists between jobs: BuildKit took the base image from the
    runner's image store when one was there under the tag (a job of any branch asking for the runner's
    label could have put one there), and the published image could reuse layers such a job built."""
    image = _monitor_image_build("image", tmp_path)
    publish = _monitor_image_build("publish", tmp_path)
    assert image[0] == publish[0] == "build", (image, publish)
    assert "--pull" in image and "--pull" in publish
    assert "--no-cache" in publish and "--no-cache" not in image  # a pull request's build may use the cache


def _interpolate(template: str, context: dict[str, str]) -> str:
    """A string with `${{ }}` expressions as GitHub resolves it, for the two forms the workflows use: a
    context, or `<comparison> && <context> || <context>` (GitHub's && and || give an operand's value:
    https://docs.github.com/en/actions/reference/workflows-and-actions/expressions#operators)."""

    def value(expression: str) -> str:
        choice = re.fullmatch(r"\s*(.+?)\s*&&\s*([\w.]+)\s*\|\|\s*([\w.]+)\s*", expression)
        if choice is None:
            return context[expression.strip()]
        chosen = _job_runs({"if": choice[1]}, context) and context[choice[2]]
        return chosen or context[choice[3]]

    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: value(m[1]), template)


def test_a_newer_push_never_cancels_a_waiting_publish() -> None:
    """A group holds one pending run, and a newer one replaces it even with cancel-in-progress false
    (GitHub, "Control the concurrency of workflows and jobs"): with one group for main, a push waiting
    behind another was cancelled by a third, and its bumped tag, which inference-logging names, was
    never published (ImagePullBackOff)."""
    workflow_group = workflow("monitor-image.yml")["concurrency"]["group"]
    publish = _jobs("monitor-image.yml")["publish"]["concurrency"]

    def groups(event: str, ref: str, sha: str) -> tuple[str, str]:
        context = {"github.event_name": event, "github.ref": ref, "github.sha": sha}
        return _interpolate(workflow_group, context), _interpolate(publish["group"], context)

    first, second = groups("push", "refs/heads/main", "a" * 40), groups("push", "refs/heads/main", "b" * 40)
    assert first[0] != second[0], "two pushes share a run group: the newer replaces the waiting one"
    assert first[1] == second[1] and publish["queue"] == "max" and publish["cancel-in-progress"] is False
    # A pull request's newer commit still replaces its older build.
    older, newer = (groups("pull_request", "refs/pull/7/merge", sha)[0] for sha in ("a" * 40, "b" * 40))
    assert older == newer


def test_a_pull_request_that_changes_the_image_checks_its_tag_moved() -> None:
    (check,) = [
        s for s in _steps(_jobs("monitor-image.yml")["image"]) if "require-new-tag" in s.get("run", "")
    ]
    assert check["if"] == "github.event_name == 'pull_request'"
    assert check["run"] == 'python3 .github/scripts/image_inputs.py require-new-tag "origin/${BASE_REF}"'


# --- .github/scripts/image_inputs.py, in a repository of its own ------------------------------------------


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "init.defaultBranch=main"]
    return subprocess.run([*command, *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def _commit(repo: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text, encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


def _image_repo(tmp_path: Path) -> Path:
    """A main branch with what the script reads: the Dockerfile's COPY lines, IMAGES, an app overlay."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _commit(
        repo,
        {
            "images/monitor/Dockerfile": "FROM x AS build\nCOPY --from=build /a /a\nCOPY mlplat /o/mlplat\n"
            "COPY apps /o/apps\n",
            "infra/versions.py": 'IMAGES = {"mlplat-monitor": "registry/mlplat/monitor:0.1.0"}\n',
            "mlplat/drift.py": "x = 1\n",
            "apps/m/overlays/dev/kustomization.yaml": "resources: [../../base]\n",
            "apps/m/overlays/dev/model-version.yaml": "version: 1\n",
            "docs/notes.md": "notes\n",
        },
        "base",
    )
    _git(repo, "checkout", "-q", "-b", "change")
    return repo


def _require_new_tag(repo: Path) -> subprocess.CompletedProcess[str]:
    script = REPO / ".github" / "scripts" / "image_inputs.py"
    return subprocess.run(
        [sys.executable, str(script), "require-new-tag", "main"], cwd=repo, capture_output=True, text=True
    )


def test_a_pull_request_changing_the_image_without_a_new_tag_fails(tmp_path: Path) -> None:
    """Every merge touching mlplat/ or apps/ failed on main: the tag was already published and nothing
    had asked for a new one before the merge."""
    repo = _image_repo(tmp_path)
    _commit(repo, {"mlplat/drift.py": "x = 2\n"}, "code")
    refused = _require_new_tag(repo)
    assert refused.returncode == 1 and "mlplat/drift.py" in refused.stdout, refused.stdout + refused.stderr
    assert 'IMAGES["mlplat-monitor"]' in refused.stdout
    _commit(
        repo, {"infra/versions.py": 'IMAGES = {"mlplat-monitor": "registry/mlplat/monitor:0.1.1"}\n'}, "bump"
    )
    assert _require_new_tag(repo).returncode == 0


def test_a_promotion_needs_no_new_image_but_a_new_overlay_does(tmp_path: Path) -> None:
    """A promotion rewrites the overlay's model version, which the image does not read for anything it
    does: requiring a new image for it would fail every promotion pull request. A new overlay is read."""
    repo = _image_repo(tmp_path)
    _commit(
        repo, {"apps/m/overlays/dev/model-version.yaml": "version: 2\n", "docs/notes.md": "more\n"}, "promote"
    )
    assert _require_new_tag(repo).returncode == 0
    _commit(repo, {"apps/m/overlays/prod/kustomization.yaml": "resources: [../../base]\n"}, "new overlay")
    refused = _require_new_tag(repo)
    assert refused.returncode == 1 and "apps/m/overlays/prod/kustomization.yaml" in refused.stdout


def test_a_canary_start_and_its_completion_need_no_new_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mlplat promote --canary` adds canary.yaml and canary-route.yaml to an existing overlay, completing
    or aborting it deletes them: only rewrites were excused, so every canary pull request failed the tag
    check and main's publish failed after it merged."""
    repo = _image_repo(tmp_path)
    overlay = repo / "apps" / "m" / "overlays" / "dev"
    _commit(
        repo,
        {
            "apps/m/overlays/dev/canary.yaml": "canary: 2\n",
            "apps/m/overlays/dev/canary-route.yaml": "weight: 10\n",
            "apps/m/overlays/dev/kustomization.yaml": "resources: [../../base]\npatches: [canary]\n",
        },
        "canary start",
    )
    started = _require_new_tag(repo)
    assert started.returncode == 0, started.stdout + started.stderr
    _git(repo, "checkout", "-q", "main")
    _git(repo, "merge", "-q", "--ff-only", "change")
    before = _git(repo, "rev-parse", "HEAD").strip()
    _git(repo, "checkout", "-q", "-b", "finish")
    (overlay / "canary.yaml").unlink()
    (overlay / "canary-route.yaml").unlink()
    _commit(repo, {"apps/m/overlays/dev/model-version.yaml": "version: 2\n"}, "canary complete")
    finished = _require_new_tag(repo)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    monkeypatch.chdir(repo)
    assert image_inputs.main(["x", "changed", before]) == 0
    assert capsys.readouterr().out.strip() == ""


def test_an_overlay_removed_or_added_with_a_canary_still_needs_a_new_image(tmp_path: Path) -> None:
    """The promotion files are excused only in an overlay that exists before and after: the drift job of
    an environment whose overlay comes or goes renders a different set."""
    repo = _image_repo(tmp_path)
    _git(repo, "rm", "-q", "-r", "apps/m/overlays/dev")
    _commit(repo, {"apps/m/overlays/prod/canary.yaml": "canary: 2\n"}, "overlays moved")
    refused = _require_new_tag(repo)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    for path in ("dev/kustomization.yaml", "dev/model-version.yaml", "prod/canary.yaml"):
        assert f"apps/m/overlays/{path}" in refused.stdout, path


@pytest.mark.parametrize(
    ("dockerfile", "path", "text"),
    [
        ("FROM x\nCOPY mlplat \\\n     tools/render.py /o/\n", "tools/render.py", "y = 2\n"),
        ("FROM x\ncopy mlplat /o/mlplat\n", "images/monitor/Dockerfile.dockerignore", "**/*.md\n"),
        ("FROM x\nCOPY mlplat /o/mlplat\n", ".dockerignore", "mlplat/drift.py\n"),
    ],
    ids=["continued-copy-line", "dockerfile-ignore-file", "context-ignore-file"],
)
def test_a_file_that_decides_what_the_image_copies_needs_a_new_tag(
    tmp_path: Path, dockerfile: str, path: str, text: str
) -> None:
    """A COPY continued on the next line lost every source after the break (the `\\` was read as the
    destination), and the ignore files, which decide what the build context holds, were no input."""
    repo = _image_repo(tmp_path)
    _commit(repo, {"images/monitor/Dockerfile": dockerfile, "tools/render.py": "y = 1\n"}, "dockerfile")
    _git(repo, "checkout", "-q", "main")
    _git(repo, "merge", "-q", "--ff-only", "change")
    _git(repo, "checkout", "-q", "-b", "edit")
    _commit(repo, {path: text}, "edit")
    refused = _require_new_tag(repo)
    assert refused.returncode == 1 and path in refused.stdout, refused.stdout + refused.stderr


def test_main_pushes_nothing_when_no_input_changed_since_the_previous_push(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _image_repo(tmp_path)
    monkeypatch.chdir(repo)
    before = _git(repo, "rev-parse", "HEAD").strip()
    _commit(repo, {"apps/m/overlays/dev/model-version.yaml": "version: 3\n"}, "promote")
    assert image_inputs.main(["x", "changed", before]) == 0
    assert capsys.readouterr().out.strip() == ""
    _commit(repo, {"mlplat/drift.py": "x = 3\n"}, "code")
    assert image_inputs.main(["x", "changed", before]) == 0
    assert capsys.readouterr().out.split() == ["mlplat/drift.py"]
    assert image_inputs.main(["x", "changed", "0" * 40]) == 0
    assert "every input" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("status", "stderr", "answer"),
    [
        (0, "", "published"),
        (1, "ERROR: registry/mlplat/monitor:0.1.0: not found\n", "absent"),
        (1, "ERROR: unexpected status from HEAD request to https://registry/v2/: 401 Unauthorized\n", None),
        (1, "ERROR: failed to do request: Head ...: dial tcp: lookup registry: no such host\n", None),
    ],
)
def test_registry_errors_are_not_taken_for_an_unpublished_tag(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    status: int,
    stderr: str,
    answer: str | None,
) -> None:
    """`docker manifest inspect ... 2>&1` took any failure (refused login, network) for "not published"
    and pushed."""
    docker = tmp_path / "docker"
    docker.write_text(f"#!/bin/sh\nprintf '%s' '{stderr}' >&2\nexit {status}\n", encoding="utf-8")
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{Path(sys.executable).parent}:/usr/bin:/bin")
    code = image_inputs.main(["x", "registry-state", "registry/mlplat/monitor:0.1.0"])
    out, err = capsys.readouterr()
    if answer is None:
        assert code == 1 and out == "" and "cannot tell whether" in err
    else:
        assert code == 0 and out.strip() == answer


def test_the_files_a_promotion_writes_are_the_ones_promote_writes() -> None:
    from mlplat.promote import WRITABLE

    assert set(WRITABLE) == image_inputs.PROMOTION_FILES


def test_every_job_running_the_policy_pack_first_makes_its_virtualenv() -> None:
    """The pack runs in the interpreter PulumiPolicy.yaml names, which Pulumi's analyzer launcher does not
    create: without it every `pulumi preview/up --policy-pack` stops ("doesn't appear to be a virtual
    environment")."""
    pack = REPO / "policies" / "pulumi"
    venv = yaml.safe_load((pack / "PulumiPolicy.yaml").read_text())["runtime"]["options"]["virtualenv"]
    made = f"python -m venv {(pack / venv).resolve().relative_to(REPO)}"
    running = 0
    for path in workflow_files():
        for job_id, job in workflow(path.name)["jobs"].items():
            steps = job.get("steps", [])
            uses_pack = [
                i
                for i, step in enumerate(steps)
                if "policies/pulumi" in str(step.get("with", {}).get("policyPacks", ""))
                or "--policy-pack policies/pulumi" in str(step.get("run", ""))
            ]
            if not uses_pack:
                continue
            running += 1
            creating = [i for i, step in enumerate(steps) if made in str(step.get("run", ""))]
            assert creating and creating[0] < uses_pack[0], (
                f"{path.name}/{job_id}: no `{made}` before the pack runs"
            )
    assert running >= 3, "deploy, preview and drift run the pack"
