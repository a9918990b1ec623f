"""Would Argo CD accept and pick up this app? Checked against the environment's own AppProject and
ApplicationSet, rendered from `platform/argocd/models.yaml` by the program's own renderer
(`infra/gitops.py`) with the environment's stack config, so validate and the cluster read the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from infra import gitops
from infra.stack_file import ConfigError
from mlplat import safe_yaml
from mlplat.findings import Finding, RenderedDoc
from mlplat.validation import UsageError, rel
from mlplat.validation.render import SourceIndex
from mlplat.validation.targets import Target

if TYPE_CHECKING:
    from infra.config import ArgoCdConfig

MODEL_NAMESPACE = re.compile(r"^models-[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


@dataclass(frozen=True)
class Project:
    """The parts of an AppProject and ApplicationSet that decide what an app may be."""

    # As findings name them: `models-dev (platform/argocd/models.yaml)`, the template they come from.
    name: str
    appset_name: str
    destinations: tuple[str, ...]  # namespace globs
    namespaced: tuple[tuple[str, str], ...]  # (group, kind) globs
    cluster: tuple[tuple[str, str, str], ...]  # (group, kind, name) globs
    directories: tuple[str, ...]  # generator path globs
    excludes: tuple[str, ...]


def load_project(root: Path, env: str, argocd: ArgoCdConfig) -> Project:
    """The environment's AppProject and ApplicationSet as the program applies them: the checkout's
    template rendered with the environment's settings (infra/gitops.py). Rendering refuses (exit 2) an
    ApplicationSet whose Applications would be in any project but that AppProject, so the rules read
    here are those Argo CD holds the apps to."""
    path = root / "platform" / gitops.TEMPLATE
    name = rel(path, root)
    try:
        documents = list(yaml.load_all(safe_yaml.read_text(path, name), Loader=safe_yaml.FAST_LOADER))
        rendered = gitops.render(documents, name, gitops.ModelApps.of(env, argocd))
    except safe_yaml.UnsafeInput as err:
        raise UsageError(str(err)) from None
    except OSError:
        raise UsageError(
            f"{name} is missing: every environment's AppProject and ApplicationSet are rendered from it"
        ) from None
    except yaml.YAMLError as err:
        raise UsageError(f"{name} is not valid YAML: {err}") from None
    except ConfigError as err:
        raise UsageError(str(err)) from None
    project, appset = rendered.project["spec"], rendered.application_set["spec"]
    gits = [g["git"] for g in _mappings(appset.get("generators")) if isinstance(g.get("git"), dict)]
    directories = [d for git in gits for d in _mappings(git.get("directories")) if d.get("path")]
    # The project the Applications are in, as the ApplicationSet names it (render pinned it to the AppProject).
    project_name = rendered.application_set["spec"]["template"]["spec"]["project"]
    return Project(
        f"{project_name} ({name})",
        f"{rendered.application_set['metadata']['name']} ({name})",
        tuple(str(d.get("namespace", "")) for d in _mappings(project.get("destinations"))),
        tuple(
            (str(w.get("group", "")), str(w.get("kind", "")))
            for w in _mappings(project.get("namespaceResourceWhitelist"))
        ),
        tuple(
            (str(w.get("group", "")), str(w.get("kind", "")), str(w.get("name") or "*"))
            for w in _mappings(project.get("clusterResourceWhitelist"))
        ),
        tuple(str(d["path"]) for d in directories if not d.get("exclude")),
        tuple(str(d["path"]) for d in directories if d.get("exclude")),
    )


def _mappings(items: Any) -> list[dict[str, Any]]:
    """The mappings of a list the template may have written as anything: Argo CD's schema refuses the
    rest, and an entry that is not a mapping allows nothing here."""
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def path_match(pattern: str, path: str) -> bool:
    """Go's path.Match as the git generator uses it: `*` never crosses a `/`."""
    regex = re.escape(pattern).replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    return re.fullmatch(regex, path) is not None


def check_generator(target: Target, project: Project) -> list[Finding]:
    """MLP-APPSET-UNMATCHED: an overlay the ApplicationSet would never turn into an Application."""
    matched = any(path_match(p, target.rel) for p in project.directories)
    if matched and not any(path_match(p, target.rel) for p in project.excludes):
        return []
    return [
        Finding(
            target.rel, "-", "MLP-APPSET-UNMATCHED",
            f"ApplicationSet {project.appset_name} does not pick up {target.rel}; "
            f"its git directories are {', '.join(project.directories) or 'none'}",
            f"put the overlay at apps/<app>/overlays/{target.env}",
            target.env,
        )
    ]  # fmt: skip


def check_docs(
    docs: Sequence[RenderedDoc], project: Project, namespaced: Any, index: SourceIndex
) -> list[Finding]:
    """MLP-APPPROJECT-KIND / -NAMESPACE for every object Argo CD would apply in this environment."""
    findings = []
    for doc in docs:
        body = doc.doc
        group = str(body.get("apiVersion", "")).rpartition("/")[0]
        kind, meta = str(body.get("kind", "")), body.get("metadata") or {}

        def finding(rule: str, message: str, fix: str, doc: RenderedDoc = doc) -> Finding:
            return Finding(doc.source_file, doc.ref, rule, message, fix, doc.env, index.line(doc))

        if namespaced(str(body.get("apiVersion", "")), kind):
            if not any(fnmatchcase(group, g) and fnmatchcase(kind, k) for g, k in project.namespaced):
                findings.append(finding(
                    "MLP-APPPROJECT-KIND",
                    f"AppProject {project.name} does not allow namespaced kind {group or 'core'}/{kind}",
                    "use an allowed kind, or ask the platform team to extend namespaceResourceWhitelist",
                ))  # fmt: skip
            findings += _namespace_findings(str(meta.get("namespace") or ""), project, finding)
        else:
            name = str(meta.get("name", ""))
            allowed = any(
                fnmatchcase(group, g) and fnmatchcase(kind, k) and fnmatchcase(name, n)
                for g, k, n in project.cluster
            )
            if not allowed:
                findings.append(finding(
                    "MLP-APPPROJECT-KIND",
                    f"AppProject {project.name} does not allow cluster-scoped {group or 'core'}/{kind} {name!r}",
                    "model apps may only create their models-<team> Namespace",
                ))  # fmt: skip
            if kind == "Namespace":
                findings += _namespace_findings(name, project, finding)
    return findings


def _namespace_findings(namespace: str, project: Project, finding: Any) -> list[Finding]:
    if not namespace:
        return [finding(
            "MLP-APPPROJECT-NAMESPACE", "no namespace: the Applications set no default namespace",
            "set metadata.namespace to models-<team>",
        )]  # fmt: skip
    problems = []
    if not MODEL_NAMESPACE.match(namespace):
        problems.append(f"namespace {namespace!r} does not match models-<team> ({MODEL_NAMESPACE.pattern})")
    elif not any(fnmatchcase(namespace, d) for d in project.destinations):
        problems.append(f"AppProject {project.name} has no destination for namespace {namespace!r}")
    return [
        finding(
            "MLP-APPPROJECT-NAMESPACE", p, "deploy into models-<team>, lower-case letters, digits, dashes"
        )
        for p in problems
    ]
