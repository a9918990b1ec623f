"""Reading repository YAML without trusting it: every file is bounded before a parser sees it.

A file under review can be hostile: a YAML bomb (anchors and aliases that expand a few hundred
bytes into billions of nodes), nesting deep enough to exhaust a parser's stack (PyYAML builds
Python objects recursively, so a few hundred levels end in RecursionError; libyaml's composer
recurses in C), a file of gigabytes, or bytes that are not UTF-8. `screen` refuses all of these
with `UnsafeInput`, which names the file (and the line where it can), so callers report a finding
or a clear error instead of crashing. It must also protect kustomize, which parses the same files
itself, so it works on the raw bytes and never builds the document:

1. size: at most MAX_BYTES, read without trusting the file's reported size;
2. strict UTF-8 (what YAML 1.2 and kustomize read), with the line of the first bad byte;
3. a cheap upper bound on nesting from the raw text: indentation levels, compact `- - -`
   indicators and every `[`/`{` of the document (each flow collection starts with one; counting
   those inside quoted strings too only makes the bound higher);
4. only when that bound exceeds MAX_DEPTH, or the text has something that may be an alias, the
   exact figures from libyaml's event stream, which is iterative and pulled lazily (so it stops at
   the first level too deep): nesting depth, and the node count with every alias expanded by
   arithmetic rather than by building anything.
The repository's own files have no aliases and shallow nesting, so they take steps 1-3 only.

Sources (PyYAML 6.0.3, github.com/yaml/pyyaml): composer.py `compose_node` recurses once per level
(and so does `_compose_node` in the C extension, yaml/_yaml.pyx), constructor.py `construct_object`
too; an alias is constructed as the same object (`constructed_objects[node]`), which is why a bomb
costs PyYAML little and kustomize, which expands aliases into copies, a lot. libyaml's own parser
keeps its state on heap stacks (src/parser.c, `parser->states`), so pulling events is safe at any depth.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from mlplat.findings import Finding

MAX_BYTES = 5 * 1024 * 1024  # the largest manifest in this repository is ~10 KB; CRDs are < 1 MB
# Kubernetes objects nest ~20 levels (a pod template's probe), CRD schemas ~40; PyYAML's Python
# constructor spends ~3 frames a level against Python's default limit of 1000.
MAX_DEPTH = 100
# Nodes a file may hold once its aliases are expanded: kustomize (and checkov, which reads the
# rendered output) expand aliases into real copies. Only counted for files that use aliases.
MAX_EXPANDED_NODES = 100_000
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_INDICATORS = re.compile(r"(?:[-?:](?:[ \t]+|$))*")
# Something that may be an alias (`*name` after a space, a flow indicator or at a line start):
# over-matching only costs the exact check.
_ALIAS = re.compile(r"(?:^|[\s\[{,:])\*[^\s\[\]{},]")
# Line breaks as PyYAML reads them (YAML 1.1: also NEL, LS, PS); a scanner splitting on fewer would
# see one long line where the parser sees a deep block structure.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_DOCUMENT_MARKER = re.compile(r"(?:---|\.\.\.)(?:[ \t]|$)")


class UnsafeInput(Exception):
    """A file that cannot be read safely; `reason` says why, `line` where (when known)."""

    def __init__(self, name: str, reason: str, line: int | None = None) -> None:
        where = f"{name}:{line}" if line else name
        super().__init__(f"{where}: cannot be read safely: {reason}")
        self.name, self.reason, self.line = name, reason, line

    def finding(self, env: str | None) -> Finding:
        return Finding(
            self.name, "-", "MLP-YAML", f"cannot be read safely: {self.reason}",
            f"keep the file under {MAX_BYTES // (1024 * 1024)} MiB, UTF-8, nested at most {MAX_DEPTH} "
            f"levels deep and under {MAX_EXPANDED_NODES} nodes with its aliases expanded",
            env, self.line,
        )  # fmt: skip


def read_text(path: Path, name: str) -> str:
    """The text of a regular file that passed `screen`; raises UnsafeInput (or OSError)."""
    # O_NONBLOCK: opening a FIFO planted in the tree must not hang the run.
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(handle, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise UnsafeInput(name, "not a regular file")
        data = stream.read(MAX_BYTES + 1)
    return screen(data, name)


class Unreadable(Exception):
    """A file to read that is missing, unsafe or not YAML; the message names it and says which.
    `missing` tells a file that is not there apart, for callers that say where it must live."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def read_document(path: Path, name: str) -> tuple[str, Any]:
    """The text of a screened file and its one document (PyYAML's safe loader); any problem is an
    `Unreadable` naming the file, so each caller only chooses its own exception for it."""
    try:
        text = read_text(path, name)
        return text, yaml.load(text, Loader=FAST_LOADER)
    except FileNotFoundError:
        raise Unreadable(f"{name} does not exist", missing=True) from None
    except UnsafeInput as err:
        raise Unreadable(str(err)) from None
    except (RecursionError, MemoryError):  # not reachable past `screen`; never a crash if it is
        raise Unreadable(str(UnsafeInput(name, "too deeply nested or too large to parse"))) from None
    except (OSError, yaml.YAMLError) as err:
        raise Unreadable(f"{name} cannot be read: {err}") from None


def stack_values(path: Path) -> dict[str, Any]:
    """A Pulumi stack file's `mlplat:` values (`infra.config.read_stack_file`), screened first.

    Every problem is an `infra.config.ConfigError` naming the file, as for any other bad stack file
    (an unreadable file is left to read_stack_file, which says so in those words).
    """
    from infra.config import ConfigError, read_stack_file

    try:
        read_text(path, str(path))
    except UnsafeInput as err:
        where = f"line {err.line}" if err.line else "(file)"
        raise ConfigError(str(path), [(where, f"cannot be read safely: {err.reason}")]) from None
    except OSError:
        pass
    return read_stack_file(path)


def screen(data: bytes, name: str) -> str:
    """`data` decoded, if it is safe to hand to a YAML parser (and to kustomize); else UnsafeInput."""
    if len(data) > MAX_BYTES:
        raise UnsafeInput(name, f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise UnsafeInput(name, f"not UTF-8 (byte 0x{data[err.start]:02x})", line) from None
    if _nesting_bound(text) > MAX_DEPTH or _ALIAS.search(text):
        _measure(text, name)
    return text


def _nesting_bound(text: str) -> int:
    """An upper bound on any document's nesting depth, read off the raw lines."""
    indents: list[int] = []
    flow = bound = 0
    for line in _LINE_BREAK.split(text):
        if _DOCUMENT_MARKER.match(line):
            indents, flow = [], 0  # a flow collection cannot span documents
        body = line.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        indent = len(line) - len(body)
        while indents and indents[-1] >= indent:
            indents.pop()
        indents.append(indent)
        compact = _INDICATORS.match(body)
        flow += body.count("[") + body.count("{")
        # A block collection nests deeper only by indenting further, except a sequence under a
        # mapping key, which may share the key's indentation: at most two levels per indentation.
        indicators = sum(compact[0].count(c) for c in "-?:") if compact else 0
        depth = 2 * len(indents) + indicators + flow
        bound = max(bound, depth)
    return bound


def _measure(text: str, name: str) -> None:
    """Exact nesting depth and expanded node count from libyaml's events; UnsafeInput past a limit.

    A syntax error is not this function's business: the caller's parser reports it as usual.
    """
    anchors: dict[str, int] = {}
    aliased = False  # the node count matters only once aliases multiply it
    open_nodes: list[list[Any]] = [[0, None]]  # [nodes so far, anchor] per open collection
    try:
        for event in yaml.parse(text, Loader=FAST_LOADER):
            if isinstance(event, yaml.CollectionStartEvent):
                if len(open_nodes) > MAX_DEPTH:
                    raise UnsafeInput(name, f"nested more than {MAX_DEPTH} levels deep", _line(event))
                open_nodes.append([1, event.anchor])
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                size, anchor = open_nodes.pop()
            elif isinstance(event, yaml.ScalarEvent):
                size, anchor = 1, event.anchor
            elif isinstance(event, yaml.AliasEvent):
                size, anchor, aliased = anchors.get(event.anchor or "", 1), None, True
            else:
                continue
            if anchor is not None:
                anchors[anchor] = size
            open_nodes[-1][0] += size
            if aliased and open_nodes[-1][0] > MAX_EXPANDED_NODES:
                raise UnsafeInput(
                    name, f"more than {MAX_EXPANDED_NODES} nodes once its aliases are expanded "
                    "(a YAML bomb?)", _line(event),
                )  # fmt: skip
    except yaml.YAMLError:
        return


def _line(event: yaml.Event) -> int | None:
    return event.start_mark.line + 1 if event.start_mark is not None else None
