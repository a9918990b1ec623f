"""`mlplat monitor`: the privacy marshaller and the drift job of one app, as the cluster runs them.

`mlplat monitor marshaller APP --env ENV` serves KServe's HTTP marshaller protocol for the app's
logger (its field policy applied, the environment's hash key read from a file). `mlplat monitor drift
APP --env ENV --logs DIR` judges a window of stored log records against each served version's
reference data and publishes the scores (Pushgateway or text file); the report says which alert
would fire. Exit 0 when it judged, 2 on a usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infra import contract
from infra.contract import TEAM_LABEL
from mlplat import checkout, loopback, model_store, registry_gate
from mlplat.monitoring import contract as contract_file
from mlplat.monitoring import drift, metrics, privacy, records
from mlplat.promote import Refused, UsageError, check_app, check_env, render_inference_service


def target_of(app: str, env: str, repo_root: Path) -> drift.Target:
    """Namespace, InferenceService and team as the environment's manifest declares them."""
    return target_from(app, env, render_inference_service(repo_root, app, env).doc)


def target_from(app: str, env: str, manifest: dict[str, Any]) -> drift.Target:
    meta = manifest["metadata"]
    return drift.Target(
        app=app,
        env=env,
        namespace=str(meta.get("namespace") or ""),
        isvc=str(meta["name"]),
        team=str((meta.get("labels") or {}).get(TEAM_LABEL) or ""),
    )


def alerts_for(report: drift.VersionReport, contract: contract_file.MonitoringContract) -> list[str]:
    """The alerts of platform/prometheus/rules/model-monitoring.yaml these scores would fire."""
    fired = [f"ModelFeatureDrift ({feature})" for feature in report.drifted]
    if report.dataset_drift:
        fired.append("ModelDatasetDrift")
    if (
        report.quality is not None
        and report.quality_threshold is not None
        and report.labelled_rows >= metrics.MIN_LABELLED_ROWS
        and report.quality < report.quality_threshold
    ):
        fired.append("ModelQualityBelowThreshold")
    if report.no_verdict == metrics.NO_REFERENCE:
        fired.append("ModelMonitoringNoVerdict")
    return fired


def describe(report: drift.VersionReport, contract: contract_file.MonitoringContract) -> dict[str, Any]:
    return {
        "version": report.version,
        "rows": report.rows,
        "verdict": report.verdict,
        "method": contract.drift.method,
        "threshold": contract.drift.threshold,
        "feature_scores": {k: round(v, 4) for k, v in report.feature_scores.items()},
        "drifted": report.drifted,
        "drifted_share": round(report.drifted_share, 4),
        "prediction_share": report.prediction_share,
        "reference_prediction_share": report.reference_prediction_share,
        "quality": report.quality,
        "quality_threshold": report.quality_threshold,
        "labelled_rows": report.labelled_rows,
        "skipped_requests": report.skipped_requests,
        "alerts": alerts_for(report, contract),
    }


def run_drift(args: argparse.Namespace) -> int:
    root = checkout.root(args)
    store = model_store.local_store(args.model_store, root)
    check_env(args.env)
    check_app(root, args.app)
    contract = contract_file.load(args.app, root, args.env)
    target = target_of(args.app, args.env, root)
    if not args.logs.is_dir():
        raise UsageError(f"--logs {args.logs}: not a folder of stored log records")
    reports = drift.run(
        target,
        _logs(args.logs),
        contract,
        registry_gate.Registry(args.registry),
        store,
        root,
        args.labels,
    )
    if not reports:
        # Publishing nothing would replace the app's Pushgateway group with nothing and erase the
        # last-run time that ModelMonitoringStale watches: keep the old one aging instead.
        raise drift.DriftJobError(f"no records under {args.logs}: is the logger writing? nothing published")
    drift.publish(target, drift.exposition(target, contract, reports), args.pushgateway, args.textfile)
    described = [describe(r, contract) for r in reports]
    if args.format == "json":
        print(json.dumps({"app": args.app, "env": args.env, "versions": described}, indent=2))
    else:
        for d in described:
            scores = ", ".join(f"{k} {v:.3f}" for k, v in d["feature_scores"].items()) or "-"
            print(
                f"{args.app} v{d['version']} ({args.env}): {d['verdict']} over {d['rows']} rows; {d['method']}: {scores}"
            )
            print(f"  alerts that would fire: {', '.join(d['alerts']) or 'none'}")
    return 0


def _logs(folder: Path) -> Iterator[records.LogRecord]:
    """The records stored under --logs (read as the drift job consumes them); a file there that cannot be
    read is said to be the logs', not taken for a failure to publish (`_guarded`'s OSError)."""
    try:
        yield from records.read_tree(folder)
    except OSError as err:
        raise drift.DriftJobError(f"cannot read the logs under --logs {folder}: {err}") from None


def run_marshaller(args: argparse.Namespace) -> int:
    check_env(args.env)
    if args.contract is not None:  # on the cluster: the app's ConfigMap, generated from the same file
        contract = contract_file.load_file(args.contract, str(args.contract), args.env)
    else:
        root = checkout.root(args)
        check_app(root, args.app)
        contract = contract_file.load(args.app, root, args.env)
    try:
        key = args.hash_key_file.read_bytes().strip() if args.hash_key_file else b""
        policy = privacy.FieldPolicy(contract, key)
    except (OSError, ValueError) as err:
        raise UsageError(f"--hash-key-file: {err}") from None
    with privacy.serving(policy, args.host, args.port) as url:
        print(f"privacy marshaller for {args.app} ({args.env}) on {url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            return 0
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("monitor", help="model monitoring: privacy marshaller and drift job")
    commands = parser.add_subparsers(dest="monitor_command", required=True, metavar="COMMAND")

    drift_cmd = commands.add_parser("drift", help="judge logged requests against the reference data")
    drift_cmd.add_argument("app")
    drift_cmd.add_argument("--env", required=True)
    drift_cmd.add_argument("--logs", type=Path, required=True, help="local copy of the app's logs prefix")
    drift_cmd.add_argument("--labels", type=Path, default=None, help="ground-truth labels folder, if any")
    drift_cmd.add_argument(
        "--registry",
        default=os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5000",
        help="MLflow URL",
    )
    drift_cmd.add_argument(
        "--model-store", type=Path, default=None, help=f"local folder of {contract.MODEL_STORE_URI}"
    )
    drift_cmd.add_argument("--pushgateway", default=None, help="Pushgateway URL to publish the scores to")
    drift_cmd.add_argument("--textfile", type=Path, default=None, help="write the scores in the text format")
    drift_cmd.add_argument("--format", choices=("text", "json"), default="text")
    drift_cmd.set_defaults(func=_guarded(run_drift))

    marshal = commands.add_parser("marshaller", help="serve the app's privacy marshaller")
    marshal.add_argument("app")
    marshal.add_argument("--env", required=True)
    marshal.add_argument("--host", default="127.0.0.1")
    marshal.add_argument("--port", type=loopback.tcp_port, default=9083)
    marshal.add_argument("--hash-key-file", type=Path, default=None, help="the environment's hash key")
    marshal.add_argument(
        "--contract", type=Path, default=None, help="the app's monitoring.yaml (default: from the repository)"
    )
    marshal.set_defaults(func=_guarded(run_marshaller))
    for sub in (drift_cmd, marshal):
        checkout.add_option(sub, "--repo-root", argparse.SUPPRESS)


def _guarded(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = command(args)
        except (UsageError, contract_file.ContractError, Refused) as err:
            print(f"mlplat monitor: {err}", file=sys.stderr)
            return 2
        except (
            drift.DriftJobError,
            registry_gate.RegistryUnavailable,
            registry_gate.EvaluationFileError,
        ) as err:
            print(f"mlplat monitor: cannot judge: {err}", file=sys.stderr)
            return 2
        except OSError as err:  # the Pushgateway or the text file
            print(f"mlplat monitor: cannot publish: {err}", file=sys.stderr)
            return 2
        return code

    return run
