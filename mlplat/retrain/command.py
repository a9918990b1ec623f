"""`mlplat retrain <step>` and `mlplat history`: the command line of the retraining pipeline.

The steps and their options are a contract with the cluster side (the WorkflowTemplates under
`apps/<app>/training/` run these commands in containers): change one only together with them.
Exit codes: 0 done, 1 refused (a version below its threshold, the gate), 2 bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from infra.contract import ENVIRONMENTS
from mlplat import checkout, registry_gate
from mlplat.retrain import lineage


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_steps(subparsers.add_parser("retrain", help="the retraining pipeline's steps (fetch, train, ...)"))
    parser = subparsers.add_parser(
        "history", parents=[_common()], help="why each environment runs its version"
    )
    parser.add_argument("--env", action="append", help="one environment (default: all)")
    parser.add_argument("--registry", help="MLflow tracking URL (default: $MLFLOW_TRACKING_URI)")
    parser.set_defaults(func=run_history)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("app", help="app folder under apps/")
    checkout.add_option(common, "--repo-root", argparse.SUPPRESS)
    return common


def add_steps(parser: argparse.ArgumentParser) -> None:
    """The steps and their flags on `parser`: both `mlplat retrain` and `python -m mlplat.retrain`
    (the entry point the pipelines run in the image) build their command line here."""
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    common = _common()

    step = steps.add_parser("fetch", parents=[common], help="copy the training data and hash it")
    step.add_argument("--source", required=True, help="a local folder or s3://<bucket>/<prefix>")
    step.add_argument("--out", required=True, type=Path)

    step = steps.add_parser("train", parents=[common], help="train the app's model (resumes a checkpoint)")
    step.add_argument("--data", required=True, type=Path)
    step.add_argument("--out", required=True, type=Path)
    step.add_argument("--checkpoint-dir", type=Path)
    step.add_argument("--params", help='JSON, e.g. {"variant": 2}')

    step = steps.add_parser("evaluate", parents=[common], help="score the model, write the evaluation tags")
    step.add_argument("--model", required=True, type=Path)
    step.add_argument("--data", required=True, type=Path)
    step.add_argument("--out", required=True, type=Path)

    step = steps.add_parser(
        "register",
        parents=[common],
        help="register the version with lineage and card",
        description="Upload the model and its card to the next version's store key, then register that "
        "version with its lineage tags. Run by hand only while no retraining workflow of the app runs: the "
        "workflow's mutex does not hold this command, which run between a workflow's upload and its "
        "registration registers the workflow's model as an orphan (never served) and refuses the "
        "workflow's registration (README 'Bytes before names').",
    )
    step.add_argument("--model", required=True, type=Path)
    step.add_argument("--data", required=True, type=Path)
    step.add_argument("--evaluation", required=True, type=Path)
    step.add_argument("--tracking-uri", required=True)
    step.add_argument("--trigger", required=True, choices=lineage.TRIGGERS)
    step.add_argument("--triggered-by", required=True)
    step.add_argument("--code-commit")
    step.add_argument("--image-digest")
    step.add_argument("--parent-run")

    step = steps.add_parser("propose", parents=[common], help="commit the version's promotion on a branch")
    step.add_argument("--version", required=True)
    step.add_argument("--env", default="dev")
    step.add_argument("--branch")
    step.add_argument("--registry", help="MLflow tracking URL (default: $MLFLOW_TRACKING_URI)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlplat.retrain import data, steps

    root = checkout.root(args)
    try:
        if args.step == "fetch":
            steps.example(args.app)
            record = data.fetch(args.source, args.out)
            print(
                f"{args.app}: fetched {record['uri']} into {args.out} (sha256 {record['sha256']}, rows {record['rows']})"
            )
        elif args.step == "train":
            print(steps.train(args.app, args.data, args.out, args.checkpoint_dir, args.params))
        elif args.step == "evaluate":
            tags = steps.evaluate(args.app, args.model, args.data, args.out, root)
            print(" ".join(f"{k}={v}" for k, v in tags.items()))
        elif args.step == "register":
            who = steps.Lineage(
                args.trigger, args.triggered_by, args.code_commit, args.image_digest, args.parent_run
            )
            # stdout is the version alone: the workflow hands it to `propose` and into a branch name
            # (`outputs.result`, the step's whole stdout), and MLflow's client writes "View run ... at"
            # lines to stdout when a run ends (mlflow 3.17 tracking/_tracking_service/client.py _log_url).
            with contextlib.redirect_stdout(sys.stderr):
                version, existed = steps.register(
                    args.app, args.model, args.data, args.evaluation, args.tracking_uri, who, root
                )
            if existed:
                print(
                    f"{args.app}: version {version} already holds this data and code; nothing registered",
                    file=sys.stderr,
                )
            print(version)
        else:
            registry = args.registry or os.environ.get("MLFLOW_TRACKING_URI")
            try:
                branch, body = steps.propose(args.app, args.version, args.env, args.branch, registry, root)
            except steps.NothingToPropose as done:  # not a failure: the promotion happened before
                print(f"{steps.NOTHING_TO_PROPOSE}: {done}")
                return 0
            print(f"branch: {branch}\n\n{body}")
    except steps.Refused as err:
        print(f"mlplat retrain {args.step}: refused: {err}", file=sys.stderr)
        return 1
    # OSError: an unwritable --out, a full disk; said without a traceback.
    except (steps.UsageError, data.DataError, OSError) as err:
        print(f"mlplat retrain {args.step}: {err}", file=sys.stderr)
        return 2
    return 0


def run_history(args: argparse.Namespace) -> int:
    from mlplat import promote
    from mlplat.retrain import history

    registry = args.registry or os.environ.get("MLFLOW_TRACKING_URI")
    try:
        if not registry:
            raise promote.UsageError("no registry: pass --registry URL or set MLFLOW_TRACKING_URI")
        print(
            history.history(checkout.root(args), args.app, args.env or list(ENVIRONMENTS), registry),
            end="",
        )
    except (promote.UsageError, promote.Refused, registry_gate.RegistryUnavailable) as err:
        print(f"mlplat history: {err}", file=sys.stderr)
        return 2
    return 0
