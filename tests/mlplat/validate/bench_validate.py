"""Benchmark for `mlplat validate` (a script, not a test): `python -m tests.mlplat.validate.bench_validate [N]`.

Copies the repo's apps into a temporary git repo, adds N synthetic apps (default 200) with three
overlays each, then times: the whole repo, `--changed` with one app touched, and the naive loop
(`kubectl kustomize | checkov` per overlay) on a sample of 20 overlays. Each figure is printed with
the 1-minute load average before and after it and the CPU count: on a shared machine a figure
means little without them.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
SAMPLE = 20


def make_apps(repo: Path, count: int) -> None:
    """Synthetic CPU apps shaped like iris-classifier, one team namespace each."""
    template = repo / "apps" / "iris-classifier"
    for i in range(count):
        name = f"synth-{i:03d}"
        dest = repo / "apps" / name
        shutil.copytree(template, dest)
        for path in dest.rglob("*.yaml"):
            path.write_text(
                path.read_text().replace("iris-classifier", name).replace("core-ml", f"team-{i:03d}")
            )


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=b@example.com", "-c", "user.name=b", *args], cwd=repo, check=True,
                   capture_output=True)  # fmt: skip


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def cpu_seconds() -> float:
    """CPU time of every finished child process tree so far (validate waits for its kubectl and
    checkov processes, so theirs is included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path) -> tuple[float, int]:
    """Wall time and exit code; prints the load average and the CPU time the run used. On a shared
    machine the wall time grows with everyone else's load; CPU time / cores is what an idle machine
    with this many cores would need at best."""
    before, cpu = load(), cpu_seconds()
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):
        print(result.stderr, file=sys.stderr)
    elapsed = time.perf_counter() - start
    print(f"  (load average {before} -> {load()}; CPU time {cpu_seconds() - cpu:.1f} s)")
    return elapsed, result.returncode


def main() -> int:
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and not sys.argv[1].isdigit()):
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    validate = [sys.executable, "-m", "mlplat.validate"]
    print(f"{os.cpu_count()} CPUs, load average {load()}")
    with tempfile.TemporaryDirectory(prefix="mlplat-bench-") as tmp:
        repo = Path(tmp)
        for part in ("apps", "platform/argocd", "environments"):
            shutil.copytree(REPO / part, repo / part)
        make_apps(repo, count)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "bench")
        overlays = sorted(repo.glob("apps/*/overlays/*"))
        whole, code = timed([*validate, "--repo", str(repo)], REPO)
        print(f"whole repo: {len(overlays)} overlays in {whole:.1f} s (exit {code})")
        touched = repo / "apps" / "synth-000" / "base" / "inferenceservice.yaml"
        touched.write_text(touched.read_text().replace("maxReplicas: 2", "maxReplicas: 3"))
        changed, code = timed([*validate, "--repo", str(repo), "--changed"], REPO)
        print(f"--changed, one app touched (3 overlays): {changed:.1f} s (exit {code})")
        sample = overlays[:: max(1, len(overlays) // SAMPLE)][:SAMPLE]
        before = load()
        start = time.perf_counter()
        for overlay in sample:
            rendered = subprocess.run(
                ["kubectl", "kustomize", str(overlay)], capture_output=True, check=True
            ).stdout
            scan = Path(tmp, "naive.yaml")
            scan.write_bytes(rendered)
            subprocess.run([str(CHECKOV), "-f", str(scan), "--framework", "kubernetes", "--quiet", "--compact"],
                           capture_output=True, check=False)  # fmt: skip
        naive = time.perf_counter() - start
        print(f"  (naive loop: load average {before} -> {load()})")
        ours, _ = timed([*validate, "--repo", str(repo), *map(str, sample)], REPO)
        print(f"naive loop on {len(sample)} overlays: {naive:.1f} s; mlplat validate on the same: {ours:.1f} s "
              f"({naive / ours:.1f}x)")  # fmt: skip
        print(
            f"per overlay: validate whole repo {whole / len(overlays) * 1000:.0f} ms, naive {naive / len(sample) * 1000:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
