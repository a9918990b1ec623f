"""Benchmark: what the drift job costs to score 100,000 logged requests of the iris app.

Writes 100,000 request/response record pairs (one row each) in KServe's logger format, 50 records per
stored object as the logger's `batchSize` would, then times `drift.run` over them (reading, decoding,
Evidently's scores) and reports its peak memory. Run from the checkout: `.venv/bin/python -m tests.mlplat.monitoring.bench_drift [N]`.
Not a test: pytest does not collect it (no `test_` prefix), and its figures go into the README.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from mlplat import example_models, registry_gate
from mlplat.monitoring import contract, drift, records
from mlplat.monitoring.records import REQUEST, RESPONSE, VERSION_ANNOTATION, LogRecord
from tests.support.fake_mlflow import FakeRegistry, serve

REPO = Path(__file__).resolve().parents[3]
APP = "iris-classifier"
BATCH = 50


def write_logs(root: Path, count: int) -> None:
    data = example_models.iris_data().x_test
    rows = data.sample(count, replace=True, random_state=0).to_dict("records")
    batch: list[LogRecord] = []
    for i, row in enumerate(rows):
        inputs = [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]} for k, v in row.items()]
        for req_type, body in (
            (REQUEST, {"inputs": inputs}),
            (RESPONSE, {"outputs": [{"name": "p", "shape": [1], "datatype": "INT64", "data": [1]}]}),
        ):
            batch.append(
                LogRecord(
                    id=f"r{i}",
                    req_type=req_type,
                    body=json.dumps(body).encode(),
                    annotations={VERSION_ANNOTATION: "1"},
                )
            )
        if len(batch) >= BATCH:
            path = root / records.object_key("", batch[0])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(records.dump_batch(batch))
            batch = []


def main() -> int:
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and not sys.argv[1].isdigit()):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        root, store = Path(tmp) / "logs", Path(tmp) / "store"
        (store / APP / "1").mkdir(parents=True)
        reference = example_models.iris_data().x_train.assign(prediction=1)
        reference.to_csv(store / APP / "1" / contract.REFERENCE_FILE, index=False)
        write_logs(root, count)
        fake = FakeRegistry()
        fake.add_version(
            APP,
            "1",
            source=f"s3://mlplat-models/{APP}/1",
            tags={contract.REFERENCE_TAG: contract.REFERENCE_FILE},
        )
        target = drift.Target(APP, "dev", "models-core-ml", APP, "core-ml")
        terms = contract.load(APP, REPO, "dev")
        with serve(fake):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            start = time.perf_counter()
            (report,) = drift.run(
                target, records.read_tree(root), terms, registry_gate.Registry(fake.url), store, REPO
            )
            seconds = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{count} logged requests ({report.rows} rows), verdict {report.verdict!r}: {seconds:.1f} s, "
        f"peak RSS {peak_mib:.0f} MiB (before the run {before / 1024:.0f} MiB); "
        f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
