"""Each environment's model-app GitOps objects (AppProject, ApplicationSet), rendered from one template.

`platform/argocd/models.yaml` is written once for every environment; the few facts that differ come from
the environment's typed stack config (`ModelApps.of`): its name, the repository and revision Argo CD
reads (`services.argocd.repo_url` / `target_revision`) and whether automation may delete
(`services.argocd.prune_models`). The Pulumi program applies `render`'s result and `mlplat validate`
judges apps against the same result, so the cluster and the gate read one set of rules, and adding an
environment or moving the repository adds or changes no file here.

The standard library and infra/stack_file.py (PyYAML) only, the stack config being a type hint:
`mlplat validate` renders without loading Pulumi.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra.contract import ENVIRONMENT_LABEL
from infra.stack_file import ConfigError

if TYPE_CHECKING:
    from infra.config import ArgoCdConfig

# The template, relative to platform/.
TEMPLATE = "argocd/models.yaml"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_]+)\}")

# Where Argo CD reads the repository and the revision (argo-cd v3.5.1 CRDs,
# ../shared/reference/crds/argo-cd: AppProject `spec.sourceRepos`; ApplicationSet
# `spec.generators[].git.repoURL`/`revision`, `spec.template.spec.source.repoURL`/`targetRevision`).
# These must hold the placeholder itself: a URL or branch written in the template would be a second
# owner that drifts from the stack file unnoticed.
REPO_URL = "${repo_url}"
REVISION = "${target_revision}"
# Likewise where Argo CD decides whether automation deletes (ApplicationSet `spec.syncPolicy.applicationsSync`
# and `spec.template.spec.syncPolicy.automated.prune`): a value written there, or the key left out
# (`applicationsSync` then defaults to the controller's `sync`), would hold for prod too, past the stack
# rule that prod never enables `prune_models`.
PRUNE = "${prune}"
APPLICATIONS_SYNC = "${applications_sync}"


class TemplateError(ConfigError):
    """A template that cannot be rendered, each problem named by its document and key path. A
    ConfigError, so `pulumi up` prints it without a traceback and `mlplat` exits 2."""

    def __str__(self) -> str:
        return f"{self.source} cannot be rendered:\n" + "\n".join(f"  {p}: {r}" for p, r in self.problems)


@dataclass(frozen=True)
class ModelApps:
    """What one environment's AppProject and ApplicationSet are rendered from."""

    environment: str
    repo_url: str
    target_revision: str
    prune: bool  # automation may delete: sync prunes objects, the ApplicationSet deletes Applications

    @classmethod
    def of(cls, environment: str, argocd: ArgoCdConfig) -> ModelApps:
        return cls(environment, argocd.repo_url, argocd.target_revision, argocd.prune_models)

    def values(self) -> dict[str, str | bool]:
        return {
            "environment": self.environment,
            # The label every rendered object of the environment carries (infra/contract.py owns it).
            "environment_label": ENVIRONMENT_LABEL,
            "repo_url": self.repo_url,
            "target_revision": self.target_revision,
            "prune": self.prune,
            # ApplicationSet `spec.syncPolicy.applicationsSync` (enum create-only, create-update,
            # create-delete, sync: applicationset-crd.yaml of argo-cd v3.5.1). `create-update` keeps an
            # Application whose overlay disappeared (a removed folder, a bad merge). The controller takes
            # the ApplicationSet's value because it runs without `--policy` (argocd-cmd-params-cm
            # `applicationsetcontroller.policy` unset, platform/argo-cd/values.yaml; the chart passes the
            # key as ARGOCD_APPLICATIONSET_CONTROLLER_POLICY, argo-helm argo-cd-10.1.1
            # templates/argocd-applicationset/deployment.yaml): then `--enable-policy-override` defaults
            # to true (argo-cd v3.5.1 109ca7c and v3.4.4 443415b,
            # cmd/argocd-applicationset-controller/commands/applicationset_controller.go: default
            # `policy == ""`; applicationset/utils/policy.go `DefaultPolicy`). The operator manual's
            # "default to `false`" (applicationset/Controlling-Resource-Modification.md) is not what the
            # code does; tests/infra/test_gitops.py holds the values to leaving `--policy` unset.
            "applications_sync": "sync" if self.prune else "create-update",
        }


@dataclass(frozen=True)
class Rendered:
    """One environment's objects, as Argo CD receives them."""

    project: dict[str, Any]
    application_set: dict[str, Any]

    @property
    def documents(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return (self.project, self.application_set)


def render(documents: Iterable[Any], source: str, apps: ModelApps) -> Rendered:
    """The template's documents (parsed by the caller, `source` naming the file) for `apps`'s
    environment; a TemplateError lists every problem with its document and key path."""
    problems: list[tuple[str, str]] = []
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in documents:
        if isinstance(doc, dict) and doc:
            by_kind.setdefault(str(doc.get("kind") or "document without a kind"), []).append(doc)
    for kind in ("AppProject", "ApplicationSet"):
        if len(by_kind.get(kind, [])) != 1:
            problems.append(("(file)", f"must hold exactly one {kind}, holds {len(by_kind.get(kind, []))}"))
    # Anything else would be dropped unseen: neither the program nor validate knows what to do with it.
    problems += [
        ("(file)", f"holds a {kind}: only the AppProject and the ApplicationSet are rendered")
        for kind in sorted(set(by_kind) - {"AppProject", "ApplicationSet"})
    ]
    if problems:
        raise TemplateError(source, problems)
    project, appset = by_kind["AppProject"][0], by_kind["ApplicationSet"][0]
    for kind, doc in (("AppProject", project), ("ApplicationSet", appset)):
        if not isinstance(doc.get("metadata"), dict) or not isinstance(doc["metadata"].get("name"), str):
            problems.append((f"{kind} metadata.name", "required: the object's name in the cluster"))
        if not isinstance(doc.get("spec"), dict):
            problems.append((f"{kind} spec", "required, a mapping"))
    if problems:
        raise TemplateError(source, problems)
    problems += _owned_by_the_stack(project, appset)
    values = apps.values()
    rendered = Rendered(
        _filled(project, "AppProject", values, problems), _filled(appset, "ApplicationSet", values, problems)
    )
    if problems:
        raise TemplateError(source, problems)
    return rendered


def _owned_by_the_stack(project: dict[str, Any], appset: dict[str, Any]) -> list[tuple[str, str]]:
    """Every place Argo CD reads a repository, a revision or whether to delete holds the placeholder."""
    wanted: list[tuple[str, Any, str]] = [
        (f"AppProject spec.sourceRepos[{i}]", r, REPO_URL)
        for i, r in enumerate(project["spec"].get("sourceRepos") or [])
    ]
    spec = appset["spec"]
    for i, generator in enumerate(spec.get("generators") or []):
        git = generator.get("git") if isinstance(generator, dict) else None
        if isinstance(git, dict):
            where = f"ApplicationSet spec.generators[{i}].git"
            wanted += [(f"{where}.repoURL", git.get("repoURL"), REPO_URL)]
            wanted += [(f"{where}.revision", git.get("revision"), REVISION)]
    applications_sync = _mapping(spec, "syncPolicy").get("applicationsSync")
    wanted += [("ApplicationSet spec.syncPolicy.applicationsSync", applications_sync, APPLICATIONS_SYNC)]
    template = _mapping(_mapping(spec, "template"), "spec")
    source = _mapping(template, "source")
    if source:
        where = "ApplicationSet spec.template.spec.source"
        wanted += [(f"{where}.repoURL", source.get("repoURL"), REPO_URL)]
        wanted += [(f"{where}.targetRevision", source.get("targetRevision"), REVISION)]
    automated = _mapping(_mapping(template, "syncPolicy"), "automated")
    if automated:  # no automated sync at all deletes nothing
        wanted += [
            ("ApplicationSet spec.template.spec.syncPolicy.automated.prune", automated.get("prune"), PRUNE)
        ]
    return [
        (path, f"{value!r} is written here; write {marker!r}")
        for path, value, marker in wanted
        if value != marker
    ]


def _mapping(node: Any, key: str) -> dict[str, Any]:
    """`node[key]` when both are mappings, else an empty one: the CRD schema judges the rest."""
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, dict) else {}


def _filled(
    doc: dict[str, Any], kind: str, values: dict[str, str | bool], problems: list[tuple[str, str]]
) -> Any:
    """A copy of `doc` with every placeholder in a key or string value replaced; unknown ones are problems."""
    known = ", ".join(f"${{{k}}}" for k, v in values.items() if isinstance(v, str))

    def text(node: str, path: str) -> str:
        def one(match: re.Match[str]) -> str:
            value = values.get(match[1])
            if isinstance(value, str):
                return value
            reason = "is not text" if match[1] in values else "is not a placeholder"
            problems.append((f"{kind} {path}", f"{match[0]} {reason}; inside a string use one of {known}"))
            return match[0]

        return PLACEHOLDER.sub(one, node)

    def fill(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            filled = {}
            for key, value in node.items():
                where = f"{path}.{key}" if path else str(key)
                filled[text(key, where) if isinstance(key, str) else key] = fill(value, where)
            return filled
        if isinstance(node, list):
            return [fill(value, f"{path}[{i}]") for i, value in enumerate(node)]
        if not isinstance(node, str):
            return node
        whole = PLACEHOLDER.fullmatch(node)
        if whole and whole[1] in values:
            return values[whole[1]]  # a whole value keeps its type: `prune: ${prune}` is a boolean
        return text(node, path)

    return fill(doc, "")
