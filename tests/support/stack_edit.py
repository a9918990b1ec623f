"""A committed stack file with `services.argocd` changed the way an operator changes it: lines written
where `repo_url` is, then loaded as the program loads a stack file (so its checks run and its errors
are the program's)."""

from __future__ import annotations

import json
from pathlib import Path

from infra.config import StackConfig, load_environment, load_stack_config, read_stack_file, stack_file


def argocd_edited(env: str, directory: Path, **settings: str | bool) -> StackConfig:
    """`env`'s stack config with `settings` written under `services.argocd` in place of its `repo_url`
    line (kept unless `settings` names one). Raises the program's ConfigError for a refused setting."""
    text = stack_file(env).read_text()
    line = f"      repo_url: {load_environment(env).services.argocd.repo_url}\n"
    assert text.count(line) == 1, f"{env}: the repository is written once, on {line!r}"
    written = {"repo_url": line.split(": ", 1)[1].strip(), **settings}
    path = directory / f"Pulumi.{env}.yaml"
    path.write_text(text.replace(line, "".join(f"      {k}: {json.dumps(v)}\n" for k, v in written.items())))
    return load_stack_config(read_stack_file(path), str(path), env)
