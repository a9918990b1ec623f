"""Make the harness importable and share one recorded build per environment across test modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Plan, build


@pytest.fixture(params=["dev", "staging", "prod"])
def plan(request: pytest.FixtureRequest) -> Plan:
    return build(request.param)
