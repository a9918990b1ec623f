"""The AWS layer's rules hold in every environment: its plan tests take `env` and that environment's
offline plan from here instead of each parametrizing and planning on its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.config import ENVIRONMENTS


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> str:
    """Each environment in turn (a test parametrizing `env` itself overrides this)."""
    name: str = request.param
    return name


@pytest.fixture
def plan(offline_plan: Callable[[str], dict[str, Any]], env: str) -> dict[str, Any]:
    """The offline plan of `env` (planned once per session by tests/conftest.py)."""
    return offline_plan(env)
