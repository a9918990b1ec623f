"""A fixed wall clock for the EKS support calendar (infra/versions.py calendar_today), in a local time
zone whose day differs from UTC's, so code reading the local day shows in the tests."""

from __future__ import annotations

import contextlib
import datetime
import os
import time
from collections.abc import Iterator

import pytest

from infra import versions

# UTC+14: from 10:00 UTC on, the local day is already the next UTC day.
AHEAD_OF_UTC = "Etc/GMT-14"


@contextlib.contextmanager
def stopped_clock(monkeypatch: pytest.MonkeyPatch, instant: datetime.datetime) -> Iterator[None]:
    """`instant` is now for infra.versions, and the process's local zone AHEAD_OF_UTC, until the end."""

    class Fixed(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> Fixed:
            moment = instant.astimezone(tz)
            return cls.combine(moment.date(), moment.timetz())

    zone = os.environ.get("TZ")
    os.environ["TZ"] = AHEAD_OF_UTC
    time.tzset()
    monkeypatch.setattr(versions, "datetime", Fixed)
    try:
        yield
    finally:
        monkeypatch.undo()
        if zone is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = zone
        time.tzset()


def either_side_of_utc_midnight(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """One minute before and one after the UTC midnight that starts `day`."""
    midnight = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
    minute = datetime.timedelta(minutes=1)
    return midnight - minute, midnight + minute
