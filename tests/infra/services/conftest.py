"""Share one recorded build per environment across the test modules of this folder."""

from __future__ import annotations

import pytest

from infra.config import RETRAINING_ENVIRONMENT
from infra.contract import ENVIRONMENTS
from tests.support.harness import Plan, build


@pytest.fixture(params=ENVIRONMENTS)
def plan(request: pytest.FixtureRequest) -> Plan:
    return build(request.param)


@pytest.fixture
def retraining_plan() -> Plan:
    """The plan of the one environment with retraining pipelines (infra/config.py RETRAINING_ENVIRONMENT;
    the others have none: test_retraining.py)."""
    return build(RETRAINING_ENVIRONMENT)
