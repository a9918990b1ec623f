"""Share one recorded build per environment across the test modules of this folder."""

from __future__ import annotations

import pytest

from infra.contract import ENVIRONMENTS
from tests.support.harness import Plan, build


@pytest.fixture(params=ENVIRONMENTS)
def plan(request: pytest.FixtureRequest) -> Plan:
    return build(request.param)
