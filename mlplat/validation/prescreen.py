"""Every file a kustomize target reads, screened before kustomize reads it (`mlplat.safe_yaml`).

kustomize parses the files itself, so a YAML bomb or absurd nesting must be caught before it runs,
not in the output it would produce: the kustomization tree is walked the way kustomize walks it
(each local file and folder it references, recursively), every file is screened once per run, and a
target with an unsafe file is reported and not rendered. Files kustomize only copies as data
(generator `files:`/`envs:`) are not YAML and not screened; remote references are not walked.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mlplat import safe_yaml
from mlplat.validation import rel
from mlplat.validation.render import _references
from mlplat.validation.targets import KUSTOMIZATION_FILES, Target

Screened = dict[Path, safe_yaml.UnsafeInput | str]  # the problem, or the text


def unsafe_targets(targets: list[Target], root: Path) -> dict[Target, list[safe_yaml.UnsafeInput]]:
    """Kustomize targets with at least one file that cannot be read safely, and those files."""
    screened: Screened = {}
    found = {}
    for target in (t for t in targets if t.kustomize):
        problems = unsafe_files(target.path(root), root, screened)
        if problems:
            found[target] = problems
    return found


def unsafe_files(folder: Path, root: Path, screened: Screened | None = None) -> list[safe_yaml.UnsafeInput]:
    """The unsafe files of the kustomization in `folder` and of everything it references."""
    screened = {} if screened is None else screened
    problems: list[safe_yaml.UnsafeInput] = []
    _walk(folder.resolve(), root, screened, set(), problems)
    return problems


def _walk(
    folder: Path, root: Path, screened: Screened, seen: set[Path], problems: list[safe_yaml.UnsafeInput]
) -> None:
    if folder in seen:
        return
    seen.add(folder)
    kfile = next((folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file()), None)
    if kfile is None:
        return
    text = _screen(kfile, root, screened, problems)
    try:
        spec = yaml.load(text, Loader=safe_yaml.FAST_LOADER) if text is not None else None
    except yaml.YAMLError:  # kustomize reports it, with the render findings
        return
    for ref in _references(spec if isinstance(spec, dict) else {}):
        path = (folder / ref).resolve()
        if path.is_dir():
            _walk(path, root, screened, seen, problems)
        elif path.is_file():
            _screen(path, root, screened, problems)


def _screen(path: Path, root: Path, screened: Screened, problems: list[safe_yaml.UnsafeInput]) -> str | None:
    """The text of `path` when it is safe to parse, else None (its problem added once per target)."""
    if path not in screened:
        try:
            screened[path] = safe_yaml.read_text(path, rel(path, root))
        except safe_yaml.UnsafeInput as err:
            screened[path] = err
        except OSError:
            screened[path] = ""  # unreadable: kustomize says so in its own words
    found = screened[path]
    if isinstance(found, str):
        return found
    if found not in problems:
        problems.append(found)
    return None
