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

import copy
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

# The `spec` keys the template uses and these checks read (of those in the argo-cd v3.5.1 CRDs,
# ../shared/reference/crds/argo-cd). Any other key could change the Applications, or widen the project,
# after the checks have passed, so it is refused by name until a check here reads it.
APPLICATION_SET_KEYS = frozenset({"goTemplate", "goTemplateOptions", "generators", "syncPolicy", "template"})
PROJECT_KEYS = frozenset({
    "description", "sourceRepos", "destinations", "clusterResourceWhitelist", "namespaceResourceWhitelist",
    "orphanedResources",
})  # fmt: skip
# Why the keys that would undo a check are refused, said where the template writes one.
REFUSED = {
    # argo-cd v3.5.1 (and v3.4.4, which the chart runs) applicationset/controllers/template/template.go
    # `GenerateApplications` applies it to every Application after `template`, a strategic merge
    # (patch.go `applyTemplatePatch`, which resets only `project` to the template's).
    "templatePatch": "it is merged into every Application after `template`: it could turn on prune or "
    "change the source past these checks",
    # applicationset/Controlling-Resource-Modification.md, "Ignore certain changes to Applications".
    "ignoreApplicationDifferences": "the ApplicationSet stops resetting the fields it names: a hand edit of "
    "an Application's prune or source would stay",
    # The AppProject CRD's descriptions; app-any-namespace.md for sourceNamespaces.
    "sourceNamespaces": "it lets Applications of other namespaces use this project",
    "roles": "it grants people and tokens rights in this project",
    "destinationServiceAccounts": "it chooses the account each sync runs as",
}
UNREAD = "no check here reads it, so it could change what they vouch for; add the check with the key"
# A git generator's own `template` wins over the ApplicationSet's, field by field (argo-cd v3.5.1 and
# v3.4.4 applicationset/generators/generator_spec_processor.go `mergeGeneratorTemplate`: mergo.Merge into the
# generator's copy), so its project or prune would hold past these checks. Other generators (matrix, merge
# with git generators nested in them, list, clusters, ...) are not read here at all.
GENERATOR_TEMPLATE = (
    "not allowed: it overrides `spec.template` field by field; write the Applications in `spec.template`"
)
ONLY_GIT = "only git generators are read by these checks and by validate"
# Argo CD's name for the cluster it runs in (argo-cd v3.5.1 pkg/apis/application/v1alpha1/
# application_defaults.go `KubernetesInternalAPIServerAddr`): model apps deploy there, into models-<team>
# namespaces only (validate's MODEL_NAMESPACE); a wider destination would outlast a PR that skipped validate.
IN_CLUSTER = "https://kubernetes.default.svc"
MODEL_DESTINATION = (
    f"must be {{server: {IN_CLUSTER}, namespace: models-...}}: this cluster's model namespaces"
)
ONE_SOURCE = "not allowed: write the one `source`, whose repository and revision are the stack's"


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
            # code does; infra/services/argocd.py `policy_settings` refuses chart values that set either.
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
    """Every place Argo CD reads a repository, a revision, a project or whether to delete holds what the
    stack decides, and neither spec holds a key that could change that past these checks. Each problem
    is named by its key path, whatever shape the template gives a value."""
    spec = project["spec"]
    problems = _only_known_keys("AppProject spec", spec, PROJECT_KEYS)
    repos = spec.get("sourceRepos")
    if not isinstance(repos, list) or not repos:  # none would let no repository in, validate passing apps
        problems.append(("AppProject spec.sourceRepos", f"must be a list holding {REPO_URL!r}"))
    for i, repo in enumerate(repos if isinstance(repos, list) else []):
        problems += _held(f"AppProject spec.sourceRepos[{i}]", repo, REPO_URL)
    destinations = spec.get("destinations")
    if not isinstance(destinations, list):
        problems.append(("AppProject spec.destinations", f"must be a list; each {MODEL_DESTINATION}"))
    problems += [
        (f"AppProject spec.destinations[{i}]", MODEL_DESTINATION)
        for i, destination in enumerate(destinations if isinstance(destinations, list) else [])
        if not isinstance(destination, dict)
        or set(destination) != {"server", "namespace"}
        or destination["server"] != IN_CLUSTER
        or not str(destination["namespace"]).startswith("models-")
    ]
    return problems + _application_set_owned(appset["spec"], project["metadata"]["name"])


def _application_set_owned(spec: dict[str, Any], project: str) -> list[tuple[str, str]]:
    """The ApplicationSet's part of `_owned_by_the_stack`; `project` is the AppProject's (unrendered) name."""
    problems = _only_known_keys("ApplicationSet spec", spec, APPLICATION_SET_KEYS)
    generators = spec.get("generators")
    if not isinstance(generators, list) or not generators:
        problems.append(("ApplicationSet spec.generators", f"must be a list of git generators: {ONLY_GIT}"))
    for i, generator in enumerate(generators if isinstance(generators, list) else []):
        where = f"ApplicationSet spec.generators[{i}]"
        if not isinstance(generator, dict) or list(generator) != ["git"]:
            holds = ", ".join(map(str, generator)) if isinstance(generator, dict) else repr(generator)
            problems.append((where, f"must hold `git` alone, holds {holds or 'nothing'}: {ONLY_GIT}"))
            continue
        git = generator["git"]
        if not isinstance(git, dict):
            problems.append((f"{where}.git", f"must be a mapping, is {git!r}"))
            continue
        if "template" in git:
            problems.append((f"{where}.git.template", GENERATOR_TEMPLATE))
        problems += _held(f"{where}.git.repoURL", git.get("repoURL"), REPO_URL)
        problems += _held(f"{where}.git.revision", git.get("revision"), REVISION)
    applications_sync = _mapping(spec, "syncPolicy").get("applicationsSync")
    problems += _held("ApplicationSet spec.syncPolicy.applicationsSync", applications_sync, APPLICATIONS_SYNC)
    template = _mapping(_mapping(spec, "template"), "spec")
    if not template:
        return [*problems, ("ApplicationSet spec.template.spec", "required, a mapping: the Applications")]
    written = template.get("project")
    where = "ApplicationSet spec.template.spec.project"
    if "{{" in str(written):  # filled per Application: a folder name would pick its own permissions
        problems.append(
            (where, f"{written!r} is templated; write the AppProject's metadata.name, {project!r}")
        )
    elif written != project:  # validate judges every app against the AppProject rendered beside it
        problems.append(
            (where, f"{written!r} is written here; write the AppProject's metadata.name, {project!r}")
        )
    problems += [
        (f"ApplicationSet spec.template.spec.{key}", ONE_SOURCE)
        for key in ("sources", "sourceHydrator")
        if key in template
    ]
    source = _mapping(template, "source")
    problems += _held("ApplicationSet spec.template.spec.source.repoURL", source.get("repoURL"), REPO_URL)
    problems += _held(
        "ApplicationSet spec.template.spec.source.targetRevision", source.get("targetRevision"), REVISION
    )
    automated = _mapping(_mapping(template, "syncPolicy"), "automated")
    if automated:  # no automated sync at all deletes nothing
        where = "ApplicationSet spec.template.spec.syncPolicy.automated.prune"
        problems += _held(where, automated.get("prune"), PRUNE)
    return problems


def _held(path: str, value: Any, placeholder: str) -> list[tuple[str, str]]:
    """A problem unless `value` is `placeholder` itself."""
    return [] if value == placeholder else [(path, f"{value!r} is written here; write {placeholder!r}")]


def _only_known_keys(where: str, spec: dict[str, Any], known: frozenset[str]) -> list[tuple[str, str]]:
    """A problem for each key of `spec` the checks do not read: it could change what they vouch for."""
    return [
        (f"{where}.{key}", f"not allowed: {REFUSED.get(str(key), UNREAD)}")
        for key in spec
        if key not in known
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


# --- The retraining pipelines' checkout of the same repository ----------------------------------------
# A pipeline's `register` and `propose` steps clone the repository Argo CD syncs, at its revision, (to read the app's
# evaluation thresholds and to push the promotion branch) with the retraining GitHub token. The program
# fills in which (`services.argocd.repo_url`, `target_revision`): a pipeline that named one itself would be a
# second owner of the URL, and, since a model team owns its `training/` folder, a way to send the token
# to a server of its choice. Argo Workflows' git artifact (argo-workflows v4.1.2 CRDs,
# ../shared/reference/crds/argo-workflows: `artifacts[].git`, `repo` required) is the only git source.


def git_artifacts(node: Any, path: str = "") -> Iterable[tuple[str, dict[str, Any]]]:
    """Every git artifact of an Argo Workflows manifest (an item of any `artifacts` list, at any depth),
    with its key path (`spec/templates/[3]/inputs/artifacts/[0]/git`)."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}/{key}" if path else str(key)
            if key == "artifacts" and isinstance(value, list):
                for i, item in enumerate(value):
                    git = item.get("git") if isinstance(item, dict) else None
                    if isinstance(git, dict):
                        yield f"{where}/[{i}]/git", git
            yield from git_artifacts(value, where)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from git_artifacts(item, f"{path}/[{i}]")


def with_platform_repository(doc: dict[str, Any], repository: ArgoCdConfig) -> dict[str, Any]:
    """A copy of a pipeline manifest whose git artifacts clone the repository Argo CD syncs, at the
    revision it tracks (they name neither)."""
    filled: dict[str, Any] = copy.deepcopy(doc)
    for _, git in git_artifacts(filled):
        git["repo"] = https_address(repository.repo_url)
        git["revision"] = repository.target_revision
    return filled


# --- Links into the same repository -------------------------------------------------------------------
# Alert rules name their runbook as a path in this repository (`runbook_url: docs/alerts.md#<alert>`);
# the program turns it into a link to that file at the revision Argo CD tracks, so moving the repository
# moves the links with it. The link is the `<web address>/blob/<revision>/<path>` form GitHub serves
# (docs.github.com "Getting permanent links to files"); an ssh address (`git@host:owner/repo.git`) is
# read as the same repository's https address.
_SSH_ADDRESS = re.compile(r"^git@(?P<host>[^:]+):(?P<path>.+)$")


def https_address(repo_url: str) -> str:
    """The repository's https address, whichever form `repo_url` takes (`git@host:owner/repo.git` is
    `https://host/owner/repo.git`): the pipelines clone and push with a token, which is an https password."""
    ssh = _SSH_ADDRESS.match(repo_url)
    return f"https://{ssh['host']}/{ssh['path']}" if ssh else repo_url


def repository_link(repo_url: str, revision: str, path: str) -> str:
    """The web link to `path` (a file, with an optional `#anchor`) of the repository at `revision`."""
    return f"{https_address(repo_url).rstrip('/').removesuffix('.git')}/blob/{revision}/{path}"
