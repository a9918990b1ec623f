"""Serving a registered version with the real KServe model server over HTTP on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from mlplat import serve
from mlplat.mlflow_server import free_port, stop_process_group, wait_http
from mlplat.promote import REPO

from .conftest import APP, Registry


@pytest.mark.slow
def test_serves_the_dev_version_over_v2(registry: Registry, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "mlplat.serve", APP, "--env", "dev", "--port", str(port)]
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, "--model-store", str(registry.store)], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/models/{APP}/ready", 180, server)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v2/models/{APP}/infer",
            data=(REPO / "apps" / APP / "sample-request.json").read_bytes(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
    finally:
        stop_process_group(server)
    assert server.poll() is not None
    assert answer["model_name"] == APP and answer["id"] == "iris-sample-1"
    assert answer["outputs"][0]["data"] == [0, 1, 2]  # setosa, versicolor, virginica
    # dev's overlay names version 2; the server must have loaded exactly that artifact.
    assert f"s3://mlplat-models/{APP}/2 from {registry.store / APP / '2'}" in log.read_text()


def test_gpu_app_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    parser = serve.argparse.ArgumentParser()
    serve.add_arguments(parser)
    assert serve.run(parser.parse_args(["llm-chat", "--model-store", str(tmp_path)])) == 1
    assert "nvidia.com/gpu" in capsys.readouterr().err


def test_missing_artifact_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    parser = serve.argparse.ArgumentParser()
    serve.add_arguments(parser)
    assert serve.run(parser.parse_args([APP, "--model-store", str(tmp_path)])) == 1
    assert "holds no MLflow model" in capsys.readouterr().err


def test_the_module_entry_point_refuses_an_abbreviated_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`--model` was taken as `--model-store` by `python -m mlplat.serve` (argparse's prefix matching),
    where `mlplat serve` refuses it: one command, two readings of its options."""
    monkeypatch.setattr(sys, "argv", ["mlplat serve", APP, "--model", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        serve.main()
    assert exit_.value.code == 2
    assert "unrecognized arguments: --model" in capsys.readouterr().err
