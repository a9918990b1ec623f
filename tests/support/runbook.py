"""Run the runbooks' shell against a fake cluster and a fake Vault, and replay their `vault kv` writes.

A runbook step that copies Secrets into Vault is code an operator runs once per environment, where a
mistake (a namespace left out, a key dropped) surfaces weeks later as a Secret VSO never fills. The
tests run the step as written: `kubectl` answers with the Secrets the program seeds (from a recorded
build), `vault` records its arguments and stdin, and `KvStore` applies what was recorded the way
Vault's CLI does (`kv put` replaces a secret's data, `kv patch` merges into it: hashicorp/vault
command/kv_patch.go; a `-` argument is a JSON object on stdin, `key=-` one value on stdin)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.harness import REPO, Plan

RUNBOOKS = REPO / "docs" / "runbooks"
VAULT_PATH_ANNOTATION = "mlplat/vault-path"
KV_MOUNT = "kv"
# Stands for a value an operator pipes in from a password manager (`key=-`).
FROM_STDIN = "<stdin>"

_FAKE_KUBECTL = """\
import json, os, sys
cluster = json.loads(open(os.environ["FAKE_CLUSTER"]).read())
args, namespace, everywhere, output = sys.argv[1:], "default", False, "yaml"
words = []
while args:
    arg = args.pop(0)
    if arg in ("-n", "--namespace"):
        namespace = args.pop(0)
    elif arg in ("-A", "--all-namespaces"):
        everywhere = True
    elif arg == "-o":
        output = args.pop(0)
    elif arg.startswith("-o="):
        output = arg[3:]
    else:
        words.append(arg)
kind, _, name = (words[1] if len(words) > 1 else "").partition("/")
name = name or (words[2] if len(words) > 2 else "")
if words[:1] != ["get"] or kind not in ("secret", "secrets") or len(words) > 3:
    sys.exit(f"fake kubectl: serves `get secret [NAME]` only, not {sys.argv[1:]}")
items = [s for s in cluster if everywhere or s["metadata"]["namespace"] == namespace]
items = [s for s in items if s["metadata"]["name"] == name] if name else items
if name and not items:
    sys.exit(f'Error from server (NotFound): secrets "{name}" not found')
if output == "json":
    print(json.dumps(items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}))
elif output == "name":
    print("\\n".join("secret/" + s["metadata"]["name"] for s in items))
elif output.startswith("jsonpath={.") and output.endswith("}") and name:
    value = items[0]
    for key in output[len("jsonpath={."):-1].split("."):
        value = value.get(key, "") if isinstance(value, dict) else ""
    print(value if isinstance(value, str) else json.dumps(value), end="")
else:
    sys.exit(f"fake kubectl: output {output!r} is not served")
"""

_FAKE_VAULT = """\
import json, os, sys
with open(os.environ["FAKE_VAULT_LOG"], "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "stdin": sys.stdin.read()}) + "\\n")
"""


def sections(doc: str) -> dict[str, str]:
    """The `## ` sections of docs/runbooks/`doc` by heading."""
    text = (RUNBOOKS / doc).read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    return {part.split("\n", 1)[0]: part for part in parts}


def shell_blocks(doc: str, heading: str) -> list[str]:
    """The ```sh blocks of the section of docs/runbooks/`doc` whose `## ` heading starts with `heading`."""
    (section,) = [text for title, text in sections(doc).items() if title.startswith(heading)]
    return re.findall(r"^```sh\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)


def seeded_secrets(plan: Plan) -> list[dict[str, Any]]:
    """The Secrets the program seeds, as the API server returns them (data base64-encoded)."""
    secrets = []
    for r in plan.of_type("kubernetes:core/v1:Secret"):
        metadata = r.inputs["metadata"]
        if VAULT_PATH_ANNOTATION not in (metadata.get("annotations") or {}):
            continue
        data = {k: base64.b64encode(str(v).encode()).decode() for k, v in r.inputs["stringData"].items()}
        secrets.append({"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": data})
    return secrets


def synced_paths(plan: Plan) -> dict[tuple[str, str], str]:
    """(namespace, Secret name) -> the kv path its VaultStaticSecret reads."""
    return {
        (r.inputs["metadata"]["namespace"], r.inputs["spec"]["destination"]["name"]): r.inputs["spec"]["path"]
        for r in plan.of_type("kubernetes:secrets.hashicorp.com/v1beta1:VaultStaticSecret")
        if r.inputs["spec"]["mount"] == KV_MOUNT
    }


@dataclass
class KvStore:
    """The kv-v2 mount as `vault kv put/patch` leave it."""

    data: dict[str, dict[str, str]] = field(default_factory=dict)

    def apply(self, argv: list[str], stdin: str) -> None:
        """One `vault` invocation; anything but a `kv put/patch` on the kv mount is ignored."""
        if argv[:1] != ["kv"] or argv[1:2] not in (["put"], ["patch"]):
            return
        verb, rest = argv[1], argv[2:]
        flags = [a for a in rest if a.startswith("-") and a != "-"]
        assert f"-mount={KV_MOUNT}" in flags, f"vault {' '.join(argv)}: not on the {KV_MOUNT} mount"
        path, *pairs = [a for a in rest if a not in flags]
        new: dict[str, str] = {}
        for pair in pairs:
            if pair == "-":
                new.update(json.loads(stdin) if stdin else {})
            else:
                key, _, value = pair.partition("=")
                new[key] = (stdin.rstrip("\n") or FROM_STDIN) if value == "-" else value
        if verb == "put":
            self.data[path] = new
        else:
            assert path in self.data, f"vault kv patch {path}: nothing written there to patch"
            self.data[path] = {**self.data[path], **new}


def run_with_fakes(script: str, cluster: list[dict[str, Any]], workdir: Path) -> list[tuple[list[str], str]]:
    """Run `script` with bash, `kubectl` serving `cluster` and `vault` recording; the recorded calls."""
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    for name, body in (("kubectl", _FAKE_KUBECTL), ("vault", _FAKE_VAULT)):
        tool = bin_dir / name
        tool.write_text(f"#!{sys.executable}\n{body}")
        tool.chmod(0o755)
    (workdir / "cluster.json").write_text(json.dumps(cluster))
    log = workdir / "vault.log"
    log.touch()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_CLUSTER": str(workdir / "cluster.json"),
        "FAKE_VAULT_LOG": str(log),
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, f"the runbook's step failed:\n{script}\n{result.stderr}"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return [(c["argv"], c["stdin"]) for c in calls]


def vault_commands(*texts: str) -> list[list[str]]:
    """Every `vault ...` command in the code of markdown `texts`: fenced blocks line by line
    (continuations joined) and inline code spans, each split at its pipes."""
    fence = re.compile(r"^```\w*\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)
    commands = []
    for text in texts:
        code = [re.sub(r"\\\n\s*", " ", block) for block in fence.findall(text)]
        code += [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", fence.sub("", text))]
        for line in "\n".join(code).splitlines():
            for segment in re.split(r"\|(?!\|)", line):
                words = segment.split()
                if words[:1] == ["vault"] and len(words) > 1:
                    comment = next((i for i, w in enumerate(words) if w.startswith("#")), len(words))
                    commands.append(words[1:comment])
    return commands


def secret_keys_read(plan: Plan) -> dict[tuple[str, str], set[str]]:
    """(namespace, Secret name) -> the keys the plan's workloads name in it (`secretKeyRef`, Argo's
    `usernameSecret`/`passwordSecret`, ...: every `{name, key}` selector in a namespaced object)."""
    found: dict[tuple[str, str], set[str]] = {}

    def walk(node: Any, namespace: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("name"), str) and isinstance(node.get("key"), str):
                found.setdefault((namespace, node["name"]), set()).add(node["key"])
            for value in node.values():
                walk(value, namespace)
        elif isinstance(node, list):
            for value in node:
                walk(value, namespace)

    for r in plan.resources:
        namespace = (r.inputs.get("metadata") or {}).get("namespace") or r.inputs.get("namespace")
        if isinstance(namespace, str):
            walk(r.inputs, namespace)
    return found
