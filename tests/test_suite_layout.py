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


# The code's packages: a test reads them through their public names only.
CODE_PACKAGES = ("infra", "mlplat", "policies")
# Private names of other projects a test may read, each because they have no public form.
FOREIGN_PRIVATE_ALLOWED = {
    # pulumi_aws resource classes declare their arguments only on `_internal_init` (their __init__
    # takes **kwargs): the one place to ask whether a resource type takes `tags`.
    ("tests/infra/aws/test_runner_path.py", "_internal_init"),
}
# Calls that name an attribute by string: monkeypatch.setattr(module, "_helper", ...) pins one too.
BY_NAME = {"setattr", "getattr", "delattr", "hasattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_reads(path: Path, tree: ast.Module) -> Iterator[str]:
    """Every place `tree` names a private name of the code: `from mlplat.x import _y`, `x._y` on
    anything but the test's own `self`/`cls`, `setattr(x, "_y", ...)` and `"mlplat.x._y"` strings."""
    for node in ast.walk(tree):
        where = f"{_rel(path)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in CODE_PACKAGES:
            names = [*(node.module or "").split("."), *(alias.name for alias in node.names)]
            yield from (f"{where} imports {node.module}.{n}" for n in names if _private(n))
        elif isinstance(node, ast.Import):
            yield from (
                f"{where} imports {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] in CODE_PACKAGES and any(map(_private, alias.name.split(".")))
            )
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if not own and (_rel(path), node.attr) not in FOREIGN_PRIVATE_ALLOWED:
                yield f"{where} reads {ast.unparse(node)}"
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            for arg in node.args:
                text = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else ""
                dotted = text.split(".")
                if (called in BY_NAME and _private(text)) or (
                    dotted[0] in CODE_PACKAGES and any(map(_private, dotted[1:]))
                ):
                    yield f"{where} names {text!r} in {ast.unparse(func)}()"


def test_no_test_pins_a_private_helper_of_the_code() -> None:
    """A test that calls or patches a private helper breaks on every refactor that keeps behaviour, keeps
    dead helpers alive, and passes while the public path it stands in for is broken: tests go through
    what validate, preflight, cost and the other entry points expose (tests/support's own objects may
    keep private parts)."""
    offending = [place for path, tree in _modules() for place in _private_reads(path, tree)]
    assert not offending, "test through the public function instead: " + "; ".join(offending)
