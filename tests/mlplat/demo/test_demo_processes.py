"""`make demo` never leaves a process behind, even when a step fails half-way."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mlplat import demo


def test_model_server_that_never_gets_ready_is_stopped_not_orphaned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []

    def never_ready(url: str, timeout: float, process: Any) -> None:
        started.append(process)
        raise TimeoutError(f"{url} did not answer")

    monkeypatch.setattr(demo, "wait_http", never_ready)
    run = demo.Demo(tmp_path)
    run.logs.mkdir(parents=True)
    with pytest.raises(TimeoutError):
        run.start_server(dict(os.environ))
    (process,) = started
    assert process.poll() is not None, "the model server outlived the failed start"
