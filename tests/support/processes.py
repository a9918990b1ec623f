"""The processes this test run has started, read from /proc: how a test sees that a helper ended the
process it started, without reaching into the helper's private handle on it."""

from __future__ import annotations

import os
from pathlib import Path


def child_processes() -> set[int]:
    """PIDs of the live (not yet reaped) children of this process. Linux only, as CI and the VM are."""
    me = str(os.getpid())
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ")".
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended while we looked
            continue
        if fields[1] == me:
            children.add(int(stat.parent.name))
    return children
