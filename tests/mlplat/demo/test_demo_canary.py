"""Stable and canary served side by side locally: each its own artifact, its own port, its own figures."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from mlplat import demo, loopback, serve

STABLE_URI, CANARY_URI = "s3://mlplat-models/iris-classifier/1", "s3://mlplat-models/iris-classifier/2"


def _isvc(stable_model: dict[str, Any], canaries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "iris-classifier"},
        "spec": {"predictor": {"model": stable_model}, "canary": canaries},
    }


MLFLOW = {"modelFormat": {"name": "mlflow"}, "storageUri": STABLE_URI}
CANARY = {"trafficPercent": 10, "predictor": {"name": "v2", "model": {"storageUri": CANARY_URI}}}


def test_canary_variant_loads_the_canary_artifact_not_the_stable_one() -> None:
    doc = _isvc(MLFLOW, [CANARY])
    assert serve.variant_model(doc, "stable", "prod")["storageUri"] == STABLE_URI
    canary = serve.variant_model(doc, "canary", "prod")
    assert canary["storageUri"] == CANARY_URI
    assert canary["modelFormat"] == {"name": "mlflow"}, "the canary inherits the stable predictor's format"


def test_canary_of_a_gpu_predictor_is_refused_though_it_names_no_gpu_itself() -> None:
    gpu = {**MLFLOW, "resources": {"limits": {"nvidia.com/gpu": "1"}}}
    with pytest.raises(serve.NotServable, match=r"nvidia\.com/gpu"):
        serve.variant_model(_isvc(gpu, [CANARY]), "canary", "prod")


def test_two_canaries_are_refused_rather_than_serving_an_arbitrary_one() -> None:
    second = {**CANARY, "predictor": {"name": "v3", "model": {"storageUri": CANARY_URI[:-1] + "3"}}}
    with pytest.raises(serve.NotServable, match="not a list of one canary"):
        serve.variant_model(_isvc(MLFLOW, [CANARY, second]), "canary", "prod")


@pytest.mark.parametrize("entry", ["v2", {"predictor": "v2"}, {"predictor": {"name": "v2"}}])
def test_a_malformed_canary_entry_is_refused_with_a_message_not_a_traceback(entry: Any) -> None:
    with pytest.raises(serve.NotServable, match=r"spec\.canary\[0\]\.predictor\.model is missing"):
        serve.variant_model(_isvc(MLFLOW, [entry]), "canary", "prod")


def test_serving_a_canary_the_environment_does_not_run_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = serve.argparse.ArgumentParser()
    serve.add_arguments(parser)
    code = serve.run(parser.parse_args(["iris-classifier", "--env", "prod", "--variant", "canary"]))
    assert code == 2
    err = capsys.readouterr().err
    assert "apps/iris-classifier/overlays/prod has no canary" in err and "Traceback" not in err


def test_an_unknown_variant_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    parser = serve.argparse.ArgumentParser()
    serve.add_arguments(parser)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["iris-classifier", "--variant", "blue"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'blue'" in capsys.readouterr().err


@contextmanager
def _fake_model_server(delay: float, answer: list[int]) -> Iterator[str]:
    """A V2 endpoint answering `answer` after `delay` seconds."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(delay)
            body = json.dumps({"outputs": [{"name": "predict", "data": answer}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with loopback.serving(Handler, poll_interval=0.01) as url:
        yield f"{url}/v2/models/iris-classifier"


def test_each_version_gets_its_own_latency_not_the_other_ones() -> None:
    with (
        _fake_model_server(0.0, [0, 1, 2]) as fast,
        _fake_model_server(0.05, [0, 1, 2]) as slow,
    ):
        measured = demo.measure_side_by_side({"stable": fast, "canary": slow}, b"{}", [0, 1, 2], 20)
    # p50, not p99: a loaded machine may stall any single request of the fast one.
    assert measured["canary"]["p50"] >= 50 > measured["stable"]["p50"], measured
    assert measured["canary"]["p99"] >= 50, measured
    assert measured["stable"]["requests"] == measured["canary"]["requests"] == 20
    assert measured["canary"]["predicted"] == [0, 1, 2]


def test_a_canary_answering_other_predictions_fails_the_step_and_names_the_canary() -> None:
    with (
        _fake_model_server(0.0, [0, 1, 2]) as stable,
        _fake_model_server(0.0, [0, 1, 1]) as canary,
        pytest.raises(AssertionError, match=r"the canary version predicted \[0, 1, 1\]"),
    ):
        demo.measure_side_by_side({"stable": stable, "canary": canary}, b"{}", [0, 1, 2], 5)


def test_report_shows_stable_and_canary_each_with_version_and_p50_p99() -> None:
    report = demo.DemoReport(started="now", reused_registry=True)
    report.canary = {
        "stable": {"version": "1", "predicted": [0, 1, 2], "p50": 3.1, "p99": 7.5, "requests": 300},
        "canary": {"version": "2", "predicted": [0, 1, 2], "p50": 3.4, "p99": 9.25, "requests": 300},
    }
    text = demo.render_markdown(report)
    assert "| variant | model version | predictions | p50 ms | p99 ms | requests |" in text
    assert "| stable | v1 | [0, 1, 2] | 3.1 | 7.5 | 300 |" in text
    assert "| canary | v2 | [0, 1, 2] | 3.4 | 9.25 | 300 |" in text


def test_when_the_canary_server_never_gets_ready_both_servers_are_stopped(
    demo_run: demo.Demo, servers_ready: Callable[[int], list[Any]]
) -> None:
    started = servers_ready(1)  # the stable server answers, the canary never does
    with pytest.raises(TimeoutError), demo_run.side_by_side(dict(os.environ), demo.REPO):
        pytest.fail("the servers were reported ready")
    assert len(started) == 2
    assert all(process.poll() is not None for process in started), "a model server outlived the failed start"
