"""The embedded MLflow the retraining and demo tests register in (tests/mlplat/conftest.py `registry`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Registry:
    """Where the session's MLflow answers, and the model store its example versions were written to."""

    url: str
    store: Path
