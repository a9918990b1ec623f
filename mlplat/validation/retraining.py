"""The retraining pipelines (`apps/<app>/training/`, README "Retraining"): every step that runs the
mlplat image runs `python -m mlplat.retrain <step> <app>` (the image's `mlplat retrain`) with the
flags that step takes, and every pipeline holds its app's mutex.

A WorkflowTemplate's commands are strings the Argo CRD cannot check: a misspelled flag or step would
pass the schema and fail the first run, at whatever hour its alert or schedule fires. Here it fails
the pull request, naming the template and the flag.

The flags are the `mlplat retrain` command line the image runs (README "Retraining"); every flag
takes a value. `--repo-root` (every step: the checkout to read and commit in) is common to all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from infra.contract import (
    ARTIFACT_REPOSITORIES_CONFIGMAP,
    WORKFLOW_ARTIFACTS_SECRET,
    workflow_artifacts_secret,
)
from infra.gitops import git_artifacts
from mlplat.findings import Finding, RenderedDoc
from mlplat.validation.targets import TRAINING

STEP_RULE = "MLP-RETRAIN-STEP"
MUTEX_RULE = "MLP-RETRAIN-MUTEX"
PARAMETER_RULE = "MLP-RETRAIN-PARAMETER"
ARTIFACTS_RULE = "MLP-RETRAIN-ARTIFACTS"
REPOSITORY_RULE = "MLP-RETRAIN-REPOSITORY"
TRIGGERS = ("drift", "schedule", "manual")
# The workflow parameters a step holding a credential may read: the run's lineage, recorded as tags
# and never used as an address (`params` is parsed to the one integer `variant`, steps.parse_params). Whoever may create a Workflow (the Sensor from an alert's labels, a
# person through the UI or `argo submit -p`) sets every parameter: the controller's `Secure`
# restriction still lets a Workflow that references a template override `arguments`
# (argoproj/argo-workflows v4.0.6 workflow/util/merge.go allowedUserOverrideFields), so a
# parameter that named the repository the GitHub token is sent to, or the data the artifact
# credentials read, would hand those credentials to the submitter's choice.
LINEAGE_PARAMETERS = ("trigger", "triggered-by", "params")
# Every way a template names a workflow parameter: `{{workflow.parameters.x}}`, an expression's
# `workflow.parameters['x']`, or all of them at once (`workflow.parameters.json`, no name: refused).
_WORKFLOW_PARAMETER = re.compile(r"workflow\.parameters(?:\.([\w-]+)|\[\s*['\"]([\w-]+)['\"]\s*\])?")


class Step:
    def __init__(self, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
        self.required = required
        self.optional = (*optional, "--repo-root")


STEPS = {
    "fetch": Step(("--source", "--out")),
    "train": Step(("--data", "--out"), ("--checkpoint-dir", "--params")),
    "evaluate": Step(("--model", "--data", "--out")),
    "register": Step(
        ("--model", "--data", "--evaluation", "--tracking-uri", "--trigger", "--triggered-by"),
        ("--code-commit", "--image-digest", "--parent-run"),
    ),
    "propose": Step(("--version",), ("--env", "--branch", "--registry")),
}


def check(docs: list[RenderedDoc]) -> list[Finding]:
    """Findings for the manifests of retraining targets (the step rules: their WorkflowTemplates)."""
    findings: list[Finding] = []
    for doc in docs:
        match = TRAINING.match(doc.target)
        if match is None:
            continue
        findings += [
            Finding(doc.source_file, doc.ref, REPOSITORY_RULE, message, fix, doc.env, path=path)
            for path, message, fix in _repository_problems(doc.doc)
        ]
        if doc.doc.get("kind") != "WorkflowTemplate":
            continue
        spec = doc.doc.get("spec")
        spec = spec if isinstance(spec, dict) else {}
        findings += [
            Finding(doc.source_file, doc.ref, STEP_RULE, message, fix, doc.env, path=path)
            for path, message, fix in _step_problems(spec, match["app"])
        ]
        findings += [
            Finding(doc.source_file, doc.ref, MUTEX_RULE, message, fix, doc.env, path="spec/synchronization")
            for message, fix in _mutex_problems(spec, match["app"])
        ]
        findings += [
            Finding(doc.source_file, doc.ref, PARAMETER_RULE, message, fix, doc.env, path=path)
            for path, message, fix in _parameter_problems(spec)
        ]
        findings += [
            Finding(doc.source_file, doc.ref, ARTIFACTS_RULE, message, fix, doc.env, path=path)
            for path, message, fix in _artifact_problems(spec, match["app"])
        ]
    return findings


def _repository_problems(doc: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """A git artifact names no repository or revision: the program fills in the ones Argo CD syncs
    (infra/gitops.py), and would overwrite what a pipeline wrote."""
    for path, git in git_artifacts(doc):
        for key, setting in (("repo", "repo_url"), ("revision", "target_revision")):
            if key in git:
                yield (
                    f"{path}/{key}",
                    f"a git artifact names its own {key} ({git[key]!r})",
                    f"leave `{key}` out: the program fills in services.argocd.{setting}, what Argo CD syncs",
                )


def _artifact_problems(spec: dict[str, Any], app: str) -> Iterator[tuple[str, str, str]]:
    """The pipeline names its own artifact repository and mounts no other app's artifact Secret.

    Every pipeline runs in namespace argo-workflows, where any pod may mount any Secret: the per-app
    MinIO users (infra/services/minio.py) only keep apps apart if each pipeline uses its own. Without
    `artifactRepositoryRef` the controller falls back to the namespace's default repository and then
    its own (argoproj/argo-workflows v4.0.6 workflow/artifactrepositories/artifactrepositories.go
    `Resolve`), which the platform leaves unset: such a pipeline fails at its first artifact."""
    ref = spec.get("artifactRepositoryRef")
    expected = f"{{configMap: {ARTIFACT_REPOSITORIES_CONFIGMAP}, key: {app}}}"
    if not isinstance(ref, dict):
        yield (
            "spec",
            "the pipeline names no artifact repository: its step outputs have nowhere to go (the controller "
            "has no default, so the run fails at its first artifact)",
            f"add spec.artifactRepositoryRef: {expected}",
        )
    elif (
        ref.get("configMap", ARTIFACT_REPOSITORIES_CONFIGMAP) != ARTIFACT_REPOSITORIES_CONFIGMAP
        or ref.get("key") != app
    ):
        yield (
            "spec/artifactRepositoryRef",
            f"the pipeline names artifact repository {ref.get('configMap', ARTIFACT_REPOSITORIES_CONFIGMAP)!r} "
            f"key {ref.get('key')!r}, not {app}'s own: its step outputs would go where another app's "
            "credentials reach, or nowhere",
            f"set spec.artifactRepositoryRef: {expected}",
        )
    own = workflow_artifacts_secret(app)
    for path, text in _strings(spec, "spec"):
        for match in WORKFLOW_ARTIFACTS_SECRET.finditer(text):
            if match[0] != own:
                yield (
                    path,
                    f"the pipeline names Secret {match[0]!r}, app {match['app']!r}'s artifact credentials: "
                    "a step mounting it could read and overwrite that app's datasets, checkpoints and outputs",
                    f"use {app}'s own Secret {own!r}",
                )


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string of the spec with its path: a Secret is named in many places (an env `secretKeyRef`,
    `envFrom`, a `secret` volume or projection, an artifact's `*Secret`, a `podSpecPatch` text), and any
    of them mounts it."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _strings(item, f"{path}/[{i}]")
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}/{key}")


def _mutex_problems(spec: dict[str, Any], app: str) -> Iterator[tuple[str, str]]:
    """The pipeline holds exactly its app's mutex, `retrain-<app>`: the name is what makes two runs of
    one app wait for each other (Argo keys a mutex by namespace and name), so a mistyped or shared
    name would let runs of the app overlap, or make unrelated apps wait."""
    expected = f"retrain-{app}"
    sync = spec.get("synchronization")
    mutexes = sync.get("mutexes") if isinstance(sync, dict) else None
    names = [m.get("name") for m in mutexes or [] if isinstance(m, dict)]
    if not names:
        yield (
            "the pipeline holds no mutex: an alert, the schedule and a person can start overlapping runs "
            "that race to register and propose",
            f"add spec.synchronization.mutexes: [{{name: {expected}}}]",
        )
    elif names != [expected]:
        yield (
            f"the pipeline holds mutex(es) {names}, not its app's own {expected!r}: runs of {app} started "
            "by an alert, the schedule and a person would not wait for each other",
            f"hold spec.synchronization.mutexes: [{{name: {expected}}}] only",
        )


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, template in enumerate(spec.get("templates") or []):
        if isinstance(template, dict) and isinstance(template.get("container"), dict):
            yield f"spec/templates/[{i}]/container", template["container"]


ENTRY = ("python", "-m", "mlplat.retrain")  # the image has no `mlplat` script (images/monitor/Dockerfile)


def _step_problems(spec: dict[str, Any], app: str) -> Iterator[tuple[str, str, str]]:
    for path, container in _containers(spec):
        argv = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
        if argv and argv[0].rsplit("/", 1)[-1] == "mlplat":
            yield (
                path,
                f"`{' '.join(argv[:3])}`: the image has no `mlplat` command",
                f"run `{' '.join(ENTRY)}`",
            )
            continue
        if tuple(argv[1 : len(ENTRY)]) != ENTRY[1:]:  # any interpreter name: `python3 -m` is checked too
            continue
        argv = argv[len(ENTRY) :]
        shown = " ".join([*ENTRY, *argv[:2]])
        if len(argv) < 2 or argv[0] not in STEPS:
            yield path, f"`{shown}` is not `{' '.join(ENTRY)} <step> <app>`", f"steps: {', '.join(STEPS)}"
            continue
        name, step = argv[0], STEPS[argv[0]]
        if argv[1] != app:
            yield path, f"`{shown}` names app {argv[1]!r} in {app}'s pipeline", f"use {app}"
        seen: list[str] = []
        rest = argv[2:]
        pairs = [(rest[i], rest[i + 1] if i + 1 < len(rest) else None) for i in range(0, len(rest), 2)]
        for flag, value in pairs:
            if flag not in step.required + step.optional:
                known = ", ".join(step.required + step.optional)
                yield path, f"`mlplat retrain {name}` has no {flag!r}", f"its flags: {known}"
            elif value is None or value.startswith("--"):
                yield path, f"`mlplat retrain {name} {flag}` has no value", f"give {flag} a value"
            elif flag in seen:
                yield path, f"`mlplat retrain {name}` gets {flag} twice", "give it once"
            elif flag == "--trigger" and value not in TRIGGERS and "{{" not in value:
                yield path, f"--trigger {value!r} is not one of {', '.join(TRIGGERS)}", "use one of them"
            seen.append(flag)
        missing = [f for f in step.required if f not in seen]
        if missing:
            yield path, f"`mlplat retrain {name}` needs {', '.join(missing)}", "add them"


def _parameter_problems(spec: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """Workflow parameters beyond the lineage ones, declared or read anywhere in the pipeline: a value
    read by a step without a credential can still reach one as a step argument, so the pipeline as a
    whole takes nothing else from its submitter."""
    arguments = spec.get("arguments") if isinstance(spec.get("arguments"), dict) else {}
    declared = [p.get("name") for p in (arguments or {}).get("parameters") or [] if isinstance(p, dict)]
    for name in declared:
        if name not in LINEAGE_PARAMETERS:
            yield (
                "spec/arguments/parameters",
                f"the pipeline takes workflow parameter {name!r}: whoever submits a Workflow sets it, and so "
                "chooses where a step's credential goes or what it reads",
                f"write the value into the steps; only {', '.join(LINEAGE_PARAMETERS)} may come from the submitter",
            )
    for i, template in enumerate(spec.get("templates") or []):
        if not isinstance(template, dict):
            continue
        used = {a or b or "(all of them)" for a, b in _WORKFLOW_PARAMETER.findall(json.dumps(template))}
        for name in sorted(used - set(LINEAGE_PARAMETERS)):
            yield (
                f"spec/templates/[{i}]",
                f"template {template.get('name')!r} reads workflow parameter {name!r}: whoever submits a "
                "Workflow sets it, and so chooses where a step's credential goes or what it reads",
                f"write the value into the template; only {', '.join(LINEAGE_PARAMETERS)} may come from the submitter",
            )
