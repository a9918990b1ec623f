"""Every file a kustomize target reads, screened before kustomize reads it (`mlplat.safe_yaml`).

kustomize parses the files itself, so a YAML bomb or absurd nesting must be caught before it runs,
not in the output it would produce: the kustomization tree is walked the way kustomize walks it
(each local file and folder it references, recursively), every file is screened once per run, and a
target with an unsafe file is reported and not rendered. Files kustomize only copies as data
(generator `files:`/`envs:`) are not YAML and not screened; remote references are not walked.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from mlplat import safe_yaml
from mlplat.validation.render import _references
from mlplat.validation.targets import KUSTOMIZATION_FILES, Target

Problems = list[safe_yaml.UnsafeInput]


def unsafe_targets(targets: list[Target], root: Path) -> dict[Target, Problems]:
    """Kustomize targets with at least one file that cannot be read safely, and those files."""
    screen = _Screen(root)
    found = {}
    for target in (t for t in targets if t.kustomize):
        problems = screen.folder(target.path(root).resolve(), set())
        if problems:
            found[target] = problems
    return found


def unsafe_files(folder: Path, root: Path) -> Problems:
    """The unsafe files of the kustomization in `folder` and of everything it references."""
    return _Screen(root).folder(folder.resolve(), set())


class _Screen:
    """One run's verdicts: each file is read once, each folder's tree walked once (apps share bases
    and components, so 600 overlays are a few hundred distinct folders)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.files: dict[Path, safe_yaml.UnsafeInput | str] = {}  # the problem, or the text
        self.folders: dict[Path, Problems] = {}

    def folder(self, folder: Path, walking: set[Path]) -> Problems:
        if folder in self.folders:
            return self.folders[folder]
        if folder in walking:  # a cycle: kustomize refuses it in its own words
            return []
        walking.add(folder)
        problems: Problems = []
        kfile = next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)
        text = self.file(kfile, problems) if kfile is not None else None
        try:
            spec = yaml.load(text, Loader=safe_yaml.FAST_LOADER) if text else None
        except yaml.YAMLError:  # kustomize reports it, with the render findings
            spec = None
        for ref in _references(spec if isinstance(spec, dict) else {}):
            path = Path(os.path.normpath(folder / ref))  # cheap; folders are resolved (symlink cycles)
            if path.is_dir():
                problems += [p for p in self.folder(path.resolve(), walking) if p not in problems]
            elif path.is_file():
                self.file(path, problems)
        walking.discard(folder)
        self.folders[folder] = problems
        return problems

    def file(self, path: Path, problems: Problems) -> str | None:
        """The text of `path` when it is safe to parse, else None (its problem added to `problems`)."""
        if path not in self.files:
            try:
                self.files[path] = safe_yaml.read_text(path, self._name(path))
            except safe_yaml.UnsafeInput as err:
                self.files[path] = err
            except OSError:
                self.files[path] = ""  # unreadable: kustomize says so in its own words
        found = self.files[path]
        if isinstance(found, str):
            return found
        if found not in problems:
            problems.append(found)
        return None

    def _name(self, path: Path) -> str:
        """Repo-relative, as findings name files (the path is resolved already)."""
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
