"""CKV_MLP_10: no secret literals in env vars, annotations or ConfigMaps.

Git is readable by every engineer and every CI log; secrets come from Vault or a Secret
reference (`valueFrom`), never from a literal in the manifest.
"""

from __future__ import annotations

import re
from typing import Any

from _mlplat import MlplatCheck, annotations_of, dicts, mapping, pod_specs

SECRET_WORDS = frozenset(
    {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "APIKEY", "CREDENTIALS", "CREDENTIAL"}
)
# `HF_TOKEN_FILE: /vault/secrets/hf` names where a secret is, not the secret.
REFERENCE_WORDS = frozenset({"FILE", "PATH", "DIR", "NAME", "REF", "ENABLED"})
TOKEN_PATTERNS = (
    re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),  # AWS access key ids
    re.compile(r"\b(FwoGZXIvYXdz|IQoJb3JpZ2lu)[A-Za-z0-9/+=]{20,}"),  # AWS session tokens
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}"),  # GitHub
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),  # Hugging Face
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\bsk-(proj-)?[A-Za-z0-9_-]{20,}"),  # OpenAI-style API keys
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\."),  # JWTs
)


def has_secret_name(name: str) -> bool:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)  # apiKey -> api_Key
    words = [w.upper() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]
    return bool(words) and words[-1] not in REFERENCE_WORDS and any(w in SECRET_WORDS for w in words)


def looks_like_token(value: str) -> bool:
    return any(pattern.search(value) for pattern in TOKEN_PATTERNS)


def is_secret_literal(name: Any, value: Any) -> bool:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value).strip() == "":
        return False
    return has_secret_name(str(name)) or looks_like_token(str(value))


class SecretLiterals(MlplatCheck):
    def __init__(self) -> None:
        super().__init__(
            name="No secret literals in env vars, annotations or ConfigMap data",
            id="CKV_MLP_10",
            supported_entities=("*",),
            fix="store the secret in Vault and inject it (Vault agent file or env valueFrom.secretKeyRef); "
            "rotate any secret that reached git",
        )

    def problems(self, conf: dict[str, Any]) -> list[str]:
        problems = [
            f"metadata/annotations/{key}"
            for key, value in annotations_of(conf).items()
            if is_secret_literal(key.rsplit("/", 1)[-1], value)
        ]
        for pod in pod_specs(conf):
            for container in pod.containers():
                for i, var in enumerate(dicts(container.conf.get("env"))):
                    if is_secret_literal(var.get("name", ""), var.get("value")):
                        problems.append(f"{container.path}/env/[{i}]/value ({var.get('name')})")
        if conf.get("kind") == "ConfigMap":
            problems += [
                f"data/{key}"
                for key, value in mapping(conf.get("data")).items()
                if is_secret_literal(key, value)
            ]
        return problems


check = SecretLiterals()
