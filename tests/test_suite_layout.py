"""The suite's own shape (issue #15): test folders are packages laid out like the code, what tests share
lives in tests/support, and every Pulumi test runs the one mock engine (mlplat/mocks.py).

Read from the source with `ast`, so a helper smuggled back into a test module, a second mock engine or
a `sys.path` edit fails here rather than in whichever test happened to import it first."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# Data, not code: fixture trees hold sample files that only look like Python.
DATA = TESTS / "fixtures"
# .github/scripts are run by path in the workflows (python .github/scripts/<name>.py), not a package:
# the workflow tests import them the way those runs see them.
SYS_PATH_ALLOWED = {"tests/github/test_workflows.py"}


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(TESTS.rglob("*.py")):
        if DATA not in path.parents:
            yield path, ast.parse(path.read_text(), str(path))


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _imported_modules(path: Path, tree: ast.Module) -> Iterator[str]:
    """Dotted names of every module `path` imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(REPO).parent.parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.level and node.module else node.module or base
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def test_every_test_folder_is_a_package() -> None:
    """Without it pytest puts the folder itself on sys.path: tests/infra and tests/mlplat then shadow
    the real infra and mlplat as namespace packages, and two test files may not share a name."""
    folders = {path.parent for path, _ in _modules()}
    missing = sorted(_rel(folder) for folder in folders if not (folder / "__init__.py").is_file())
    assert not missing, f"test folders without __init__.py: {missing}"


def test_no_test_module_imports_another_test_module() -> None:
    offending = [
        f"{_rel(path)} imports {name}"
        for path, tree in _modules()
        for name in _imported_modules(path, tree)
        if name.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert not offending, "shared test code belongs in tests/support: " + "; ".join(offending)


def test_no_test_module_edits_sys_path() -> None:
    offending = [
        f"{_rel(path)}:{node.lineno}"
        for path, tree in _modules()
        if _rel(path) not in SYS_PATH_ALLOWED
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    ]
    assert not offending, f"sys.path edited (import from tests.support instead): {offending}"


def test_every_pulumi_test_runs_the_one_mock_engine() -> None:
    """A test that sets its own mocks checks components against answers `mlplat plan` never gives."""
    offending = [
        f"{_rel(path)}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr in ("set_mocks", "Mocks", "MockMonitor"))
        or (isinstance(node, ast.ImportFrom) and node.module in ("pulumi.runtime.mocks",))
    ]
    assert not offending, f"mocks set up outside mlplat/mocks.py (use the mock_engine fixture): {offending}"
