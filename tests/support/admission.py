"""Evaluate a ValidatingAdmissionPolicy's validations the way the API server does, with cel-python.

The API server gives the expressions `request` (the AdmissionRequest: its operation and the
requester's `userInfo`), `object` and `oldObject` (null on CREATE) as untyped JSON maps
(kubernetes/apiserver v0.33.10 pkg/admission/plugin/cel/activation.go `newActivation`, filter.go
`CreateAdmissionRequest`, condition.go `objectToResolveVal`); a request is refused when any validation is false, and under
`failurePolicy: Fail` when one cannot be evaluated (an error or a result that is not a bool). The
policies evaluated here use standard CEL only, which cel-python implements; a Kubernetes library
function would fail to compile here, so a policy that starts using one fails its tests loudly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError


@cache
def _program(expression: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(expression))


def refusals(
    validations: Sequence[Mapping[str, Any]],
    operation: str,
    username: str,
    obj: Mapping[str, Any],
    old: Mapping[str, Any] | None = None,
) -> list[str]:
    """The messages of the validations that refuse `username`'s `operation` on `obj` (empty: admitted)."""
    activation = {
        "request": json_to_cel({"operation": operation, "userInfo": {"username": username}}),
        "object": json_to_cel(dict(obj)),
        "oldObject": json_to_cel(None if old is None else dict(old)),
    }
    refused = []
    for rule in validations:
        try:
            result = _program(rule["expression"]).evaluate(activation)
        except CELEvalError as err:
            refused.append(f"{rule['message']} (cannot be evaluated: {err})")
            continue
        if not isinstance(result, celtypes.BoolType):
            refused.append(f"{rule['message']} (not a bool: {result!r})")
        elif not result:
            refused.append(str(rule["message"]))
    return refused
