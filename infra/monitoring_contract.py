"""`apps/<app>/base/monitoring.yaml`: what an app's inference logs may hold and how its drift is judged.

The file sits in the app's base so that kustomize can turn it into the ConfigMap the privacy
marshaller reads on the cluster (`configMapGenerator`, apps/components/inference-logging): kustomize
reads generator files only at or below the kustomization's own folder (its default load restrictor),
and refuses a component that contains the overlay being built, so `apps/<app>/` could not.

Every input field the model receives is named with a policy: `keep` (stored as sent), `hash` (stored
as an HMAC-SHA256 with the environment's key, so equal values still join without being readable) or
`drop` (never stored). A field not named is dropped: logging is opt-in per field. Fields listed under
`personal` identify a person; prod refuses to `keep` them. `features` are the kept numeric fields the
drift job compares with the version's reference data.

It lives in infra/, beside contract.py, because the program reads it too (each app's `retention_days`
sets its logs bucket's lifecycle, infra/services/model_monitoring.py) and infra/ never imports mlplat/;
mlplat/monitoring/contract.py re-exports it for the tools (validate, the marshaller, the drift job).
Pydantic, PyYAML and infra/contract.py (standard library) only, all in the drift image (images/monitor
copies this file and the contract).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from infra.config import PROD_MIN_INFERENCE_LOG_DAYS as MINIMUM
from infra.contract import ENVIRONMENTS, PRODUCTION, Environment, app_environments

FILE = "monitoring.yaml"
# libyaml when PyYAML was built with it (every wheel is): safe, and ~10x faster than the Python loader.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Policy = Literal["keep", "hash", "drop"]
FieldName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")]


class ContractError(Exception):
    """The monitoring file is missing or wrong; the message names the file and the key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftSettings(_Model):
    # Evidently's normed Wasserstein distance (distance / the reference's standard deviation) is stable
    # on the small reference samples of tabular models: with ~100 reference rows and no shift it stays
    # near 0.1-0.2, while a one-sigma shift scores ~1. PSI's bins are noisy at that size (0.25 with no
    # shift was measured), so it is offered for large references only.
    method: Literal["wasserstein", "psi"] = Field(
        "wasserstein", description="Per-feature drift score (Evidently)."
    )
    threshold: float = Field(0.3, gt=0, le=10, description="A feature drifts when its score exceeds this.")
    dataset_share: float = Field(
        0.5, gt=0, le=1, description="The dataset drifts when at least this share of features drift."
    )
    # Below ~500 rows the distance of a same-distribution window to a ~100-row reference is noisy
    # enough to cross 0.3 on some feature in roughly one run in five (measured on iris).
    min_requests: int = Field(500, ge=10, le=10_000_000, description="Fewer logged rows: no verdict.")


Days = Annotated[int, Field(ge=1, le=3650)]


class MonitoringContract(_Model):
    fields: dict[FieldName, Policy] = Field(min_length=1, description="Policy per input field.")
    personal: list[FieldName] = Field(default_factory=list, description="Fields that identify a person.")
    headers: list[str] = Field(
        default_factory=list, description="Logged request headers (metadataHeaders) that may be stored."
    )
    features: list[FieldName] = Field(min_length=1, description="Kept numeric fields compared for drift.")
    prediction: Literal["class", "value"] = Field(description="A class label or a number per row.")
    drift: DriftSettings = Field(default_factory=DriftSettings)
    # Keyed by the contract's environments (infra/contract.py): a name it does not know is refused here.
    # Which ones an app owes depends on where it deploys (its overlays), which this file cannot see:
    # `load` checks that, so a new environment in the contract needs no edit of apps that do not deploy
    # there, and an app that does is refused, naming it, rather than the program finding no value while
    # it writes the logs bucket's lifecycle rules.
    retention_days: dict[Environment, Days] = Field(
        description="How long the logs bucket keeps records, per environment the app deploys to."
    )

    @model_validator(mode="after")
    def _consistent(self) -> MonitoringContract:
        unknown = [f for f in [*self.personal, *self.features] if f not in self.fields]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not listed under fields")
        not_kept = [f for f in self.features if self.fields[f] != "keep"]
        if not_kept:
            raise ValueError(f"features {', '.join(not_kept)} must be kept to be compared for drift")
        # The most strict environment named (the contract's order) never keeps logs for less than the least.
        named = [env for env in ENVIRONMENTS if env in self.retention_days]
        if named and self.retention_days[named[-1]] < self.retention_days[named[0]]:
            raise ValueError(f"retention_days.{named[-1]} must not be shorter than {named[0]}")
        # An app's own rule expires its logs before the bucket's does: production's minimum holds for it too.
        short = sorted(env for env in PRODUCTION if self.retention_days.get(env, MINIMUM) < MINIMUM)
        if short:
            raise ValueError(
                f"retention_days.{short[0]}: production keeps inference logs at least {MINIMUM} days "
                "(infra/config.py PROD_MIN_INFERENCE_LOG_DAYS: an incident is investigated against them)"
            )
        return self

    def violations_for(self, env: str) -> list[str]:
        """Why this contract may not log in `env` (production never stores a personal field as sent)."""
        if env not in PRODUCTION:
            return []
        return [
            f"personal field {f!r} is kept raw in {env}: hash or drop it"
            for f in self.personal
            if self.fields[f] == "keep"
        ]

    def require_allowed_in(self, env: str, where: str) -> None:
        """Raise ContractError naming `where` when this contract may not log in `env`."""
        problems = self.violations_for(env)
        if problems:
            raise ContractError(f"{where}: {problems[0]}")


def path_of(app: str, repo_root: Path) -> Path:
    return repo_root / "apps" / app / "base" / FILE


def where(app: str) -> str:
    """How findings and errors name an app's contract file."""
    return f"apps/{app}/base/{FILE}"


def load(app: str, repo_root: Path, env: str | None = None) -> MonitoringContract:
    """The app's contract, checked, with a retention for every environment the app has an overlay for;
    with `env`, also what that environment forbids."""
    contract = load_file(path_of(app, repo_root), where(app), env)
    deployed = app_environments(repo_root / "apps" / app)
    missing = [e for e in deployed if e not in contract.retention_days]
    if missing:
        raise ContractError(
            f"{where(app)}: retention_days: no value for {', '.join(missing)}, where the app deploys "
            f"(apps/{app}/overlays/{missing[0]})"
        )
    return contract


def load_file(path: Path, where: str, env: str | None = None) -> MonitoringContract:
    """A contract file read from anywhere (on the cluster: the mounted ConfigMap); `where` names it."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except FileNotFoundError:
        raise ContractError(f"{where} does not exist: the app is not monitored") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ContractError(f"{where} cannot be read: {err}") from None
    try:
        contract = MonitoringContract.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        # Pydantic places an invalid key of a mapping at `<key>.[key]`; the file only has `<key>`.
        key = ".".join(str(p) for p in first["loc"] if p != "[key]") or "(top level)"
        raise ContractError(f"{where}: {key}: {first['msg']}") from None
    if env:
        contract.require_allowed_in(env, where)
    return contract
