"""Shared pieces of the demo tests: a demo run in the test's folder, and model servers that never answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlplat import demo


@pytest.fixture
def demo_run(tmp_path: Path) -> demo.Demo:
    """A demo run writing under `tmp_path`, its log folder made as `Demo.run` makes it before any step."""
    run = demo.Demo(tmp_path)
    run.logs.mkdir(parents=True)
    return run


@pytest.fixture
def servers_ready(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[Any]]:
    """servers_ready(n): the first `n` model servers the demo starts answer and the next one never does
    (its readiness wait times out); returns the processes the demo started, in order, as it starts them.
    How a test sees that a failed start stops every server it began, not only the one that failed."""

    def ready(n: int) -> list[Any]:
        started: list[Any] = []

        def wait_http(url: str, timeout: float, process: Any) -> None:
            started.append(process)
            if len(started) > n:
                raise TimeoutError(f"{url} did not answer")

        monkeypatch.setattr(demo, "wait_http", wait_http)
        return started

    return ready
