"""The mutation runner's verdicts are earned: the score counts only what a test killed (a runner that
counted anything else as a kill would report a score no test earned), and each mutant's tests run
against that mutant, never against bytecode cached from another."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("mutation_run", REPO / "scripts" / "mutation" / "run.py")
assert _spec and _spec.loader
run = importlib.util.module_from_spec(_spec)
sys.modules["mutation_run"] = run  # dataclasses look their module up while the class is built
_spec.loader.exec_module(run)


def line(n: int, worker: str | None, test: str | None = None) -> str:
    item = {"mutations": [{"module_path": "m.py", "start_pos": [n, 0], "operator_name": f"core/Op{n}"}]}
    result = None if worker is None else {"worker_outcome": worker, "test_outcome": test}
    return json.dumps([item, result])


def test_only_killed_mutants_count_as_killed() -> None:
    tally = run.Tally.of(
        "\n".join(
            [
                line(1, "normal", "killed"),
                line(2, "normal", "survived"),
                line(3, "normal", "incompetent"),
                line(4, "skipped"),
                line(5, "exception", "incompetent"),
            ]
        )
    )
    assert (tally.killed, tally.total) == (1, 3)
    assert tally.survivors == [
        "m.py:2 core/Op2 (survived)",
        "m.py:3 core/Op3 (incompetent)",
        "m.py:5 core/Op5 (cosmic-ray could not apply it)",
    ]
    assert tally.unjudged == []


def test_mutants_that_never_ran_are_unjudged_not_killed() -> None:
    tally = run.Tally.of("\n".join([line(1, None), line(2, "no-test"), line(3, "abnormal")]))
    assert (tally.killed, tally.total) == (0, 0)
    assert tally.unjudged == ["m.py:1 core/Op1", "m.py:2 core/Op2", "m.py:3 core/Op3"]


def test_mutants_left_out_of_a_sample_are_counted_apart_from_filtered_ones() -> None:
    unsampled = json.dumps(
        [
            {"mutations": [{"module_path": "m.py", "start_pos": [2, 0], "operator_name": "core/Op2"}]},
            {"worker_outcome": "skipped", "output": run.NOT_SAMPLED},
        ]
    )
    tally = run.Tally.of("\n".join([line(1, "normal", "killed"), unsampled, line(3, "skipped")]))
    assert (tally.killed, tally.total, tally.unsampled) == (1, 1, 1)
    assert tally.survivors == [] and tally.unjudged == []


def test_a_mutant_is_never_served_the_bytecode_of_another(tmp_path: Path) -> None:
    """Bytecode is cached between mutants; a `.pyc` left by a same-size mutant written within the same
    second (Python checks mtime in whole seconds, and size) must not stand in for the mutant on disk."""
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "gate.py"
    (tmp_path / "test_gate.py").write_text(
        "from pkg import gate\n\n\ndef test_x():\n    assert gate.X == 2\n"
    )
    source.write_text("X = 1\n")  # the previous mutant, imported once: its bytecode is cached
    subprocess.run(
        [sys.executable, "-c", "import sys; sys.dont_write_bytecode = False; from pkg import gate"],
        cwd=tmp_path,
        check=True,
    )
    stamp = source.stat().st_mtime_ns
    source.write_text("X = 2\n")  # this mutant: same size, same mtime
    os.utime(source, ns=(stamp, stamp))
    module = run.GateModule("gate", "pkg/gate.py", ("test_gate.py",))
    result = subprocess.run(
        shlex.split(run.test_command(module)),
        cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_cli_run_inside_a_scratch_copy_acts_on_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests start `mlplat plan` from the scratch copy; the CLI acts on the git work tree around its
    working directory (mlplat/checkout.py). Were that this checkout (build/ lies inside it), the CLI would
    re-run itself for this checkout, still import the mutated copy first, and refuse: every mutant's tests
    would fail before judging it. The copy is committed whatever the user's git config asks of commits."""
    from mlplat import checkout

    # A workstation that signs every commit (here with a signer that always fails) and has no identity.
    config = tmp_path / "gitconfig"
    config.write_text("[commit]\n\tgpgsign = true\n[gpg]\n\tprogram = false\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setattr(run, "BUILD", tmp_path / "build")
    root = run.scratch_copy(run.GateModule("gate", "mlplat/promote.py", ()))
    assert checkout.find(None, root / "mlplat") == root
    assert (root / "mlplat" / "promote.py").read_text() == (REPO / "mlplat" / "promote.py").read_text()


def test_the_weekly_workflow_measures_every_gate_module() -> None:
    """A gate module listed in run.py but missing from the workflow's matrix would never be measured
    (and one in the matrix but not in run.py fails its job as an unknown module)."""
    import yaml

    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "mutation.yml").read_text())
    matrix = workflow["jobs"]["mutation"]["strategy"]["matrix"]["module"]
    assert matrix == [module.name for module in run.MODULES]
