"""Mutation testing of the gate modules with cosmic-ray, one scratch copy of the repository per module.

Why cosmic-ray: it writes each mutant into the file on disk and runs an ordinary shell command, so a
mutant reaches every process the tests start (`mlplat plan` subprocesses, checkov in .venv-checkov,
the policy pack in .venv-policy). Tools that mutate in memory only see the test process itself.

Why a scratch copy: cosmic-ray edits files in place; a run stopped half-way must never leave a mutant in
the working tree. The copy is `git ls-files` of the checkout (committed and staged content as it is on
disk), committed as a git work tree of its own, with the virtualenvs linked in, and PYTHONPATH pointing
at it so the mutated copy, not the editable install, is what the tests import.

Usage: `python scripts/mutation/run.py [--sample N] [--resume] [MODULE ...]` (default: every gate
module, every mutant). Writes `build/mutation/report.md` (the latest score of every module run so far)
and `build/mutation/<module>/survivors.txt`; exits 1 when a module scores below FLOOR. Survivors that
may stay are explained in SURVIVORS.md beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build" / "mutation"
VENV = REPO / ".venv-mutation" / "bin"
VENVS = (".venv", ".venv-checkov", ".venv-policy")
FLOOR = 0.90  # issue #20: every gate module kills at least 90 % of its mutants
# One process, tests in file order (a mutant's verdict must not depend on a random order or on a worker
# pool competing for the machine's cores). A mutant's cost is mostly pytest starting up, paid once per
# mutant: the installed plugins these tests never use (faker alone scans its locales at start, ~0.5 s of
# CPU) are not loaded; without xdist there is no `-n`, so the tests run in this one process.
PYTEST_FLAGS = (
    "-q",
    *("-p", "no:randomly", "-p", "no:xdist", "-p", "no:xdist.looponfail"),
    *("-p", "no:faker", "-p", "no:anyio", "-p", "no:platformdirs"),
)
# Replacing an operator by a bit shift, a bitwise operator, an exponent, a modulo or a floor division
# only produces noise in these modules (they never compute bit fields or powers); operators the code
# does use are still mutated into everything else.
# And `|` itself is, in these modules, nearly always a type annotation (`dict[str, Any] | None`), which
# `from __future__ import annotations` never evaluates: its mutants are all equivalent (the few runtime
# uses, `isinstance(x, int | float)`, are held by the same tests that hold the isinstance checks).
EXCLUDED_OPERATORS = [
    r"core/ReplaceBinaryOperator_.*_(Pow|RShift|LShift|BitOr|BitAnd|BitXor|FloorDiv|Mod)$",
    r"core/ReplaceBinaryOperator_BitOr_.*",
]


# `--sample N`: every mutant but a random N (seeded: the same N mutants on every run of the same source) is
# marked skipped with this output, so a module too slow to run whole on a loaded machine still gets an
# unbiased estimate, reported as a sample. Run in .venv-mutation, where cosmic-ray is installed.
NOT_SAMPLED = "not in the sample"
SAMPLE_SCRIPT = f"""
import random, sys
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult
with use_db(sys.argv[1], WorkDB.Mode.open) as db:
    def where(item):  # job ids are random; a mutant's place and operator are not
        m = item.mutations[0]
        return (str(m.module_path), tuple(m.start_pos), m.operator_name, m.occurrence)
    pending = [item.job_id for item in sorted(db.pending_work_items, key=where)]
    keep = set(random.Random(20).sample(pending, min(int(sys.argv[2]), len(pending))))
    out = [job for job in pending if job not in keep]
    db.set_multiple_results(out, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output={NOT_SAMPLED!r}))
"""


CHECKOV_LINES = "tests/mlplat/validate/test_validate_governance.py::test_checkov_findings_carry_the_line_of_the_overlay_that_set_the_value"


@dataclass(frozen=True)
class GateModule:
    """A module whose rules gate a deploy, and the tests that must kill its mutants."""

    name: str
    path: str
    tests: tuple[str, ...]


MODULES = (
    GateModule(
        "config",
        "infra/config.py",
        ("tests/infra/test_config.py", "tests/infra/test_cpu_pool_config.py"),
    ),
    GateModule(
        "registry-gate",
        "mlplat/registry_gate.py",
        # The fake-registry tests cover every branch; the real-MLflow ones (`slow`) add 15 s a mutant.
        (
            "tests/mlplat/registry/test_registry_gate_edges.py",
            "tests/mlplat/registry/test_registry_gate_lineage.py",
            "tests/mlplat/registry/test_registry_gate.py",
            "-m",
            "not slow",
        ),
    ),
    GateModule(
        "promote",
        "mlplat/promote.py",
        # The journeys on the fake registry (test_promote_fast.py) stand in for the real-MLflow ones
        # (`slow`: ~15 s to start the server, paid by every mutant).
        (
            "tests/mlplat/registry/test_promote_fast.py",
            "tests/mlplat/registry/test_promote.py",
            "tests/mlplat/registry/test_canary.py",
            "tests/mlplat/registry/test_promote_crash.py",
            "-m",
            "not slow",
        ),
    ),
    # validate's rules, one module each with the test files that state its rules (the rest of
    # mlplat/validation renders and locates; it decides nothing). The whole tests/mlplat/validate folder costs
    # ~40 s a mutant: the 2,000 mutants of the folder would take a day.
    *(
        GateModule(
            f"validate-{name.replace('_rules', '')}",
            f"mlplat/validation/{name}.py",
            (
                *(f"tests/mlplat/validate/test_validate_{t}.py" for t in tests),
                # checkov's line-locating test runs checkov (~8 s) and judges none of these modules
                *(("--deselect", CHECKOV_LINES) if "governance" in tests else ()),
            ),
        )
        for name, tests in (
            ("governance", ("governance", "broken")),
            ("podsecurity", ("broken", "governance", "routes")),
            ("routes", ("routes", "route_weights")),
            ("resources", ("resources", "broken")),
            ("capacity", ("scaling", "broken")),
            ("scaling", ("scaling", "broken")),
            ("logging_rules", ("logging",)),
            ("ownership", ("governance", "ownership")),
            ("argocd", ("argocd", "broken")),
        )
    ),
    GateModule(
        "validate-gpu-cost", "mlplat/validation/gpu_cost.py", ("tests/mlplat/cost/test_validate_gpu_cost.py",)
    ),
    GateModule(
        "validate-shared-secrets",
        "mlplat/validation/shared_secrets.py",
        ("tests/mlplat/validate/test_validate_shared_secrets.py",),
    ),
    GateModule(
        "validate-retraining",
        "mlplat/validation/retraining.py",
        ("tests/mlplat/validate/test_validate_training.py",),
    ),
    # Each environment's Argo CD project and ApplicationSet (prod never prunes): what it refuses in the template.
    GateModule(
        "gitops",
        "infra/gitops.py",
        (
            "tests/infra/test_gitops.py",
            "tests/mlplat/validate/test_validate_argocd.py",  # the broken-template cases
            # runs the real `mlplat plan` and `mlplat validate` for a new environment (~11 s a mutant)
            "--deselect",
            "tests/infra/test_gitops.py::test_adding_an_environment_needs_no_argocd_file_and_plan_and_validate_accept_it",
        ),
    ),
    GateModule("checkov-checks", "policies/checkov/checks", ("tests/policies/test_checkov_checks.py",)),
    GateModule("policy-pack", "policies/pulumi/mlplat_policies.py", ("tests/policies/test_pulumi_pack.py",)),
)


@dataclass
class Tally:
    """What a session's `cosmic-ray dump` says: only mutants a test killed count as killed."""

    killed: int = 0
    total: int = 0
    unsampled: int = 0  # left out by --sample: neither killed nor survived
    survivors: list[str] = field(default_factory=list)
    unjudged: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, dump: str) -> Tally:
        tally = cls()
        for line in dump.splitlines():
            item, result = json.loads(line)
            mutation = item["mutations"][0]
            where = f"{mutation['module_path']}:{mutation['start_pos'][0]} {mutation['operator_name']}"
            outcome = (result or {}).get("worker_outcome")
            if outcome == "skipped":  # filtered as noise (EXCLUDED_OPERATORS), or not in the sample
                tally.unsampled += result.get("output") == NOT_SAMPLED
                continue
            if outcome == "exception":  # cosmic-ray 8.7.0 cannot apply some operators (its
                tally.survivors.append(
                    f"{where} (cosmic-ray could not apply it)"
                )  # ExceptionReplacer on a.b.E)
                continue
            if outcome != "normal":
                tally.unjudged.append(where)  # never ran, or the worker died: neither a kill nor a survivor
                continue
            tally.total += 1
            if result.get("test_outcome") == "killed":
                tally.killed += 1
            else:  # survived, or incompetent (the mutant did not even import): neither proves the tests
                tally.survivors.append(f"{where} ({result.get('test_outcome')})")
        return tally


def scratch_copy(module: GateModule) -> Path:
    """A fresh copy of the tracked files, with the virtualenvs linked in."""
    root = BUILD / module.name / "repo"
    shutil.rmtree(root.parent, ignore_errors=True)
    root.mkdir(parents=True)
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = REPO / name.decode()
        if source.is_file():
            target = root / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    # Its own git work tree, committed as copied: `mlplat` acts on the checkout `git rev-parse
    # --show-toplevel` names (mlplat/checkout.py), which inside build/ would otherwise be this checkout,
    # and a CLI subprocess of the tests would then refuse to run the mutated copy's code.
    # Identity and signing set here: a clean CI runner has no identity, a workstation may sign commits.
    git = [
        "git",
        "-c",
        "user.name=mutation",
        "-c",
        "user.email=mutation@localhost",
        "-c",
        "commit.gpgsign=false",
    ]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-q", "--no-verify", "-m", "scratch copy"]):
        done = subprocess.run([*git, *step], cwd=root, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(
                f"{module.name}: `git {step[0]}` in the scratch copy {root} failed: {done.stderr.strip()}"
            )
    (root / ".git" / "info" / "exclude").write_text("".join(f"/{venv}\n" for venv in VENVS))
    for venv in VENVS:
        (root / venv).symlink_to(REPO / venv)
    # ../shared is read beside the checkout.
    (root.parent / "shared").symlink_to(REPO.parent / "shared")
    return root


def test_command(module: GateModule) -> str:
    """The command cosmic-ray runs for each mutant: drop the mutated module's bytecode, run its tests.

    cosmic-ray runs it with PYTHONDONTWRITEBYTECODE=1, so that a mutant is never served the bytecode of
    another (Python trusts a `.pyc` whose recorded mtime, in whole seconds, and size match the source,
    which two same-size mutants written within one second share). That costs more than the tests:
    pydantic, yaml and the project compiled from source in every run. Here bytecode is cached and only
    the mutated module's own `.pyc` is removed before each run, which rules out the same mix-up.
    """
    path = Path(module.path)
    stale = (
        f"find {shlex.quote(str(path))} -name __pycache__ -prune -exec rm -rf {{}} +"
        if (REPO / path).is_dir()
        else f"rm -f {shlex.quote(str(path.parent / '__pycache__'))}/{shlex.quote(path.stem)}.*.pyc"
    )
    pytest = ["env", "-u", "PYTHONDONTWRITEBYTECODE", f"{REPO}/.venv/bin/python", "-m", "pytest"]
    pytest += [*PYTEST_FLAGS, "-x", *module.tests]
    return shlex.join(["sh", "-c", f"{stale}; exec {shlex.join(pytest)}"])


def write_config(module: GateModule, root: Path, timeout: float) -> Path:
    config = root.parent / "cosmic-ray.toml"
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module.path)}\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(test_command(module))}\n"
        '\n[cosmic-ray.distributor]\nname = "local"\n'
        "\n[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = {json.dumps(EXCLUDED_OPERATORS)}\n"
    )
    return config


def run_module(module: GateModule, resume: bool = False, sample: int | None = None) -> tuple[Tally, float]:
    """The tally of `module`'s mutants and the wall time it took; survivors listed beside the report.

    With `resume`, a session stopped part-way (its scratch copy still in place) runs only the mutants it
    has not judged yet, with the current test command. With `sample`, only that many mutants, drawn at
    random, are run.
    """
    root = BUILD / module.name / "repo"
    session = root.parent / "session.sqlite"
    resume = resume and session.exists() and root.is_dir()
    if not resume:
        root = scratch_copy(module)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(root)}
    started = time.monotonic()
    baseline = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "pytest", *PYTEST_FLAGS, *module.tests],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if baseline.returncode != 0:
        raise SystemExit(
            f"{module.name}: the unmutated tests fail; fix them first:\n{baseline.stdout[-3000:]}"
        )
    # A mutant that hangs is killed: allow three times the clean run, at least a minute.
    timeout = max(60.0, 3 * (time.monotonic() - started))
    config = write_config(module, root, timeout)

    def cosmic(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV / argv[0]), *argv[1:]], cwd=root, env=env, capture_output=True, text=True, check=True
        )

    if not resume:
        cosmic("cosmic-ray", "init", str(config), str(session))
        cosmic("cr-filter-operators", str(session), str(config))
        cosmic("cr-filter-pragma", str(session))
        if sample is not None:
            cosmic("python", "-c", SAMPLE_SCRIPT, str(session), str(sample))
    cosmic("cosmic-ray", "exec", str(config), str(session))
    tally = Tally.of(cosmic("cosmic-ray", "dump", str(session)).stdout)
    if tally.unjudged:
        raise SystemExit(
            f"{module.name}: {len(tally.unjudged)} mutants were not judged, e.g. {tally.unjudged[:3]}"
        )
    survivors = tally.survivors
    (root.parent / "survivors.txt").write_text("\n".join(sorted(survivors)) + "\n")
    shutil.rmtree(root)  # the copy is large; the session database and survivors stay
    return tally, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=", ".join(m.name for m in MODULES))
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a module's session that was stopped part-way instead of starting it again",
    )
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="run only N mutants of each module, drawn at random (an estimate, reported as one)",
    )
    args = parser.parse_args(argv)
    if args.sample is not None and args.sample < 1:
        parser.error("--sample needs a positive number of mutants")
    unknown = set(args.modules) - {m.name for m in MODULES}
    if unknown:
        parser.error(f"unknown module(s) {', '.join(sorted(unknown))}; choose from the list in --help")
    if not (VENV / "cosmic-ray").exists():
        print("cosmic-ray is not installed: run `make mutation`", file=sys.stderr)
        return 2
    chosen = [m for m in MODULES if not args.modules or m.name in args.modules]
    BUILD.mkdir(parents=True, exist_ok=True)
    below = []
    for module in chosen:
        (BUILD / module.name / "score.md").unlink(missing_ok=True)
        tally, seconds = run_module(module, resume=args.resume, sample=args.sample)
        score = tally.killed / tally.total if tally.total else 1.0
        scope = (
            f" (random sample of {tally.total} of {tally.total + tally.unsampled})" if tally.unsampled else ""
        )
        row = (
            f"| {module.name} | `{module.path}` | {tally.killed}/{tally.total}{scope} | {score:.1%} "
            f"| {seconds / 60:.1f} min{' since resumed' if args.resume else ''} |"
        )
        print(row, flush=True)
        (BUILD / module.name / "score.md").write_text(row + "\n")
        write_report()  # after every module, so a run cut short still reports what it finished
        if score < FLOOR:
            below.append(module.name)
    print(f"report: {BUILD / 'report.md'}")
    if below:
        print(f"below {FLOOR:.0%}: {', '.join(below)} (survivors in build/mutation/<module>/survivors.txt)")
        return 1
    return 0


def write_report() -> None:
    """build/mutation/report.md: the latest score of every module measured so far, in MODULES order
    (modules may be run one at a time, `MODULES=config make mutation`, and still end up in one table)."""
    rows = [BUILD / m.name / "score.md" for m in MODULES]
    (BUILD / "report.md").write_text(
        f"# Mutation scores (cores: {os.cpu_count()})\n\n| module | path | killed | score | time |\n"
        "|---|---|---|---|---|\n" + "".join(r.read_text() for r in rows if r.exists())
    )


if __name__ == "__main__":
    sys.exit(main())
