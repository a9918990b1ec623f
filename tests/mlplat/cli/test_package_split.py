"""The deploy job runs `pulumi up` with a deploy role: it installs the program and the pipeline tools,
never the local runtime (MLflow, KServe, scikit-learn, Evidently), which stays an optional extra."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
RUNTIME = {"mlflow", "kserve", "scikit-learn", "evidently", "prometheus-client"}
RUNTIME_MODULES = ("mlflow", "kserve", "sklearn", "evidently", "prometheus_client")
INSTALL = re.compile(r"pip install .*-e (?P<target>\S+)")


def _requirements(target: str) -> set[str]:
    """Package names `pip install -e <target>` pulls in directly: the dependencies plus named extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = re.fullmatch(r"'?\.(?:\[(?P<extras>[a-z,]+)\])?'?", target)
    assert extras, f"unexpected install target {target!r}"
    wanted = list(project["dependencies"])
    for extra in (extras["extras"] or "").split(","):
        wanted += project["optional-dependencies"].get(extra, []) if extra else []
    return {re.split(r"[=<>\[ ]", requirement)[0].lower() for requirement in wanted}


def test_the_deploy_job_installs_no_local_runtime() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "deploy.yml").read_text())
    installs = [
        (job, match["target"])
        for job, spec in workflow["jobs"].items()
        for step in spec["steps"]
        for match in INSTALL.finditer(str(step.get("run", "")))
    ]
    assert {job for job, _ in installs} == set(workflow["jobs"]), installs
    for job, target in installs:
        assert not _requirements(target) & RUNTIME, (
            f"deploy.yml/{job}: installs {_requirements(target) & RUNTIME}"
        )


def test_make_setup_still_installs_the_runtime_for_demo_and_tests() -> None:
    line = next(
        line for line in (REPO / "Makefile").read_text().splitlines() if "requirements.lock -e" in line
    )
    assert _requirements(INSTALL.search(line)["target"]) >= RUNTIME, line  # type: ignore[index]


def test_the_program_and_preflight_import_no_runtime_module() -> None:
    code = (
        "import sys\nimport infra.program, mlplat.preflight, mlplat.cli\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {RUNTIME_MODULES!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_a_runtime_command_without_the_runtime_says_how_to_install_it(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for version in range(1, 10):  # whatever version dev's manifest names
        (store / "iris-classifier" / str(version)).mkdir(parents=True)
        (store / "iris-classifier" / str(version) / "MLmodel").write_text("flavors: {}\n")
    code = (
        "import sys\nsys.modules['kserve'] = None\nfrom mlplat import cli\n"
        f"sys.exit(cli.main(['serve', 'iris-classifier', '--model-store', {str(store)!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "'kserve' is not installed" in result.stderr and "-e '.[runtime]'" in result.stderr, result.stderr


def test_the_lock_pins_every_direct_dependency_of_every_extra_as_declared() -> None:
    """`make lock` freezes '.[dev,runtime]': a pin moved into an extra must still be in the lock, unchanged."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = [
        *project["dependencies"],
        *(r for extra in project["optional-dependencies"].values() for r in extra),
    ]
    locked = {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, _, version in (
            line.partition("==")
            for line in (REPO / "requirements.lock").read_text().splitlines()
            if "==" in line
        )
    }
    for requirement in declared:
        name, _, version = requirement.partition("==")
        assert locked.get(re.sub(r"[-_.]+", "-", name).lower()) == version, (
            f"{requirement} vs requirements.lock"
        )
