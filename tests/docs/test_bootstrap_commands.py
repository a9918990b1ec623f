"""The bootstrap commands the documentation gives, held to the Terraform they run against
(infra/bootstrap): a command naming an output that does not exist, or asking `-raw` of a map, stops
an adopter at the first step; a first apply of everything at once fails creating the runner projects
while the GitHub connection is still PENDING; a once-per-account resource the account already holds
fails the apply unless its switch is turned off before it."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support.delivery_helpers import REPO, terraform
from tests.support.runbook import sections

_CHDIR = r"(?:[ \t]+-chdir=\S+)?"
# `terraform output [-raw|-json] NAME`; a bare `terraform output` (every output) names none.
OUTPUT_READ = re.compile(rf"terraform{_CHDIR}[ \t]+output((?:[ \t]+-\w+)*)[ \t]+([a-z_][a-z0-9_]*)")
# A plain `terraform init` starts a bootstrap from nothing; `init -migrate-state` and other flagged
# inits come after it.
FIRST_INIT = re.compile(rf"terraform{_CHDIR}[ \t]+init(?![ \t]+-)")
APPLY = re.compile(rf"terraform{_CHDIR}[ \t]+apply\b([^\n`]*)")


def _docs() -> list[str]:
    """Every tracked Markdown file."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "*.md"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    return sorted(filter(None, out.split("\0")))


def _complex(value: object) -> bool:
    """An output whose value is a map, object or list (a `{...}`/`[...]` or `for` expression)."""
    return not isinstance(value, str) or value.startswith(("${{", "${[", "{", "["))


def test_every_bootstrap_output_a_doc_reads_exists_and_fits_the_format_asked() -> None:
    """`terraform output -raw` refuses a value that is not a string, number or bool ("The -raw option
    only supports strings, numbers, and boolean values": hashicorp/terraform 883c7221ee
    internal/command/views/output.go), and a name no `output` block declares is "not found"."""
    outputs = terraform()["output"]
    reads = 0
    wrong = []
    for doc in _docs():
        for match in OUTPUT_READ.finditer((REPO / doc).read_text(encoding="utf-8")):
            reads += 1
            flags, name = match[1].split(), match[2]
            if name not in outputs:
                wrong.append(f"{doc}: {match[0]!r}: no output {name!r} (declared: {sorted(outputs)})")
            elif "-raw" in flags and _complex(outputs[name]["value"]):
                wrong.append(f"{doc}: {match[0]!r}: {name} is a map; read it with -json and jq")
    assert reads, "no `terraform output NAME` found in the docs: the pattern is wrong"
    assert not wrong, "\n".join(wrong)


def test_a_first_bootstrap_apply_creates_the_github_connection_alone() -> None:
    """runners.tf: the connection is created PENDING and a person completes it in the console before
    the runner projects and webhooks can use it, so the first apply after `terraform init` targets it."""
    (connection,) = terraform()["resource"]["aws_codeconnections_connection"]
    target = f"-target=aws_codeconnections_connection.{connection}"
    firsts = 0
    wrong = []
    for doc in _docs():
        text = (REPO / doc).read_text(encoding="utf-8")
        for init in FIRST_INIT.finditer(text):
            apply = APPLY.search(text, init.end())
            if apply is None:
                continue
            firsts += 1
            if target not in apply[1].split():
                wrong.append(f"{doc}: after {init[0]!r}, {apply[0]!r} applies everything at once")
    assert firsts, "no `terraform init` followed by an apply in the docs: the pattern is wrong"
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "switch",
    sorted(
        name
        for name, body in terraform()["variable"].items()
        if name.startswith("create_") and body.get("default") is True
    ),
)
def test_the_bootstrap_step_names_every_once_per_account_resource_it_creates(switch: str) -> None:
    """Each `create_*` switch (default true) makes something an account holds once: one an earlier
    stack made already fails the apply. Step 3 must say how to check for it and which switch to turn off."""
    (step,) = [text for title, text in sections("first-deployment.md").items() if title.startswith("3.")]
    assert switch in step, f"docs/runbooks/first-deployment.md step 3 never names {switch}"
