"""`python -m mlplat.monitoring`: the entry point of the `mlplat-monitor` image (images/monitor).

It parses exactly what `mlplat monitor ...` parses (the same `mlplat.monitor.register`), so the
marshaller sidecar and the drift CronJobs pass the arguments a person types locally. It is not
`mlplat.cli` because that imports every command (Pulumi, checkov, boto3...) and finds its checkout
with git: the image carries only the monitor command's dependencies and its own copy of `apps/`
(`--repo-root`'s default, `registry_gate.REPO`).
"""

from __future__ import annotations

import argparse
import sys

from mlplat import entrypoint, monitor


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mlplat", description="model monitoring, as `mlplat monitor`")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    monitor.register(commands)
    return root


if __name__ == "__main__":
    sys.exit(entrypoint.run(parser()))
