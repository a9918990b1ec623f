"""Shared helpers of the mlplat checkov checks: KServe shapes, per-environment parameters, safe reads.

checkov puts this folder on `sys.path` while loading external checks, so every check imports this
module as `_mlplat` (it registers no check itself). The checks run inside checkov's virtualenv:
only the standard library and checkov may be imported here, never the `infra` or `mlplat` packages.
The platform contract's names come from their one owner, infra/contract.py, loaded by its path: that
module is standard library only by design (docs/architecture.md), so it runs in this virtualenv as is.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeGuard

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.kubernetes.checks.resource.base_spec_check import BaseK8Check


def _platform_contract() -> ModuleType:
    """infra/contract.py of this checkout, without putting the checkout on checkov's `sys.path`."""
    path = Path(__file__).resolve().parents[3] / "infra" / "contract.py"
    spec = importlib.util.spec_from_file_location("mlplat_contract", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: what the module defines may look itself up
    spec.loader.exec_module(module)
    return module


_CONTRACT = _platform_contract()

CONTEXT_ENV_VAR = "MLPLAT_POLICY_CONTEXT"
ENV_LABEL: str = _CONTRACT.ENVIRONMENT_LABEL
# A resource without the environment label is held to the strictest environment's limits (the last in
# promotion order, prod): never a silent pass.
FALLBACK_ENV: str = _CONTRACT.ENVIRONMENTS[-1]
GPU_RESOURCE = "nvidia.com/gpu"
GPU_POOL_LABEL: str = _CONTRACT.GPU_POOL_LABEL
# Who serves what.
TEAM_LABEL: str = _CONTRACT.TEAM_LABEL
MODEL_LABEL: str = _CONTRACT.MODEL_LABEL
MODEL_VERSION_ANNOTATION: str = _CONTRACT.MODEL_VERSION_ANNOTATION
ISVC = "InferenceService"
SERVING_RUNTIME = "ServingRuntime"
POD_KINDS = (ISVC, SERVING_RUNTIME)
COMPONENTS = ("predictor", "transformer", "explainer")
# Container-like model specs of a KServe component: `model:` and the older per-framework keys.
MODEL_SPEC_KEYS = (
    "model", "sklearn", "xgboost", "lightgbm", "tensorflow", "pytorch", "triton",
    "onnx", "pmml", "paddle", "huggingface", "art", "alibi",
)  # fmt: skip
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MODEL_VERSION = re.compile(r"^[1-9][0-9]{0,9}$")
_LINE_MARKERS = ("__startline__", "__endline__")


# --- safe reads: manifests may be malformed; a check reports, it never raises ---------------------


def mapping(value: Any) -> dict[str, Any]:
    """`value` as a dict without checkov's line markers (checkov turns annotations into a list of dicts)."""
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            if isinstance(item, dict):
                merged.update(item)
        value = merged
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if k not in _LINE_MARKERS}


def dicts(value: Any) -> list[dict[str, Any]]:
    """The dict items of a list (anything else in it, or a non-list, is ignored)."""
    return [mapping(v) for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def labels(conf: dict[str, Any]) -> dict[str, Any]:
    return mapping(mapping(conf.get("metadata")).get("labels"))


def annotations_of(conf: dict[str, Any]) -> dict[str, Any]:
    return mapping(mapping(conf.get("metadata")).get("annotations"))


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def quantity(value: Any) -> str:
    """A resource quantity as text ("" when unset), so 1 and "1" compare equal."""
    return "" if value is None or isinstance(value, (dict, list, bool)) else str(value).strip()


# --- KServe shapes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Container:
    path: str  # key path for the report, e.g. spec/predictor/containers/[0]
    conf: dict[str, Any]
    is_model_spec: bool  # `model:`/framework spec: the image comes from the ServingRuntime

    def resources(self, section: str) -> dict[str, Any]:
        return mapping(mapping(self.conf.get("resources")).get(section))


@dataclass(frozen=True)
class PodSpec:
    """A pod template as written in git: one KServe component, or a ServingRuntime's spec."""

    path: str  # spec/predictor, spec/transformer, spec/explainer, or spec
    conf: dict[str, Any]

    def containers(self) -> list[Container]:
        found = [
            Container(f"{self.path}/{key}", mapping(self.conf[key]), True)
            for key in MODEL_SPEC_KEYS
            if isinstance(self.conf.get(key), dict)
        ]
        for key in ("containers", "initContainers"):
            items = self.conf.get(key)
            for i, item in enumerate(items if isinstance(items, list) else []):
                if isinstance(item, dict):
                    found.append(Container(f"{self.path}/{key}/[{i}]", mapping(item), False))
        return found

    def gpu_containers(self) -> list[Container]:
        return [
            c
            for c in self.containers()
            if GPU_RESOURCE in c.resources("requests") or GPU_RESOURCE in c.resources("limits")
        ]


def pod_specs(conf: dict[str, Any]) -> list[PodSpec]:
    """Every pod template of an InferenceService (per component) or a ServingRuntime."""
    spec = mapping(conf.get("spec"))
    if conf.get("kind") == ISVC:
        return [
            PodSpec(f"spec/{name}", mapping(spec[name]))
            for name in COMPONENTS
            if isinstance(spec.get(name), dict)
        ]
    if conf.get("kind") == SERVING_RUNTIME:
        return [PodSpec("spec", spec)]
    return []


# --- per-environment parameters, written by mlplat/policy_scan.py from infra.config -------------


@dataclass(frozen=True)
class EnvParams:
    name: str
    max_replicas_per_app: int
    min_replicas: int
    model_store_uri: str
    allowed_registries: tuple[str, ...]
    gpu_pools: tuple[str, ...]


_context_cache: dict[str, dict[str, EnvParams] | None] = {}


def _parse_env(name: str, raw: Any) -> EnvParams | None:
    raw = mapping(raw)
    try:
        params = EnvParams(
            name=name,
            max_replicas_per_app=int(raw["max_replicas_per_app"]),
            min_replicas=int(raw["min_replicas"]),
            model_store_uri=str(raw["model_store_uri"]).rstrip("/"),
            allowed_registries=tuple(str(r).rstrip("/") for r in raw["allowed_registries"]),
            gpu_pools=tuple(str(p) for p in raw.get("gpu_pools", [])),
        )
    except (KeyError, TypeError, ValueError):
        return None
    return params if params.model_store_uri and params.allowed_registries else None


def load_context() -> dict[str, EnvParams] | None:
    """Environments named in the context file; None when it is not given or cannot be read."""
    path = os.environ.get(CONTEXT_ENV_VAR, "")
    if path not in _context_cache:
        try:
            with open(path, encoding="utf-8") as handle:
                raw = json.load(handle)
        except (OSError, ValueError):
            raw = None
        if isinstance(raw, dict):
            parsed = {str(name): _parse_env(str(name), value) for name, value in raw.items()}
            _context_cache[path] = {name: p for name, p in parsed.items() if p is not None}
        else:
            _context_cache[path] = None
    return _context_cache[path]


def env_params(conf: dict[str, Any]) -> tuple[EnvParams | None, str]:
    """The limits of the resource's environment, or None and the key path that explains why not.

    No `mlplat/environment` label: held to prod's limits. No context file, or an environment the
    context does not know: None, and env-dependent checks fail instead of passing silently.
    """
    env = labels(conf).get(ENV_LABEL) or FALLBACK_ENV
    context = load_context()
    if context is None:
        return None, f"(no policy context: set {CONTEXT_ENV_VAR}; run through `mlplat validate`)"
    params = context.get(str(env))
    if params is None:
        return None, f"metadata/labels/{ENV_LABEL} (no policy context for environment {env!r})"
    return params, ""


def per_component(conf: dict[str, Any], judge: Callable[[PodSpec, EnvParams], list[str]]) -> list[str]:
    """What `judge` finds wrong with each component (predictor, transformer, explainer) held to the
    limits of the resource's environment; without those limits, only why (the check fails, never passes)."""
    params, why = env_params(conf)
    if params is None:
        return [why]
    return [problem for pod in pod_specs(conf) for problem in judge(pod, params)]


# --- the base every mlplat check derives from --------------------------------------------------


class MlplatCheck(BaseK8Check):
    """A check returns the key paths of what is wrong; none means it passes.

    The paths land in checkov's `evaluated_keys`, which the scanner turns into the finding's message.
    The `fix` text travels as checkov's guideline, so the scanner reads how to fix from the check.
    """

    def __init__(self, name: str, id: str, supported_entities: tuple[str, ...], fix: str) -> None:
        super().__init__(
            name=name,
            id=id,
            categories=(CheckCategories.KUBERNETES,),
            supported_entities=supported_entities,
            guideline=fix,
        )

    def scan_spec_conf(self, conf: dict[str, Any]) -> CheckResult:
        try:
            problems = self.problems(conf)
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            # Malformed input is a finding, not a crash of the whole scan.
            problems = [f"(manifest could not be evaluated: {type(err).__name__})"]
        self.evaluated_keys = problems
        return CheckResult.FAILED if problems else CheckResult.PASSED

    def problems(self, conf: dict[str, Any]) -> list[str]:
        raise NotImplementedError
