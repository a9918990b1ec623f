"""`mlplat demo`: the whole model loop on this machine, with no cloud, cluster or credentials.

Embedded MLflow (SQLite, local artifacts, loopback) → train, evaluate and register the example models
→ offline plans of every environment → `mlplat validate` of every app against that registry → serve
iris-classifier (dev) with the KServe model server and measure it → log its traffic and judge drift →
retrain it after the drift verdict (`mlplat retrain` steps in-process) and commit its promotion to dev
on a branch of a scratch git copy of the checkout → put a canary of it into prod with `mlplat promote
--canary` (in a scratch copy of apps/) and serve the stable and the canary version side
by side, each measured on the same requests. Every step's result, timing and
log go to build/demo/report.md and report.json; every process started here is stopped on success,
failure, Ctrl-C or SIGTERM. A second run reuses the registry and the model store and skips training.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra.contract import ENVIRONMENTS, MODEL_VERSION_ANNOTATION
from mlplat import checkout, example_models, model_store, registry_gate
from mlplat.mlflow_server import MlflowServer, free_port, stop_process_group, wait_http

REPO = registry_gate.REPO
WORKDIR = REPO / "build" / "demo"
SERVED_APP = "iris-classifier"
SERVED_ENV = ENVIRONMENTS[0]  # the demo serves what the first environment runs
EXPECTED = [0, 1, 2]  # the sample rows are a textbook setosa, versicolor and virginica
LATENCY_REQUESTS = 300
DRIFT_REQUESTS = 200  # per traffic window, 3 rows each: above the app's min_requests of 500 rows
# The canary step: staging's version goes to prod as a 10% canary, as an engineer would start one.
CANARY_FROM, CANARY_ENV, CANARY_PERCENT = "staging", "prod", 10
VARIANTS = ("stable", "canary")
RETRAIN_CHECKOUT = ("apps", "environments", "platform")  # what validate reads: apps, env limits, AppProjects


@dataclass
class Step:
    name: str
    status: str = "running"  # ok | failed | skipped | interrupted
    seconds: float = 0.0
    detail: str = ""
    log: str | None = None


@dataclass
class DemoReport:
    started: str
    reused_registry: bool
    steps: list[Step] = field(default_factory=list)
    registry_url: str | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    canary: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant -> version, latency, answer
    drift: list[dict[str, Any]] = field(default_factory=list)
    retrain: dict[str, Any] = field(default_factory=dict)  # version, lineage, branch, validate, history
    total_seconds: float = 0.0

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status in ("failed", "interrupted")]


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.store = workdir / "model-store"
        self.report = DemoReport(
            started=time.strftime("%Y-%m-%d %H:%M:%S"),
            reused_registry=(workdir / "mlflow" / "mlflow.db").exists(),
        )

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Time a step, print its outcome, and record an exception as its failure instead of aborting."""
        step = Step(name)
        self.report.steps.append(step)
        print(f"[demo] {name} ...", flush=True)
        start = time.monotonic()
        try:
            yield step
            if step.status == "running":
                step.status = "ok"
        except KeyboardInterrupt:
            step.status = "interrupted"
            raise
        except Exception as err:  # a step's failure is reported; the remaining steps still run
            step.status, step.detail = "failed", f"{type(err).__name__}: {err}"
        finally:
            step.seconds = round(time.monotonic() - start, 2)
            print(f"[demo]   {step.status} in {step.seconds:.1f} s {step.detail}".rstrip(), flush=True)

    def start_command(
        self, command: list[str], log_name: str, env: dict[str, str]
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """Start one of our CLI commands as its own process group, output into its log."""
        log = self.logs / log_name
        with log.open("wb") as stream:
            process = subprocess.Popen(
                command, stdout=stream, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        return process, log

    def subprocess_step(self, step: Step, command: list[str], log_name: str, env: dict[str, str]) -> None:
        """Run one of our CLI commands as its own process; its exit code is the step's result."""
        self.finish_command(step, *self.start_command(command, log_name, env))

    def finish_command(self, step: Step, process: subprocess.Popen[bytes], log: Path) -> None:
        """Wait for a started command; its exit code is the step's result, its verdict line the detail."""
        step.log = _shown(log)
        code = process.wait()
        lines = log.read_text().strip().splitlines()
        # The verdict line, when the command prints one, says more than its last line.
        verdict = [line for line in lines if "violations:" in line or "finding" in line.lower()]
        step.status = "ok" if code == 0 else "failed"
        step.detail = f"exit {code}: {(verdict or lines[-1:] or [''])[-1].strip()[:200]}"

    def run(self) -> int:
        self.logs.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        mlflow = MlflowServer(self.workdir / "mlflow")
        server: subprocess.Popen[bytes] | None = None
        env = {**os.environ, model_store.ROOT_ENV: str(self.store), "MLFLOW_TRACKING_URI": mlflow.url}
        # The plans need neither MLflow nor the models: they run while the registry starts and trains.
        plans = {
            target: self.start_command(
                [sys.executable, "-m", "mlplat.cli", "plan", "--env", target], f"plan-{target}.log", env
            )
            for target in ENVIRONMENTS
        }
        try:
            with self.step("start embedded MLflow (SQLite, local artifacts, loopback)") as step:
                mlflow.start()
                self.report.registry_url = mlflow.url
                step.detail = f"{mlflow.url} (log {_shown(mlflow.log_path)})"
            with self.step("train, evaluate and register the example models") as step:
                if self.report.registry_url is None:
                    raise RuntimeError("no registry: MLflow did not start")
                versions = example_models.register_examples(mlflow.url, self.store)
                step.detail = "; ".join(_describe(v) for v in versions)
            for target, (process, log) in plans.items():
                with self.step(f"mlplat plan --env {target} (started in the background)") as step:
                    self.finish_command(step, process, log)
            if self.report.registry_url is None:
                return 1  # validate and serve need the registry; `finally` writes the report
            with self.step("mlplat validate --registry (every app, every environment)") as step:
                command = [sys.executable, "-m", "mlplat.validate", "--registry", mlflow.url]
                self.subprocess_step(step, command, "validate.log", env)
            url = None
            with self.step(f"serve {SERVED_APP} ({SERVED_ENV}) with the KServe model server") as step:
                server, url = self.start_server(env)
                self.check_and_measure(step, url)
            with self.step(f"log {SERVED_APP} traffic, then judge drift: normal vs shifted inputs") as step:
                if url is None:
                    step.status, step.detail = "skipped", "the model server did not start"
                else:
                    self.log_and_judge_drift(step, url, mlflow.url)
            with self.step(
                f"retrain {SERVED_APP} after the drift verdict: fetch, train, evaluate, register with "
                "lineage and model card, propose to dev on a scratch branch, validate, history"
            ) as step:
                if not self.report.drift:
                    step.status, step.detail = "skipped", "no drift verdict to act on"
                else:
                    self.retrain_and_propose(step, mlflow.url, env)
            if server is not None:  # the canary's servers need the cores; this one is done
                stop_process_group(server)
                server = None
            with self.step(
                f"canary: promote {SERVED_APP} --to {CANARY_ENV} --canary {CANARY_PERCENT}, "
                "serve stable and canary side by side"
            ) as step:
                self.serve_canary_side_by_side(step, mlflow.url, env)
        finally:
            for process, _ in plans.values():
                stop_process_group(process)
            if server is not None:
                stop_process_group(server)
            mlflow.stop()
            self.finish(start)
        return 1 if self.report.failed else 0

    def launch_server(
        self, env: dict[str, str], app_env: str, variant: str, repo_root: Path, log_name: str
    ) -> tuple[subprocess.Popen[bytes], str]:
        """Start `mlplat serve` for one variant on a free loopback port; the caller waits and stops it."""
        port = free_port()
        command = [
            sys.executable, "-m", "mlplat.serve", SERVED_APP, "--env", app_env, "--port", str(port),
            "--variant", variant, "--model-store", str(self.store), "--repo-root", str(repo_root),
        ]  # fmt: skip
        with (self.logs / log_name).open("wb") as log:
            server = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        return server, f"http://127.0.0.1:{port}/v2/models/{SERVED_APP}"

    def start_server(self, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
        server, url = self.launch_server(env, SERVED_ENV, "stable", REPO, "serve.log")
        try:
            wait_http(f"{url}/ready", 180, server)
        except BaseException:  # the caller never learns of this process: stop it here, not orphan it
            stop_process_group(server)
            raise
        return server, url

    @contextmanager
    def side_by_side(self, env: dict[str, str], repo_root: Path) -> Iterator[dict[str, str]]:
        """Both variants of the canary environment served at once, each from its own process and port;
        every server started here is stopped on leaving, also when one never gets ready."""
        servers: dict[str, subprocess.Popen[bytes]] = {}
        try:
            urls = {}
            for variant in VARIANTS:  # all start before any is waited for: they load in parallel
                servers[variant], urls[variant] = self.launch_server(
                    env, CANARY_ENV, variant, repo_root, f"serve-{CANARY_ENV}-{variant}.log"
                )
            for variant in VARIANTS:
                wait_http(f"{urls[variant]}/ready", 180, servers[variant])
            yield urls
        finally:
            for server in servers.values():
                stop_process_group(server)

    def serve_canary_side_by_side(self, step: Step, registry_url: str, env: dict[str, str]) -> None:
        """What an engineer does to start a canary, then both versions answering the same requests.

        `mlplat promote --canary` runs for real, gate included, on a scratch copy of apps/ (the
        checkout's own files stay untouched); as the model owner would, the demo first gives staging's
        version the registry alias a prod canary needs. Each variant is its own `mlplat serve` process
        loading its own artifact (`side_by_side`).
        """
        from mlflow import MlflowClient

        from mlplat.promote import render_inference_service
        from mlplat.registry_gate import CANARY_APPROVAL_ALIAS

        checkout = self.workdir / "canary-checkout"
        if checkout.exists():
            shutil.rmtree(checkout)
        shutil.copytree(REPO / "apps", checkout / "apps", symlinks=True)
        staged = render_inference_service(checkout, SERVED_APP, CANARY_FROM).doc
        candidate = str(staged["metadata"]["annotations"][MODEL_VERSION_ANNOTATION])
        MlflowClient(registry_url, registry_url).set_registered_model_alias(
            SERVED_APP, CANARY_APPROVAL_ALIAS, candidate
        )
        promote = [
            sys.executable, "-m", "mlplat.cli", "promote", SERVED_APP, "--from", CANARY_FROM,
            "--to", CANARY_ENV, "--canary", str(CANARY_PERCENT), "--registry", registry_url,
            "--repo-root", str(checkout),
        ]  # fmt: skip
        process, log = self.start_command(promote, "canary-promote.log", env)
        try:
            code = process.wait()
        finally:  # interrupted while waiting: the promote must not outlive the demo
            stop_process_group(process)
        if code != 0:
            raise RuntimeError(f"promote --canary exited {code} (log {_shown(log)})")
        deployed = render_inference_service(checkout, SERVED_APP, CANARY_ENV).doc
        versions = {
            "stable": str(deployed["metadata"]["annotations"][MODEL_VERSION_ANNOTATION]),
            "canary": str(deployed["spec"]["canary"][0]["predictor"]["name"]).removeprefix("v"),
        }
        body = (REPO / "apps" / SERVED_APP / "sample-request.json").read_bytes()
        with self.side_by_side(env, checkout) as urls:
            measured = measure_side_by_side(urls, body, EXPECTED, LATENCY_REQUESTS)
        self.report.canary = {v: {"version": versions[v], **measured[v]} for v in VARIANTS}
        step.detail = "; ".join(
            f"{v} v{versions[v]} → {measured[v]['predicted']}: p50 {measured[v]['p50']} ms, "
            f"p99 {measured[v]['p99']} ms"
            for v in VARIANTS
        )

    def check_and_measure(self, step: Step, url: str) -> None:
        body = (REPO / "apps" / SERVED_APP / "sample-request.json").read_bytes()
        port = int(url.split(":")[2].split("/")[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            answer = _post(connection, f"/v2/models/{SERVED_APP}/infer", body)
            predicted = answer["outputs"][0]["data"]
            if predicted != EXPECTED:
                raise AssertionError(f"predicted {predicted}, expected {EXPECTED}")
            timings = []
            for _ in range(LATENCY_REQUESTS):
                begin = time.perf_counter()
                _post(connection, f"/v2/models/{SERVED_APP}/infer", body)
                timings.append((time.perf_counter() - begin) * 1000)
        finally:
            connection.close()
        cuts = statistics.quantiles(timings, n=100)
        self.report.latency_ms = {
            "p50": round(cuts[49], 2),
            "p95": round(cuts[94], 2),
            "requests": len(timings),
        }
        step.detail = (
            f"POST {url}/infer → {predicted} as expected; {len(timings)} requests: "
            f"p50 {cuts[49]:.1f} ms, p95 {cuts[94]:.1f} ms"
        )

    def log_and_judge_drift(self, step: Step, url: str, registry_url: str) -> None:
        """Send traffic like the training data, then traffic with shifted petals, each logged through the
        privacy marshaller in KServe's record format, and run the drift job on each window."""
        import secrets

        import numpy as np

        from mlplat.monitor import alerts_for, describe, target_from
        from mlplat.monitoring import capture, contract, drift, privacy, records
        from mlplat.promote import render_inference_service
        from mlplat.registry_gate import Registry

        terms = contract.load(SERVED_APP, REPO, SERVED_ENV)
        manifest = render_inference_service(REPO, SERVED_APP, SERVED_ENV).doc
        target = target_from(SERVED_APP, SERVED_ENV, manifest)
        version = str(
            manifest["metadata"]["annotations"][MODEL_VERSION_ANNOTATION]
        )  # every record carries it
        test_rows = example_models.iris_data().x_test
        rng = np.random.default_rng(0)
        normal = test_rows.sample(DRIFT_REQUESTS * 3, replace=True, random_state=0).reset_index(drop=True)
        normal = normal + rng.normal(0, 0.05, normal.shape)
        windows = {
            "normal": normal,
            "shifted": normal.assign(
                petal_length=normal["petal_length"] + 2.5, petal_width=normal["petal_width"] + 1.0
            ),
        }
        policy = privacy.FieldPolicy(terms, secrets.token_bytes(32))
        verdicts = []
        with privacy.serving(policy) as marshaller:
            for name, rows in windows.items():
                root = self.workdir / "inference-logs" / name
                if root.exists():
                    shutil.rmtree(root)
                recorder = capture.Recorder(root, marshaller, target.namespace, target.isvc, version)
                for start in range(0, len(rows), 3):
                    chunk = rows.iloc[start : start + 3]
                    inputs = [
                        {
                            "name": c,
                            "shape": [len(chunk)],
                            "datatype": "FP64",
                            "data": chunk[c].round(3).tolist(),
                        }
                        for c in rows.columns
                    ]
                    recorder.infer(f"{url}/infer", {"parameters": {"content_type": "pd"}, "inputs": inputs})
                recorder.flush()
                begin = time.monotonic()
                reports = drift.run(
                    target, records.read_tree(root), terms, Registry(registry_url), self.store, REPO
                )
                drift.publish(
                    target,
                    drift.exposition(target, terms, reports),
                    None,
                    self.workdir / f"drift-{name}.prom",
                )
                for report in reports:
                    self.report.drift.append(
                        {
                            "window": name,
                            "seconds": round(time.monotonic() - begin, 2),
                            **describe(report, terms),
                        }
                    )
                    verdicts.append(
                        f"{name}: {report.verdict} (alerts: {', '.join(alerts_for(report, terms)) or 'none'})"
                    )
        step.detail = "; ".join(verdicts)
        expected = {"normal": "no drift", "shifted": "drift"}
        wrong = [d for d in self.report.drift if d["verdict"] != expected[d["window"]]]
        if wrong or len(self.report.drift) != len(expected):
            raise AssertionError(f"drift verdicts {[(d['window'], d['verdict']) for d in self.report.drift]}")

    def retrain_and_propose(self, step: Step, registry_url: str, env: dict[str, str]) -> None:
        """The retraining pipeline's steps in-process, as the cluster's workflow runs them after a drift
        alert, then `mlplat validate --registry` on the proposed commit and the app's history.

        The promotion is committed on a branch of a scratch git copy of apps/ (`build/demo/retrain-checkout`,
        with what validate reads), never the user's checkout. The training data is the iris data set re-split with another seed,
        standing in for newly labelled data: the drifted traffic the demo logged carries no labels.
        """
        from mlplat.retrain import data, history, lineage, steps

        root = self.workdir / "retrain"
        source = root / "source"
        source.mkdir(parents=True, exist_ok=True)
        for name, body in retraining_data().items():
            (source / name).write_bytes(body)
        record = data.fetch(str(source), root / "data")
        steps.train(SERVED_APP, root / "data", root / "model", root / "checkpoint", None)
        scores = steps.evaluate(SERVED_APP, root / "model", root / "data", root / "evaluation.json", REPO)
        drifted = [d for d in self.report.drift if d["verdict"] == "drift"]
        who = steps.Lineage(
            "drift",
            f"mlplat demo: drift verdict on the {drifted[0]['window'] if drifted else 'logged'} traffic window",
        )
        version, existed = steps.register(
            SERVED_APP,
            root / "model",
            root / "data",
            root / "evaluation.json",
            registry_url,
            who,
            REPO,
            self.store,
        )
        checkout = self.workdir / "retrain-checkout"
        if checkout.exists():
            shutil.rmtree(checkout)
        for part in RETRAIN_CHECKOUT:
            shutil.copytree(REPO / part, checkout / part, symlinks=True)
        _git_snapshot(checkout)
        branch, _ = steps.propose(SERVED_APP, version, SERVED_ENV, None, registry_url, checkout)
        validate = [
            sys.executable, "-m", "mlplat.validate", str(checkout / "apps" / SERVED_APP), "--repo", str(checkout),
            "--registry", registry_url,
        ]  # fmt: skip
        process, log = self.start_command(validate, "retrain-validate.log", env)
        try:
            code = process.wait()
        finally:
            stop_process_group(process)
        if code != 0:
            raise RuntimeError(f"validate of the proposed commit exited {code} (log {_shown(log)})")
        chain = history.history(checkout, SERVED_APP, list(ENVIRONMENTS), registry_url)
        (self.workdir / "history.txt").write_text(chain)
        metric = next(k for k in scores if k.startswith(registry_gate.METRIC_TAG_PREFIX))
        self.report.retrain = {
            "version": version,
            "reused": existed,
            "data_sha256": record["sha256"],
            "rows": record["rows"],
            "metric": f"{metric.removeprefix(registry_gate.METRIC_TAG_PREFIX)} {scores[metric]}",
            "card": f"{_shown(model_store.to_local(model_store.version_uri(SERVED_APP, version), self.store))}/"
            f"{lineage.MODEL_CARD_FILE}",
            "branch": branch,
            "checkout": _shown(checkout),
            "validate_log": _shown(log),
            "history": chain,
        }
        step.detail = (
            f"v{version} {'reused (same data and code)' if existed else 'registered'}, "
            f"{self.report.retrain['metric']}, data sha256 {record['sha256'][:12]}; branch {branch} "
            f"in {_shown(checkout)}; validate --registry passed"
        )

    def finish(self, start: float) -> int:
        self.report.total_seconds = round(time.monotonic() - start, 1)
        (self.workdir / "report.json").write_text(json.dumps(asdict(self.report), indent=2) + "\n")
        (self.workdir / "report.md").write_text(render_markdown(self.report))
        print(f"[demo] {len(self.report.failed)} failed step(s), {self.report.total_seconds:.1f} s in all")
        print(f"[demo] report: {_shown(self.workdir / 'report.md')}")
        return 1 if self.report.failed else 0


def measure_side_by_side(
    urls: dict[str, str], body: bytes, expected: list[Any], requests: int
) -> dict[str, dict[str, Any]]:
    """Send the same V2 request to every variant, `requests` times each, alternating between them so
    both meet the same moments of machine load; each variant's answer must be `expected`.
    Returns per variant its predictions and p50/p99 in milliseconds."""
    connections = {}
    for variant, url in urls.items():
        host, port = url.split("/")[2].split(":")
        connections[variant] = (
            http.client.HTTPConnection(host, int(port), timeout=10),
            "/" + url.split("/", 3)[3],
        )
    timings: dict[str, list[float]] = {variant: [] for variant in urls}
    predicted: dict[str, Any] = {}
    try:
        for variant, (connection, path) in connections.items():
            predicted[variant] = _post(connection, f"{path}/infer", body)["outputs"][0]["data"]
            if predicted[variant] != expected:
                raise AssertionError(
                    f"the {variant} version predicted {predicted[variant]}, expected {expected}"
                )
        for _ in range(requests):
            for variant, (connection, path) in connections.items():
                begin = time.perf_counter()
                _post(connection, f"{path}/infer", body)
                timings[variant].append((time.perf_counter() - begin) * 1000)
    finally:
        for connection, _ in connections.values():
            connection.close()
    measured = {}
    for variant, values in timings.items():
        cuts = statistics.quantiles(values, n=100)
        measured[variant] = {
            "predicted": predicted[variant],
            "p50": round(cuts[49], 2),
            "p99": round(cuts[98], 2),
            "requests": len(values),
        }
    return measured


def retraining_data() -> dict[str, bytes]:
    """The demo's "new" training data: iris re-split with seed 1 (the examples split with seed 0)."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    from mlplat.retrain import data

    examples = example_models.iris_data()
    frame = load_iris(as_frame=True).frame
    features = frame.drop(columns="target").set_axis(list(examples.x_train.columns), axis=1)
    x_train, x_test, y_train, y_test = train_test_split(
        features, frame["target"], test_size=0.3, random_state=1, stratify=frame["target"]
    )
    return data.to_files(x_train, y_train, x_test, y_test)


def _git_snapshot(root: Path) -> None:
    """Make `root` a git repository with one commit of its files, under the demo's own identity."""
    identity = ["-c", "user.name=mlplat demo", "-c", "user.email=demo@mlplat.invalid"]
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        [*identity, "commit", "-q", "-m", "apps/ as checked out"],
    ):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def _shown(path: Path) -> str:
    """Repository-relative when inside the checkout (as the report is read there), else absolute."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _post(connection: http.client.HTTPConnection, path: str, body: bytes) -> Any:
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise AssertionError(f"POST {path} answered {response.status}: {data[:300]!r}")
    return json.loads(data)


def _describe(version: example_models.ExampleVersion) -> str:
    how = "reused" if version.reused else "trained" if version.metric else "metadata only"
    score = f" {version.metric} {version.value:.3f}" if version.metric and version.value is not None else ""
    return f"{version.model} v{version.version} {how}{score}"


def render_markdown(report: DemoReport) -> str:
    lines = [
        "# mlplat demo report",
        "",
        f"Started {report.started}; {report.total_seconds:.1f} s in all; registry "
        f"{'reused' if report.reused_registry else 'created'} ({report.registry_url or 'not started'}).",
        "",
        "| step | result | seconds | detail |",
        "|---|---|---|---|",
        *[
            f"| {s.name} | {s.status} | {s.seconds:.1f} | {s.detail.replace('|', '/')}"
            + (f" (log `{s.log}`)" if s.log else "")
            + " |"
            for s in report.steps
        ],
        "",
        "Honest notes: llm-chat is registered as metadata only (its store folder holds a model card, no",
        "weights, no evaluation run here). Plans run the Pulumi program under the mock engine, no cloud.",
    ]
    if report.drift:
        lines += [
            "",
            "## Inference logging and drift",
            "",
            "Requests and responses were logged in KServe v0.20's logger record format through the privacy",
            "marshaller (`mlplat/monitoring/privacy.py`), written under the logger's object keys into",
            "`build/demo/inference-logs/<window>/`. On the cluster KServe's agent sidecar writes them; here the",
            "demo's client (`mlplat/monitoring/capture.py`) builds the same records around each call. The drift job",
            "compared each window with the reference data registered with the served version.",
            "",
            "| window | version | rows | verdict | drift scores | alerts that would fire | seconds |",
            "|---|---|---|---|---|---|---|",
            *[
                f"| {d['window']} | v{d['version']} | {d['rows']} | {d['verdict']} | "
                + ", ".join(f"{k} {v:.3f}" for k, v in d["feature_scores"].items())
                + f" ({d['method']}, threshold {d['threshold']}) | {', '.join(d['alerts']) or 'none'} | {d['seconds']} |"
                for d in report.drift
            ],
        ]
    if report.retrain:
        r = report.retrain
        lines += [
            "",
            "## Retraining: drift verdict → new version → promotion commit",
            "",
            "The drift verdict started the retraining pipeline's steps in-process, the same `mlplat retrain` code the",
            "cluster's workflow runs in containers: fetch (content hash), train (checkpointed), evaluate, register",
            "with lineage tags and a model card, propose. Training data: iris re-split with seed 1 "
            f"({r['rows']['train']} training, {r['rows']['test']} test rows),",
            "standing in for newly labelled data (the logged traffic has no labels).",
            "",
            f"- version: v{r['version']} ({'reused: same data and code as before' if r['reused'] else 'registered'}),"
            f" {r['metric']}, data sha256 `{r['data_sha256']}`",
            f"- model card: `{r['card']}`",
            f"- promotion to {SERVED_ENV}: committed on branch `{r['branch']}` of `{r['checkout']}`"
            " (a scratch git copy of `apps/`, `environments/` and `platform/`); a pull request is the cluster workflow's job",
            f"- `mlplat validate --registry` on that commit: passed (log `{r['validate_log']}`)",
            "",
            f"`mlplat history {SERVED_APP}` on that checkout (there, the other environments' versions were set by its"
            " one snapshot commit):",
            "",
            "```",
            *r["history"].rstrip().splitlines(),
            "```",
        ]
    if report.latency_ms:
        lines += ["", f"Latency over {report.latency_ms['requests']:.0f} sequential V2 requests on loopback: "
                  f"p50 {report.latency_ms['p50']} ms, p95 {report.latency_ms['p95']} ms."]  # fmt: skip
    if report.canary:
        lines += [
            "",
            "## Canary: stable and canary side by side",
            "",
            f"`mlplat promote {SERVED_APP} --from {CANARY_FROM} --to {CANARY_ENV} --canary {CANARY_PERCENT}` ran on a",
            "scratch copy of `apps/` (`build/demo/canary-checkout`), gate included, after the demo gave the",
            "candidate the registry alias `canary-approved` as its owner would. `mlplat serve --variant stable` and",
            "`--variant canary` then served each version from its own registered artifact on its own loopback port.",
            "Both got the same sample request, alternating, so each figure below is that version's own. On the cluster",
            'the gateway measures each version the same way (dashboard "Canary: stable vs canary").',
            "",
            "| variant | model version | predictions | p50 ms | p99 ms | requests |",
            "|---|---|---|---|---|---|",
            *[
                f"| {variant} | v{d['version']} | {d['predicted']} | {d['p50']} | {d['p99']} | {d['requests']} |"
                for variant, d in report.canary.items()
            ],
        ]
    return "\n".join(lines) + "\n"


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (e.g. from make or CI) unwinds like Ctrl-C, so every `finally` stops its processes."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo", help="the whole loop locally: MLflow, models, plans, validate, serve"
    )
    parser.add_argument("--workdir", type=Path, default=WORKDIR, help="state and report folder (build/demo)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checkout.own_code(args, "the demo runs the apps, stack files and program beside its own code")
    with _sigterm_as_interrupt():
        return Demo(args.workdir.resolve()).run()
