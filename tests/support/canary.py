"""A prod canary of the iris example as `promote --canary` writes it, for the registry tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlplat import promote

# The example app the registry tests promote (mlplat/example_models.py).
APP = "iris-classifier"

PROD = f"apps/{APP}/overlays/prod"


CANARY = f"{PROD}/canary.yaml"


CANARY_ROUTE = f"{PROD}/canary-route.yaml"


KUSTOMIZATION = f"{PROD}/kustomization.yaml"


def add_canary_by_hand(root: Path, version: str, percent: int = 10) -> None:
    """A canary as promote --canary writes it, without asking the registry (for refusal tests)."""
    kustomization = root / KUSTOMIZATION
    text = promote.canary_text(APP, APP, "prod", version, percent, uri(version), stable(root))
    route = promote.canary_route_text(APP, APP, "prod", "1", version, percent)
    promote.apply_changes(
        [
            promote.Change(root / CANARY, text),
            promote.Change(root / CANARY_ROUTE, route),
            promote.Change(kustomization, promote.kustomization_with_canary(kustomization, root, add=True)),
        ]
    )


def stable(root: Path, app: str = APP) -> dict[str, Any]:
    """The prod stable InferenceService a canary is sized against, as `promote --canary` reads it."""
    return promote.stable_inference_service(root, app, "prod", promote.read_canary(root, app, "prod"))


def uri(version: str) -> str:
    return f"s3://mlplat-models/{APP}/{version}"
