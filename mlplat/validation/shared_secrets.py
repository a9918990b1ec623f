"""MLP-SHARED-SECRET: the platform's shared credentials reach only the containers the platform configures.

A model namespace holds three Secrets every app of the team shares (the model store reader, the
inference-log writer, the log hashing key), and namespace argo-workflows holds the ones every
retraining pipeline shares (the model store publisher, the pipelines' MLflow account, the GitHub
token, the UI's SSO client). A Pod may name any Secret of its namespace, so the only thing between
these and code a pull request controls is which containers the manifests hand them to: a sidecar
given `model-publisher-s3` could overwrite any app's published models (MinIO's `model-publisher` may
add objects under every pipeline app's prefix, infra/services/minio.py), and a model container given
`inference-log-hash-key` could take the key out of the pod, to hash guesses of every app's logged
personal fields wherever and as often as it likes.

What this rule does not protect: it keeps the Secrets' values out of code apps control, not what the
holders do for whoever asks. The privacy marshaller answers the HMAC of anything sent to it
(mlplat/monitoring/privacy.py), and on the pod's loopback the model server beside it can send it
records: a model server can hash guesses of a low-entropy field with the shared key without holding
it, and since every app of the team hashes with the same key, match them against the hashed fields of
any app's logs it can read. What bounds that is who reads the logs bucket and the marshaller's own
throughput, not this rule. Likewise `register` and `propose` publish and register whatever model the
pipeline's earlier steps produced; MLP-RETRAIN-STEP and the pipeline's review judge what they are told.

So a container may get one of them (env `valueFrom.secretKeyRef`, `envFrom.secretRef`, or a mount of
a `secret` or `projected` volume: the core/v1 Container and Volume fields, as KServe's CRD embeds them,
kserve/kserve v0.20.0 config/crd/full/serving.kserve.io_inferenceservices.yaml in ../shared/reference)
only when it is one of the holders below: what the repository's own components and pipelines run
today, recognised by what they run (the platform's image and entry point, or a script's exact text)
and configured as the platform configures them (no hook or exec probe, no environment variable, mount or
working directory beyond the platform's own: each could run other code with the Secret), never by a
name an app can give any container. A pod holding one may not share its process namespace: its other
containers would read the holder's files and environment through /proc. `imagePullSecrets` are not a reference: the kubelet
reads them, no container does. Everything else the platform gives these Secrets to is platform code
outside the manifests: KServe's storage initializer (model-store-s3, through the predictor's
ServiceAccount) and agent (inference-logger-s3, through `logger.storage.serviceAccountName`;
kserve/kserve v0.20.0 pkg/webhook/admission/pod/agent_injector.go L163-172, L477-490), and Argo's
executor for a git artifact's `usernameSecret`/`passwordSecret` (the repository it reaches is the
program's, MLP-RETRAIN-REPOSITORY).

Argo Workflows (argoproj/argo-workflows v4.0.6 pkg/apis/workflow/v1alpha1/workflow_types.go): a
template's containers are `container`, `script`, `containerSet.containers`, `initContainers` and
`sidecars`, and a `containerSet`'s own `volumeMounts` reach all of its containers; a mount names a
volume of the template's `volumes`, else of the workflow's (workflow/controller/workflowpod.go
`addVolumeReferences`); `templateDefaults` is merged into every template (operator.go
`mergedTemplateDefaultsInto`), so no container there holds anything; a step's or DAG task's `inline`
template is a template like the others; a Secret name with `{{...}}` is whatever a parameter makes it,
so it is judged as a shared Secret no container holds; `podSpecPatch` (workflow or template) is text
Argo substitutes parameters into and merges into the pod, so one mentioning Secrets, volumes,
containers or the process namespace, or holding a `{{` or a backslash escape, is refused; any other
`*Secret` selector (an artifact's) naming one is refused but a git artifact's GitHub token. A
CronWorkflow's spec is `spec.workflowSpec` (cron_workflow_types.go).

An app's own artifact Secret `argo-artifacts-<app>-s3` is not shared: MLP-RETRAIN-ARTIFACTS keeps
other apps' out of its pipeline.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeGuard

import yaml

from infra.versions import MLPLAT_IMAGE
from mlplat.findings import Finding, RenderedDoc
from mlplat.validation import REPO
from mlplat.validation.podsecurity import containers, pod_templates
from mlplat.validation.retraining import ENTRY

RULE = "MLP-SHARED-SECRET"
# The mlplat image's repository: any of its tags runs the platform's own code (infra/versions.py).
PLATFORM_IMAGE = MLPLAT_IMAGE.rsplit(":", 1)[0]
ARGO_SPECS = {
    "Workflow": ("spec",),
    "WorkflowTemplate": ("spec",),
    "ClusterWorkflowTemplate": ("spec",),
    "CronWorkflow": ("spec", "workflowSpec"),
}
# The one shared Secret Argo's executor may use for a pipeline: a git artifact's token (module docstring).
GITHUB_TOKEN = "retraining-github"  # pragma: allowlist secret (a Secret name)


# The keys a holder may carry besides the ones `Holder` judges: what the kubelet does with them runs none of
# the container's code (core/v1 Container, kubernetes/api v0.35 core/v1/types.go). Not `lifecycle` and not an
# `exec` probe: both run a command in the holder's own filesystem, the Secret's files and environment included.
INERT_KEYS = frozenset({
    "name", "image", "imagePullPolicy", "resources", "securityContext", "ports",
    "terminationMessagePath", "terminationMessagePolicy",
    "livenessProbe", "readinessProbe", "startupProbe",
})  # fmt: skip
JUDGED_KEYS = frozenset({"command", "args", "source", "env", "envFrom", "volumeMounts", "workingDir"})


@dataclass(frozen=True)
class Holder:
    """A container the platform configures to hold a shared Secret, by what it runs: the platform
    image with this command and these first arguments, or (a script) exactly this source text; and by
    nothing else that changes what runs: only these environment variables (PYTHONPATH, LD_PRELOAD... would
    load other code), only these mount paths (a volume over the code's own directories would replace it),
    this working directory or the image's (`python -m` imports from it), no `lifecycle` and no `exec` probe."""

    what: str
    command: tuple[str, ...] | None  # None: the image's own entry point
    args: tuple[str, ...] = ()
    source_sha256: str | None = None
    env: frozenset[str] = frozenset()
    mounts: frozenset[str] = frozenset()
    working_dir: str | None = None

    def runs(self, container: dict[str, Any]) -> bool:
        image = container.get("image")
        if not isinstance(image, str) or re.split(r"[:@]", image, maxsplit=1)[0] != PLATFORM_IMAGE:
            return False
        command = container.get("command")
        if (tuple(map(str, command)) if isinstance(command, list) else None) != self.command:
            return False
        args = container.get("args")
        given = tuple(map(str, args)) if isinstance(args, list) else ()
        if given[: len(self.args)] != self.args:
            return False
        source = container.get("source")
        digest = hashlib.sha256(source.encode()).hexdigest() if isinstance(source, str) else None
        return digest == self.source_sha256 and self._configured_as_the_platform_does(container)

    def _configured_as_the_platform_does(self, container: dict[str, Any]) -> bool:
        probes = (_map(container.get(p)) for p in ("livenessProbe", "readinessProbe", "startupProbe"))
        # envFrom only of a shared Secret this holder holds: its keys are the platform's, no app's.
        env_from = (_map(_map(e).get("secretRef")).get("name") for e in _list(container.get("envFrom")))
        return (
            not set(container) - INERT_KEYS - JUDGED_KEYS
            and not any("exec" in probe for probe in probes)
            and container.get("workingDir") in (None, self.working_dir)  # None: the image's own
            and {_map(e).get("name") for e in _list(container.get("env"))} <= self.env
            and all(_shared(name) and self in SHARED[name][1] for name in env_from)
            and {_map(m).get("mountPath") for m in _list(container.get("volumeMounts"))} <= self.mounts
        )


def _component_container(path: str, name: str) -> dict[str, Any]:
    """The container `name` as the platform's kustomize component at `path` (a JSON patch adding it) writes
    it: the one owner of what that holder is given."""
    component = yaml.safe_load((REPO / path).read_text())
    for patch in component["patches"]:
        for op in yaml.safe_load(patch["patch"]):
            for container in op["value"] if op["path"].endswith("/containers") else []:
                if container["name"] == name:
                    return dict(container)
    raise LookupError(f"{path} adds no container {name!r}")


def _holder_from(what: str, container: dict[str, Any]) -> Holder:
    """A holder configured exactly as the platform's own `container`: its image's entry point, its first two
    arguments (the subcommand), its env names, mount paths and working directory."""
    return Holder(
        what,
        tuple(container["command"]) if "command" in container else None,
        tuple(map(str, container.get("args", [])))[:2],
        env=frozenset(e["name"] for e in container.get("env", [])),
        mounts=frozenset(m["mountPath"] for m in container.get("volumeMounts", [])),
        working_dir=container.get("workingDir"),
    )


# The marshaller sidecar of apps/components/inference-logging, as that component writes it.
MARSHALLER = _holder_from(
    "the privacy marshaller (`mlplat monitor marshaller`)",
    _component_container("apps/components/inference-logging/kustomization.yaml", "privacy-marshaller"),
)
# The retraining steps every apps/<app>/training/workflowtemplate.yaml (the platform team's, .github/CODEOWNERS)
# runs, with the env names, mounts and working directory those templates give them.
_STEP_MOUNTS = frozenset({"/work", "/tmp", "/etc/mlplat/internal-ca"})
_MLFLOW_ENV = frozenset({"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "HOME"})
REGISTER = Holder(
    "the `register` step (`python -m mlplat.retrain register`)",
    ENTRY,
    ("register",),
    env=_MLFLOW_ENV | {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"},
    mounts=_STEP_MOUNTS,
)
PROPOSE = Holder(
    "the `propose` step (`python -m mlplat.retrain propose`)",
    ENTRY,
    ("propose",),
    env=_MLFLOW_ENV,
    mounts=_STEP_MOUNTS,
    working_dir="/work/repo",
)
# The `open-pr` script of every apps/<app>/training/workflowtemplate.yaml: its source is the code that
# holds the GitHub token, so the platform reviews it here, by its exact text (sha256 of `script.source`).
OPEN_PR = Holder(
    "the `open-pr` script the platform reviewed (its text's sha256 is OPEN_PR's, mlplat/validation/shared_secrets.py)",
    ("python3",),
    source_sha256="5d08a2f69b2e103ea507e3c31acfe4a817c0c78f8bd26eb830ca623995ca4e1d",  # pragma: allowlist secret (a digest of public text)
    env=frozenset({"GITHUB_TOKEN", "BRANCH", "PR_BODY", "REPO", "BASE", "HOME"}),
    mounts=_STEP_MOUNTS,
    working_dir="/work/repo",
)

# Each shared Secret, what it is, and the containers that may get it. The names are the ones
# infra/services and apps/components write (tests/mlplat/validate/test_validate_shared_secrets.py
# holds them equal).
SHARED: dict[str, tuple[str, tuple[Holder, ...]]] = {
    "model-store-s3": ("the model store's reader, every app's models", ()),
    "inference-logger-s3": ("the inference-log writer of every app", ()),
    "inference-log-hash-key": ("the key every app's logged personal fields are hashed with", (MARSHALLER,)),
    "model-publisher-s3": ("the model store's publisher, which adds under every pipeline app's prefix", (REGISTER,)),
    "mlflow-retrain": ("the pipelines' MLflow account, EDIT on every pipeline app's model", (REGISTER, PROPOSE)),
    GITHUB_TOKEN: ("the GitHub token that pushes to the platform repository", (OPEN_PR,)),
    "argo-server-sso": ("the Argo Workflows UI's OIDC client", ()),
}  # fmt: skip
# What a `podSpecPatch` may not hold. Argo substitutes the workflow's variables into it, reads it as YAML
# and strategic-merges it into the pod (argoproj/argo-workflows v4.0.6 workflow/controller/workflowpod.go
# processPodSpecPatch, workflow/util/util.go ApplyPodSpecPatch), so a `{{...}}` or an escape (\u002d) can
# spell anything; in the text as written, a Secret, a volume, a container (a holder's command, env or
# hooks) or the process namespace is the patch reaching past this rule.
_PATCH_REACH = re.compile(r"\{\{|\\|secret|volume|container|processnamespace", re.IGNORECASE)


def _shared(name: Any) -> TypeGuard[str]:
    """Whether `name` is a shared Secret's; a name that is no string is MLP-SCHEMA's to report."""
    return isinstance(name, str) and name in SHARED


# A Secret name Argo fills in when the pipeline runs (`{{workflow.parameters.s}}`, whose default or a
# submitter's `-p` can be any shared Secret): judged as a shared Secret no container holds, since what it
# will name is not in the manifest.
TEMPLATED = ("a name a parameter fills in when the pipeline runs, which can be any shared Secret", ())


def _judged(name: Any) -> TypeGuard[str]:
    """Whether this rule judges a reference to `name`: a shared Secret's, or one a parameter fills in."""
    return _shared(name) or (isinstance(name, str) and "{{" in name)


def _about(name: str) -> tuple[str, tuple[Holder, ...]]:
    """What a judged Secret is and who may hold it."""
    return SHARED.get(name, TEMPLATED)


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def check(docs: Iterable[RenderedDoc]) -> list[Finding]:
    return [
        Finding(doc.source_file, doc.ref, RULE, message, fix, doc.env, None, path)
        for doc in docs
        for path, message, fix in problems(doc.doc)
    ]


def problems(doc: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(key path, what is wrong, how to fix it) for every shared Secret an object hands to a container
    that does not hold it."""
    for pod_path, pod in pod_templates(doc):
        volumes = _volumes(pod)
        yield from _pod_problems(volumes, containers(pod_path, pod), holding=True)
        held = sorted({s for p, c in containers(pod_path, pod) for _, s, _ in _references(p, c, volumes)})
        if pod.get("shareProcessNamespace") is True and held:
            yield (
                f"{pod_path}/shareProcessNamespace",
                f"the pod shares its process namespace and holds Secret {held[0]!r}, {_about(held[0])[0]}: "
                "every container of the pod reaches the holder's files and environment through /proc/<pid>",
                # "Container filesystems are visible to other containers in the pod through the
                # /proc/$pid/root link" (https://kubernetes.io/docs/tasks/configure-pod-container/
                # share-process-namespace/); KServe's predictor embeds the PodSpec field (kserve/kserve
                # v0.20.0 config/crd/full/serving.kserve.io_inferenceservices.yaml).
                "remove shareProcessNamespace",
            )
    spec_path = ARGO_SPECS.get(str(doc.get("kind")))
    if spec_path is not None:
        spec: Any = doc
        for key in spec_path:
            spec = _map(spec).get(key)
        yield from _workflow_problems(_map(spec), "/".join(spec_path))


def _volumes(owner: dict[str, Any]) -> dict[str, list[str]]:
    """Each volume's name (of a pod, a template or a workflow) → the shared Secrets it carries."""
    found: dict[str, list[str]] = {}
    for volume in map(_map, _list(owner.get("volumes"))):
        named = [_map(volume.get("secret")).get("secretName")]
        named += [
            _map(_map(s).get("secret")).get("name")
            for s in _list(_map(volume.get("projected")).get("sources"))
        ]
        found[str(volume.get("name"))] = [s for s in named if _judged(s)]
    return found


def _pod_problems(
    volumes: dict[str, list[str]],
    pod_containers: Iterable[tuple[str, dict[str, Any]]],
    holding: bool,
) -> Iterator[tuple[str, str, str]]:
    """A container's shared Secrets it may not hold; `holding=False` where no container may hold any
    (a template default, merged into every container)."""
    for path, container in pod_containers:
        for where, secret, how in _references(path, container, volumes):
            holders = _about(secret)[1] if holding else ()
            if any(h.runs(container) for h in holders):
                continue
            allowed = " or ".join(h.what for h in holders) or "platform code outside the manifests"
            yield (
                where,
                f"container {container.get('name', path)!r} gets Secret {secret!r} ({how}), "
                f"{_about(secret)[0]}: code this repository's apps control would hold a credential the "
                f"whole platform shares; only {allowed} may",
                "remove the reference; a credential an app's own code needs is its own Secret, from Vault "
                "(ask the platform team for one)",
            )


def _references(
    path: str, container: dict[str, Any], volumes: dict[str, list[str]]
) -> Iterator[tuple[str, str, str]]:
    """(key path, Secret, how) of every shared Secret the container gets."""
    for i, env in enumerate(_list(container.get("env"))):
        name = _map(_map(_map(env).get("valueFrom")).get("secretKeyRef")).get("name")
        if _judged(name):
            yield f"{path}/env/[{i}]/valueFrom/secretKeyRef/name", name, "env secretKeyRef"
    for i, source in enumerate(_list(container.get("envFrom"))):
        name = _map(_map(source).get("secretRef")).get("name")
        if _judged(name):
            yield f"{path}/envFrom/[{i}]/secretRef/name", name, "envFrom secretRef"
    for i, mount in enumerate(_list(container.get("volumeMounts"))):
        for secret in volumes.get(str(_map(mount).get("name")), []):
            yield f"{path}/volumeMounts/[{i}]", secret, f"volume {_map(mount).get('name')!r}"


def _workflow_problems(spec: dict[str, Any], path: str) -> Iterator[tuple[str, str, str]]:
    shared_volumes = _volumes(spec)
    for template_path, template in _templates(spec, path):
        volumes = {**shared_volumes, **_volumes(template)}
        yield from _pod_problems(volumes, _template_containers(template, template_path), holding=True)
    defaults = _map(spec.get("templateDefaults"))
    yield from _pod_problems(
        shared_volumes, _template_containers(defaults, f"{path}/templateDefaults"), holding=False
    )
    yield from _patch_and_selector_problems(spec, path)


def _templates(spec: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every template of a workflow spec, the `inline` ones of steps and DAG tasks included (a
    WorkflowStep's and a DAGTask's `Inline *Template`, argoproj/argo-workflows v4.0.6
    pkg/apis/workflow/v1alpha1/workflow_types.go L1664, L3507), at any depth."""
    for i, template in enumerate(_list(spec.get("templates"))):
        yield from _with_inline(_map(template), f"{path}/templates/[{i}]")


def _with_inline(template: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, template
    for i, parallel in enumerate(_list(template.get("steps"))):
        for j, step in enumerate(_list(parallel)):
            if isinstance(_map(step).get("inline"), dict):
                yield from _with_inline(step["inline"], f"{path}/steps/[{i}]/[{j}]/inline")
    for i, task in enumerate(_list(_map(template.get("dag")).get("tasks"))):
        if isinstance(_map(task).get("inline"), dict):
            yield from _with_inline(task["inline"], f"{path}/dag/tasks/[{i}]/inline")


def _template_containers(template: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in ("container", "script"):
        if isinstance(template.get(key), dict):
            yield f"{path}/{key}", template[key]
    container_set = _map(template.get("containerSet"))
    if container_set:
        yield f"{path}/containerSet", container_set  # its volumeMounts; it runs nothing, so holds nothing
    for i, item in enumerate(_list(container_set.get("containers"))):
        yield f"{path}/containerSet/containers/[{i}]", _map(item)
    for key in ("initContainers", "sidecars"):
        for i, item in enumerate(_list(template.get(key))):
            yield f"{path}/{key}/[{i}]", _map(item)


def _patch_and_selector_problems(node: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """A `podSpecPatch` naming a shared Secret, and any `*Secret` selector naming one but a git
    artifact's GitHub token."""
    for key, value in _map(node).items():
        here = f"{path}/{key}"
        touched = _PATCH_REACH.search(value) if key == "podSpecPatch" and isinstance(value, str) else None
        if touched:
            yield (
                here,
                f"podSpecPatch holds {touched[0]!r}: the patch can hand any shared Secret ({', '.join(SHARED)}) "
                "to any container, or change what a holder runs, past this rule",
                "set containers, volumes and Secrets on the template itself, where MLP-SHARED-SECRET judges them",
            )
        elif key.endswith("Secret") and isinstance(value, dict) and _judged(value.get("name")):
            if not (value["name"] == GITHUB_TOKEN and path.endswith("/git")):
                yield (
                    f"{here}/name",
                    f"{key} names Secret {value['name']!r}, {_about(value['name'])[0]}: Argo's executor "
                    "would use it where this pipeline says",
                    "use the pipeline's own artifact repository (spec.artifactRepositoryRef)",
                )
        elif isinstance(value, (dict, list)):
            yield from _patch_and_selector_problems(value, here)
    for i, item in enumerate(node if isinstance(node, list) else []):
        yield from _patch_and_selector_problems(item, f"{path}/[{i}]")
