"""docs/placeholders.md is the one place listing every stand-in value (account IDs, `example-org`,
`login.example.com`, documentation address ranges, internal host names) with what to set: a
placeholder in a file it does not list would reach a real deployment unnoticed."""

from __future__ import annotations

import re
import subprocess
from fnmatch import fnmatchcase
from functools import cache

from tests.support.delivery_helpers import REPO

DOC = "docs/placeholders.md"
CODE = re.compile(r"`([^`]+)`")


def _sections() -> dict[str, list[str]]:
    """The doc's table rows (first cell) by `## ` heading."""
    sections: dict[str, list[str]] = {}
    heading = ""
    for line in (REPO / DOC).read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
        elif line.startswith("| `"):
            first_cell = re.split(r"(?<!\\)\|", line)[1]
            sections.setdefault(heading, []).append(first_cell)
    return sections


@cache
def patterns() -> list[re.Pattern[str]]:
    return [re.compile(CODE.search(cell)[1].replace("\\|", "|")) for cell in _sections()["Patterns"]]  # type: ignore[index]


def listed() -> list[str]:
    cells = _sections()["What to set"] + _sections()["Test data (nothing to set)"]
    return [path for cell in cells for path in CODE.findall(cell)]


def _covers(glob: str, path: str) -> bool:
    """Shell-style match per path segment: `*` never crosses a `/`."""
    want, have = glob.split("/"), path.split("/")
    return len(want) == len(have) and all(fnmatchcase(h, w) for h, w in zip(have, want, strict=True))


@cache
def holders() -> dict[str, list[str]]:
    """Every tracked or new (not ignored) text file holding a placeholder, with the patterns found."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    found: dict[str, list[str]] = {}
    for path in sorted(set(filter(None, out.split("\0")))):
        file = REPO / path
        if path == DOC or not file.is_file():
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        hits = [p.pattern for p in patterns() if p.search(text)]
        if hits:
            found[path] = hits
    return found


def test_every_file_holding_a_placeholder_is_listed_with_what_to_set() -> None:
    unlisted = {path: hits for path, hits in holders().items() if not any(_covers(g, path) for g in listed())}
    assert not unlisted, f"placeholders in files {DOC} does not list (add file, key, what to set): {unlisted}"


def test_every_listed_file_still_holds_a_placeholder() -> None:
    stale = [glob for glob in listed() if not any(_covers(glob, path) for path in holders())]
    assert not stale, (
        f"{DOC} lists files that hold no placeholder any more: {stale}. Filled in a real value? Delete "
        f"their rows from {DOC} in the same commit (docs/runbooks/first-deployment.md, step 1)"
    )


def test_the_placeholders_the_issue_names_are_searched_for() -> None:
    for value in (
        "111111111111",
        "222222222222",
        "333333333333",
        "example-org",
        "login.example.com",
        "203.0.113.0",
    ):
        assert any(p.search(value) for p in patterns()), f"no pattern in {DOC} finds {value!r}"
