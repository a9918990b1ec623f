""".github/CODEOWNERS: who alone may approve a change to what each environment runs, read with GitHub's
rules (gitignore patterns, the last matching line wins:
https://docs.github.com/en/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners)."""

from __future__ import annotations

import pathspec
import pytest

from infra.contract import ENVIRONMENTS
from tests.support.delivery_helpers import REPO

# (pattern, owners) per line, in file order.
RULES = [
    (fields[0], fields[1:])
    for line in (REPO / ".github" / "CODEOWNERS").read_text(encoding="utf-8").splitlines()
    if (fields := line.split("#", 1)[0].split())
]
# The platform team owns everything by default (`*`); the model teams own /apps/ but for exceptions.
PLATFORM_TEAM = dict(RULES)["*"]
ML_ENGINEERS = dict(RULES)["/apps/"]
APPS = sorted(p.parent.name for p in (REPO / "apps").glob("*/overlays"))
# Files a promotion or a canary adds to an overlay beside the ones there now (apps/README.md, "Layout").
CANARY_FILES = ("canary.yaml", "canary-route.yaml")


def _owners(path: str) -> list[str]:
    """The owners GitHub requests for `path`: those of the last line whose pattern matches it."""
    owners: list[str] = []
    for pattern, names in RULES:
        if pathspec.PathSpec.from_lines("gitignore", [pattern]).match_file(path):
            owners = names
    return owners


def _overlay_files(app: str, env: str) -> list[str]:
    overlay = REPO / "apps" / app / "overlays" / env
    present = [p.relative_to(REPO).as_posix() for p in sorted(overlay.glob("*"))]
    return present + [f"apps/{app}/overlays/{env}/{name}" for name in CANARY_FILES]


@pytest.mark.parametrize("env", ENVIRONMENTS[1:])
@pytest.mark.parametrize("app", APPS)
def test_a_model_team_alone_cannot_approve_a_hand_edit_of_what_a_promotion_gates(app: str, env: str) -> None:
    """/apps/ was the ML engineers' whole, and pr.yml validates without a registry: a hand edit of
    apps/<app>/overlays/prod/model-version.yaml to a version the registry never approved passed review
    by the model team alone and Argo CD synced it. Every environment a promotion writes to (all but the
    contract's first) and the thresholds the gate holds versions to need the platform team."""
    gated = [*_overlay_files(app, env), f"apps/{app}/evaluation.yaml"]
    owners = {path: _owners(path) for path in gated}
    assert {path: who for path, who in owners.items() if who != PLATFORM_TEAM} == {}


@pytest.mark.parametrize("app", APPS)
def test_the_model_team_still_owns_its_base_and_its_first_environment(app: str) -> None:
    """Versions start in the first environment without a gate, and the base is what validate judges."""
    for path in (
        *_overlay_files(app, ENVIRONMENTS[0]),
        f"apps/{app}/base/kustomization.yaml",
        f"apps/{app}/base/inferenceservice.yaml",
    ):
        assert _owners(path) == ML_ENGINEERS != PLATFORM_TEAM, path


@pytest.mark.parametrize(
    "app", [a for a in APPS if (REPO / "apps" / a / "base" / "monitoring.yaml").is_file()]
)
def test_a_model_team_alone_cannot_change_what_prod_logs_of_people_or_how_long_it_keeps_it(app: str) -> None:
    """base/ reaches prod on merge, and base/monitoring.yaml decides which request fields are logged raw
    or hashed and each environment's retention: the model team alone could make prod keep a raw
    customer identifier for ten years, validate passing."""
    assert _owners(f"apps/{app}/base/monitoring.yaml") == PLATFORM_TEAM
