"""Reading a Pulumi stack file safely: bounded before it is built, refused on keys that would silently
change meaning. Kept free of the program's dependencies (only PyYAML), so the policy pack, which runs
in its own virtualenv, reads stack files through the same bounds as the program.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """A stack configuration problem, each named by its key path."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"  {path}: {reason}" for path, reason in problems]
        super().__init__(f"invalid stack configuration in {source}:\n" + "\n".join(lines))


# Bounds on what a stack file may be, checked before anything is built from it. Our stack files are
# ~3 KB, 6 levels deep and use no anchors; these bounds leave a wide margin and stop a YAML bomb
# (aliases that multiply, "billion laughs") or 100,000 nested brackets before they cost memory or
# blow Python's recursion limit.
MAX_STACK_FILE_BYTES = 256 * 1024
MAX_NESTING = 32
# Anchors and aliases (alias count bound: zero) are refused outright: the Pulumi CLI expands them
# when it rewrites the file (`pulumi config set`, https://github.com/pulumi/pulumi/issues/6480), so
# they cannot be relied on, and a stack file without them cannot be a bomb.


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses what would silently change meaning: duplicate keys and merge keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _YamlRefused(
                    key_node.start_mark.line + 1, "merge keys (`<<`) are not allowed in a stack file"
                )
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise _YamlRefused(key_node.start_mark.line + 1, "mapping keys must be plain scalars")
            if key in seen:
                raise _YamlRefused(
                    key_node.start_mark.line + 1,
                    f"duplicate key {key!r} (first at line {seen[key]}): the last one would silently win",
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class _YamlRefused(Exception):
    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason


def _check_shape(text: str) -> None:
    """Walk the event stream (no objects built) and refuse anchors, aliases and deep nesting."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _YamlRefused(line, "anchors and aliases are not allowed in a stack file")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise _YamlRefused(line, f"nested more than {MAX_NESTING} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def parse_stack_yaml(path: Path) -> Any:
    """The document of a stack file, bounded (size, nesting, no aliases) before it is built and
    refused on duplicate or merge keys; any problem is a ConfigError naming the line."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_STACK_FILE_BYTES + 1)
    except OSError as err:
        raise ConfigError(str(path), [("(file)", f"cannot read: {err.strerror}")]) from None
    if len(raw) > MAX_STACK_FILE_BYTES:
        raise ConfigError(
            str(path), [("(file)", f"larger than {MAX_STACK_FILE_BYTES} bytes: not a stack file")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(str(path), [("(file)", f"not UTF-8 text (byte {err.start})")]) from None
    try:
        _check_shape(text)
        loader = _StrictLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except _YamlRefused as err:
        raise ConfigError(str(path), [(f"line {err.line}", err.reason)]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ConfigError(str(path), [(where, f"not valid YAML: {getattr(err, 'problem', err)}")]) from None
