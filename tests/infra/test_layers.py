"""The program sits below the tools (docs/architecture.md): nothing under infra/ imports mlplat/.

`pulumi up` runs infra/ with the deploy role in an environment that installs the program alone, and the
drift image copies a handful of infra/ files; an import of mlplat from infra/ (even inside a function,
where it runs only on the path that needs it) would reach the CLI package from the program."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_program_never_imports_the_tools() -> None:
    offending = []
    for path in sorted((REPO / "infra").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offending += [
                f"{path.relative_to(REPO)}:{node.lineno}: {name}"
                for name in names
                if name.partition(".")[0] == "mlplat"
            ]
    assert not offending, (
        "infra/ imports mlplat/ (move what it needs beside infra/contract.py):\n" + "\n".join(offending)
    )
