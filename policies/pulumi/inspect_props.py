"""Preview-safe readers over resource properties, shared by every policy.

Under `pulumi preview` pulumi_policy wraps props in a proxy that raises UnknownValueError when a
computed value is read. These helpers turn that into the UNKNOWN sentinel so each policy decides
explicitly what "not known yet" means for it, instead of crashing or silently passing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError


class _Unknown:
    """A value the engine will only compute during the update."""

    def __repr__(self) -> str:
        return "<unknown during preview>"


UNKNOWN: Any = _Unknown()
MISSING: Any = None


def peek(obj: Any, *path: str | int, strict: bool = False) -> Any:
    """Value at `path`: None when absent, UNKNOWN when a step is computed.

    strict=True lets UnknownValueError propagate: the policy cannot judge a computed value, and
    pulumi_policy (and offline.py alike) then reports "can't run policy during preview" as advisory.
    """
    current = obj
    for key in path:
        if isinstance(current, _Unknown):
            return UNKNOWN
        try:
            if isinstance(key, int):
                if not _is_list(current) or key >= len(current):
                    return MISSING
            elif not isinstance(current, Mapping):
                return MISSING
            current = current[key]
        except UnknownValueError:
            if strict:
                raise
            return UNKNOWN
        except (KeyError, IndexError, TypeError):
            return MISSING
    return current


def elements(obj: Any) -> list[Any]:
    """Elements of a list (UNKNOWN for computed ones); [] for anything that is not a list."""
    if not _is_list(obj):
        return []
    return [peek(obj, index) for index in range(len(obj))]


def entries(obj: Any) -> Iterator[tuple[str, Any]]:
    """(key, value) pairs of a mapping, values UNKNOWN when computed."""
    if isinstance(obj, Mapping):
        for key in list(obj.keys()):
            yield str(key), peek(obj, key)


def _is_list(obj: Any) -> bool:
    return isinstance(obj, Sequence) and not isinstance(obj, str | bytes)


def is_unknown(value: Any) -> bool:
    return isinstance(value, _Unknown)


def as_json(value: Any) -> Any:
    """A JSON document given as a string (IAM policies, provider config); other values unchanged."""
    if isinstance(value, str):
        return json.loads(value)
    return value


# ---- URNs ---------------------------------------------------------------------------------------

URN_RE = re.compile(r"^urn:pulumi:(?P<stack>[^:]+)::(?P<project>[^:]+)::")


def stack_of(urn: str) -> str:
    """Stack name from a URN: the same answer offline and under the Pulumi CLI."""
    match = URN_RE.match(urn)
    return match["stack"] if match else ""


def stack_urn(urn: str) -> str:
    """URN of the stack resource that owns `urn`."""
    match = URN_RE.match(urn)
    if not match:
        return ""
    stack, project = match["stack"], match["project"]
    return f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"


# ---- plaintext secrets --------------------------------------------------------------------------

REDACTED = "[secret]"
# Whole (normalized) keys that always hold a credential, even though some end like a reference.
SECRET_KEYS = frozenset(
    {"accesskey", "accesskeyid", "secretkey", "secretaccesskey", "apikey", "privatekey", "rootuser"}
)
SECRET_WORDS = ("password", "passwd", "secret", "token", "credential", "apikey", "privatekey")
# Keys naming or configuring a secret rather than holding one: existingSecret, secretName, tokenTtl...
REFERENCE_PREFIXES = ("existing",)
REFERENCE_SUFFIXES = ("name", "ref", "file", "path", "key", "keys", "enabled", "ttl", "length", "type")
# Strings that point at a secret rather than contain it (templates, Vault/ESO references).
REFERENCE_VALUE_RE = re.compile(r"^(\{\{.*\}\}|\$\{.+\}|vault:.+|ref\+.+|secretref:.+)$", re.IGNORECASE)
# Credentials recognizable by their shape wherever they sit.
SECRET_VALUE_RE = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----")


def normalize_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def secret_like_key(key: str) -> bool:
    """True for keys such as password, rootPassword, secretKey, authToken; False for existingSecret."""
    norm = normalize_key(key)
    if norm in SECRET_KEYS:
        return True
    if norm.startswith(REFERENCE_PREFIXES) or norm.endswith(REFERENCE_SUFFIXES):
        return False
    return any(word in norm for word in SECRET_WORDS)


ENV_SECRET_RE = re.compile(
    r"(^|_)(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIALS?|(ACCESS|SECRET|API|PRIVATE)_KEY)(_|$)"
)


def secret_like_env(name: str) -> bool:
    """Environment variable names such as DB_PASSWORD, MINIO_SECRET_KEY, GITHUB_TOKEN."""
    return bool(ENV_SECRET_RE.search(name.upper()))


def literal_secret(value: Any) -> bool:
    """A non-empty literal string that is neither redacted by Pulumi nor a reference."""
    return (
        isinstance(value, str)
        and value.strip() != ""
        and value != REDACTED
        and not REFERENCE_VALUE_RE.match(value.strip())
    )


def plaintext_secrets(obj: Any, path: str = "") -> Iterator[str]:
    """Dotted paths of plaintext credentials in a nested document (Helm values, outputs, config)."""
    if isinstance(obj, Mapping):
        name = peek(obj, "name")
        # Kubernetes env var: {name: DB_PASSWORD, value: "literal"}.
        env_secret = isinstance(name, str) and secret_like_env(name) and literal_secret(peek(obj, "value"))
        if env_secret:
            yield f"{path}.value" if path else "value"
        for key, value in entries(obj):
            child = f"{path}.{key}" if path else key
            if env_secret and key == "value":
                continue
            if secret_like_key(key) and literal_secret(value):
                yield child
            else:
                yield from plaintext_secrets(value, child)
    elif _is_list(obj):
        for index, value in enumerate(elements(obj)):
            yield from plaintext_secrets(value, f"{path}[{index}]")
    elif isinstance(obj, str) and obj != REDACTED and SECRET_VALUE_RE.search(obj):
        yield path or "<value>"
