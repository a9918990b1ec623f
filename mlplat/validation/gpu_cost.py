"""MLP-COST-GPU-MAX: a pull request that raises what an app's GPUs can cost in an environment says so.

With `--changed`, for each changed app and environment, the most its GPU replicas can cost a month
(every InferenceService at maxReplicas, the number MLP-GPU-CAP counts) is compared with the same at the
merge base of `--base`. A rise is a *warning*: it is printed with the figures and does not fail the run,
since spending more on a model can be right; the GPU budget's owner should see it in review, next to
the environment's total that the PR's `cost` job posts.

How a replica is priced: GPUs per replica (a slice of a time-sliced pool is 1/N of a GPU) x the monthly
price per GPU of the *dearest* instance type of the pool it lands on (the pool its nodeSelector names,
else the dearest of the pools it may land on). Karpenter leaves the type to EC2 Fleet at launch
(on-demand `lowest-price`, spot `price-capacity-optimized`: aws/karpenter-provider-aws v1.14.1
pkg/providers/instance/types.go), and the cheapest type may be unavailable, so the dearest is what a
replica can cost: the same ceiling `mlplat cost` puts on a pool's maximum and the budget
(`cost.max_monthly_usd`) is held to; spot is priced at on-demand for the same reason. Prices come from infra/cost_prices.yaml and GPU counts from infra/instance_types.py, through
infra/prices.py (their one owner, which the Pulumi program prices the GPU pools' idle cost with too).

Both sides are priced with the checked-out stack configs and price table, so the difference is the app
change's own (a pool or price change shows in `mlplat cost --diff`). To stay cheap, only apps with GPUs
at the head whose own files or shared components changed are rendered at the base, from `git archive`
of those apps and apps/components into a scratch folder; nothing else of the repository is rendered.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from infra.prices import CostError, PriceTable, load_prices
from mlplat.cost import dearest_gpu_month
from mlplat.findings import Finding, RenderedDoc
from mlplat.validation import UsageError, capacity, prescreen, within
from mlplat.validation.render import SourceIndex, render
from mlplat.validation.targets import Target, app_targets, changed_files, git_lines, git_output

if TYPE_CHECKING:
    from infra.config import StackConfig

RULE = "MLP-COST-GPU-MAX"


@dataclass(frozen=True)
class GpuCost:
    """The most an app's GPU replicas can cost a month in one environment, and how that adds up."""

    usd: float
    parts: tuple[str, ...]
    doc: RenderedDoc  # the InferenceService a warning points at


def app_costs(
    docs: Sequence[RenderedDoc], apps: dict[str, str], config: StackConfig, prices: PriceTable
) -> tuple[dict[str, GpuCost], list[str]]:
    """GPU cost at maxReplicas per app (`apps`: target → app) of one environment's documents, and notes
    for InferenceServices that cannot be priced (no pool holds them: MLP-GPU-FIT says why)."""
    totals: dict[str, tuple[float, list[str], RenderedDoc]] = {}
    notes: list[str] = []
    for doc in docs:
        app = apps.get(doc.target)
        wants = capacity.demand(doc) if app else None
        if app is None or wants is None:
            continue
        predictor = (doc.doc.get("spec") or {}).get("predictor") or {}
        priced = []
        for pool in capacity.landing_pools(predictor, config):
            try:
                instance_type, per_gpu = dearest_gpu_month(
                    pool.instance_types, config.aws.region, prices, f"pool {pool.name}"
                )
            except CostError as err:
                notes.append(f"{RULE}: {doc.ref} in {config.environment} not priced: {err}")
                continue
            gpus = wants.gpus / (pool.time_slicing_replicas or 1)
            priced.append((wants.max_replicas * gpus * per_gpu, gpus, per_gpu, instance_type, pool.name))
        if not priced:
            continue
        usd, gpus, per_gpu, instance_type, pool_name = max(priced)
        name = (doc.doc.get("metadata") or {}).get("name")
        part = (
            f"{name}: {wants.max_replicas} x {gpus:g} GPU x ${per_gpu:,.2f}/GPU-month "
            f"({instance_type}, the dearest per GPU of pool {pool_name})"
        )
        total, parts, first = totals.get(app, (0.0, [], doc))
        totals[app] = (total + usd, [*parts, part], first)
    return {app: GpuCost(usd, tuple(parts), doc) for app, (usd, parts, doc) in totals.items()}, notes


def check(
    root: Path,
    base: str,
    base_name: str,
    chosen: Sequence[Target],
    docs: Sequence[RenderedDoc],
    configs: dict[str, StackConfig],
    index: SourceIndex,
) -> tuple[list[Finding], list[str]]:
    """Warnings for every (app, environment) of this `--changed` run whose GPU maximum went up."""
    try:
        prices = load_prices()
    except CostError as err:
        raise UsageError(str(err)) from None
    apps = {t.rel: t.app for t in chosen if t.app and t.env}
    envs = sorted({str(t.env) for t in chosen if t.rel in apps})
    head: dict[tuple[str, str], GpuCost] = {}
    notes: list[str] = []
    for env in envs:
        costs, more = app_costs([d for d in docs if d.env == env], apps, configs[env], prices)
        head.update({(app, env): cost for app, cost in costs.items()})
        notes += more
    touched = _touched_apps(root, base) if head else set()
    again = sorted({app for app, _ in head if touched is None or app in touched})
    before, unknown, more = _base_costs(root, base, again, envs, configs, prices)
    notes += more
    findings = []
    for (app, env), now in sorted(head.items()):
        if app not in again:
            continue  # neither its files nor the shared components changed: same render, same cost
        if (app, env) in unknown:
            continue  # the note says why the base could not be priced
        then = before.get((app, env))
        was = then.usd if then else 0.0
        if round(now.usd, 2) <= round(was, 2):
            continue
        since = f"${was:,.2f} at {base_name}" if then else f"$0.00 at {base_name} (no GPU replicas there)"
        findings.append(
            Finding(
                now.doc.source_file,
                now.doc.ref,
                RULE,
                f"{app}'s GPUs at maxReplicas could cost ${now.usd:,.2f}/month in {env}, up from {since} "
                f"(+${now.usd - was:,.2f}): {'; '.join(now.parts)}",
                f"if meant, have the GPU budget's owner approve it (`mlplat cost --env {env}` shows the "
                "environment's maximum against cost.max_monthly_usd); else lower maxReplicas or GPUs per replica",
                env,
                index.line(now.doc),
            )
        )
    return findings, notes


def _touched_apps(root: Path, base: str) -> set[str] | None:
    """Apps whose own files changed since `base`; None when a shared component changed (all may have)."""
    touched = set()
    for name in changed_files(root, base):
        parts = name.split("/")
        if name.startswith("apps/components/"):
            return None
        if parts[0] == "apps" and len(parts) > 2:
            touched.add(parts[1])
    return touched


def _base_costs(
    root: Path,
    base: str,
    apps: list[str],
    envs: list[str],
    configs: dict[str, StackConfig],
    prices: PriceTable,
) -> tuple[dict[tuple[str, str], GpuCost], set[tuple[str, str]], list[str]]:
    """GPU cost per (app, env) of `apps` as they were at the merge base of `base` and HEAD, and the
    (app, env) pairs that could not be rendered there (no figure to compare with)."""
    if not apps:
        return {}, set(), []
    # The same git runner --changed uses: a failure is a UsageError naming the command.
    commit = git_lines(root, "merge-base", base, "HEAD")[0]
    # `-z`: verbatim names, as changed_files lists them (git quotes a name with bytes above 0x80).
    present = set(git_output(root, "ls-tree", "-d", "--name-only", "-z", commit, "--", "apps/").split("\0"))
    wanted = [f"apps/{a}" for a in apps if f"apps/{a}" in present]
    if not wanted:
        return {}, set(), []
    costs: dict[tuple[str, str], GpuCost] = {}
    notes = []
    with tempfile.TemporaryDirectory(prefix="mlplat-gpu-cost-") as tmp:
        scratch = Path(tmp)
        shared = ["apps/components"] if "apps/components" in present else []
        tar_path = scratch / "base.tar"
        with tar_path.open("wb") as out:  # streamed to disk, not held in memory
            archive = subprocess.run(
                ["git", "archive", "--format=tar", commit, "--", *wanted, *shared],
                cwd=root, stdout=out, stderr=subprocess.PIPE, check=False,
            )  # fmt: skip
        if archive.returncode:  # a signal is negative: any non-zero is a failed archive
            raise UsageError(f"git archive {commit[:12]}: {archive.stderr.decode(errors='replace').strip()}")
        with tarfile.open(tar_path) as tar:
            tar.extractall(scratch / "tree", filter="data")  # no links or paths out of the scratch folder
        tree = scratch / "tree"
        targets = [t for a in wanted for env in envs for t in app_targets(tree / a, tree, env)]
        unsafe = prescreen.unsafe_targets(targets, tree)
        rendered = render([t for t in targets if t not in unsafe], tree)
        # A target that failed yields no objects; its error may name a file outside its folder (the
        # app's base, a shared component), so what it rendered says it, not where the findings point.
        produced = {d.target for d in rendered.docs}
        failed = {
            t
            for t in targets
            if t in unsafe or t.rel not in produced or any(within(f.file, t.rel) for f in rendered.findings)
        }
        unknown = {(str(t.app), str(t.env)) for t in failed}
        notes += [
            f"{RULE}: {t.rel} not compared: it does not render at {commit[:12]}" for t in sorted(failed)
        ]
        by_target = {t.rel: str(t.app) for t in targets}
        for env in envs:
            env_docs = [d for d in rendered.docs if d.env == env]
            found, more = app_costs(env_docs, by_target, configs[env], prices)
            costs.update({(app, env): cost for app, cost in found.items()})
            notes += more
    return costs, unknown, notes
