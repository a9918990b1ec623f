"""A small model of the lifecycle commands the MinIO chart's hook runs (`customCommands`, each `mc
<command>` in turn under `set -e`): which rules each bucket's lifecycle configuration holds afterwards.

`mc ilm rule add [flags] myminio/<bucket>` fetches the configuration (none: a new one) and appends one
rule; `mc ilm rule rm --all --force myminio/<bucket>` fetches it, failing when there is none, and
empties it, which deletes the configuration (minio/mc RELEASE.2024-11-21T17-21-54Z, the chart's
`mcImage`: cmd/ilm-rule-add.go `mainILMAdd`, cmd/ilm-remove.go `mainILMRemove`; minio-go v7.0.77
api-bucket-lifecycle.go `SetBucketLifecycle` removes an empty one). Only the flags the program writes
are modelled, with mc's own refusal of an expiry and a delete-marker expiry in one rule
(cmd/ilm/parse.go `validateExpiration`); any other command fails the replay.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ALIAS = "myminio"


@dataclass(frozen=True)
class Rule:
    prefix: str = ""
    expire_days: int | None = None
    noncurrent_expire_days: int | None = None
    expire_delete_marker: bool = False

    def matches(self, key: str) -> bool:
        """A rule's prefix is literal (minio/minio RELEASE.2024-12-18T13-15-44Z
        internal/bucket/lifecycle/lifecycle.go `FilterRules`)."""
        return key.startswith(self.prefix)


# Bucket -> the rules of its lifecycle configuration; a bucket without one is absent.
Buckets = dict[str, tuple[Rule, ...]]


def custom_commands(values: Mapping[str, Any]) -> list[str]:
    """The hook's commands in the MinIO release's values, in order."""
    return [str(c["command"]) for c in values.get("customCommands") or []]


def _rule(flags: list[str], command: str) -> Rule:
    fields: dict[str, Any] = {}
    words = iter(flags)
    for flag in words:
        if flag == "--prefix":
            fields["prefix"] = next(words)
        elif flag in ("--expire-days", "--noncurrent-expire-days"):
            fields[flag.removeprefix("--").replace("-", "_")] = int(next(words))
        elif flag == "--expire-delete-marker":
            fields["expire_delete_marker"] = True
        else:
            raise AssertionError(f"a flag this model does not know: {flag} in {command!r}")
    rule = Rule(**fields)
    assert not (rule.expire_days and rule.expire_delete_marker), (
        f"mc: only one parameter under Expiration can be specified ({command!r})"
    )
    assert rule.expire_days or rule.noncurrent_expire_days or rule.expire_delete_marker, (
        f"mc: a rule needs an action ({command!r})"
    )
    return rule


def replay(commands: Iterable[str], buckets: Mapping[str, tuple[Rule, ...]] | None = None) -> Buckets:
    """The buckets' rules after the hook ran `commands` on `buckets` (none: a new MinIO); a command
    that fails, and so fails the hook, is an AssertionError."""
    state: Buckets = dict(buckets or {})
    for command in commands:
        words = shlex.split(command)
        alias, _, bucket = words[-1].partition("/")
        assert alias == ALIAS and bucket, f"not a bucket of alias {ALIAS}: {command!r}"
        if words[:-1] == ["ilm", "rule", "rm", "--all", "--force"]:
            assert bucket in state, f"mc: Unable to fetch lifecycle rules of {bucket} (the hook fails)"
            del state[bucket]
        elif words[:3] == ["ilm", "rule", "add"]:
            state[bucket] = (*state.get(bucket, ()), _rule(words[3:-1], command))
        else:
            raise AssertionError(f"a command this model does not know: {command!r}")
    return state


def rules_for(buckets: Mapping[str, tuple[Rule, ...]], bucket: str, key: str) -> list[Rule]:
    """The rules of `bucket` that apply to the object `key`."""
    return [rule for rule in buckets.get(bucket, ()) if rule.matches(key)]
