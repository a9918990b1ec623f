"""`python -m mlplat.retrain <step> ...`: the retraining pipelines' entry point in the mlplat image.

The WorkflowTemplates under `apps/<app>/training/` run it. It parses exactly what `mlplat retrain`
parses (the same `command.add_steps`), so a step runs in the cluster with the arguments a person types
locally. It is not `mlplat.cli` because that imports every command (Pulumi, checkov...) and re-execs
itself in its git checkout: the image has neither, and the steps that need a checkout pass `--repo-root`.
"""

from __future__ import annotations

import argparse
import sys

from mlplat import entrypoint
from mlplat.retrain import command


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m mlplat.retrain", description="the retraining pipeline's steps, as `mlplat retrain`"
    )
    command.add_steps(root)
    return root


if __name__ == "__main__":
    sys.exit(entrypoint.run(parser()))
