"""`make demo` never leaves a process behind, even when a step fails half-way."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from mlplat import demo


def test_model_server_that_never_gets_ready_is_stopped_not_orphaned(
    demo_run: demo.Demo, servers_ready: Callable[[int], list[Any]]
) -> None:
    started = servers_ready(0)
    with pytest.raises(TimeoutError):
        demo_run.start_server(dict(os.environ))
    (process,) = started
    assert process.poll() is not None, "the model server outlived the failed start"
