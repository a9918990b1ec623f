"""Bad input on the command line is a usage error (exit 2) naming what is wrong, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplat import cli

APP = "iris-classifier"
# Each command that asks the registry, up to the point where it does.
ASKING_THE_REGISTRY = {
    "promote": ["promote", APP, "--from", "prod", "--to", "staging"],
    "history": ["history", APP, "--env", "dev"],
    "validate": ["validate", "--no-policy-scan", "--env", "dev", f"apps/{APP}"],
    "monitor-drift": ["monitor", "drift", APP, "--env", "dev", "--logs", "LOGS"],
    "retrain-propose": ["retrain", "propose", APP, "--version", "3"],
}


@pytest.fixture(autouse=True)
def no_ambient_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1", "Invalid IPv6 URL"),  # was a ValueError traceback from urlparse
        ("http://127.0.0.1:abc", "Port could not be cast to integer"),  # was http.client.InvalidURL
        ("http://127.0.0.1:99999", "Port out of range"),
        ("http:///api", "not an http(s) URL"),
    ],
    ids=["unclosed-ipv6", "port-not-a-number", "port-out-of-range", "no-host"],
)
@pytest.mark.parametrize("command", ASKING_THE_REGISTRY, ids=str)
def test_a_malformed_registry_url_is_a_usage_error_naming_it(
    command: str, url: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(tmp_path) if a == "LOGS" else a for a in ASKING_THE_REGISTRY[command]]
    assert cli.main([*argv, "--registry", url]) == 2
    err = capsys.readouterr().err
    assert f"registry {url!r}" in err and why in err, err
    assert "internal error" not in err


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://127.0.0.1:abc"], ids=["unclosed-ipv6", "port-not-a-number"]
)
def test_register_with_a_malformed_tracking_uri_is_a_usage_error_naming_it(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was a ValueError traceback out of MLflow's client."""
    files = ["--model", str(tmp_path), "--data", str(tmp_path), "--evaluation", str(tmp_path / "e.json")]
    argv = ["retrain", "register", APP, *files, "--trigger", "manual", "--triggered-by", "someone"]
    assert cli.main([*argv, "--code-commit", "d" * 40, "--tracking-uri", url]) == 2
    err = capsys.readouterr().err
    assert f"--tracking-uri: registry {url!r}: not a URL" in err, err


@pytest.mark.parametrize(
    "command",
    [["serve", APP, "--env", "dev"], ["monitor", "marshaller", APP, "--env", "dev"]],
    ids=["serve", "monitor-marshaller"],
)
@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_port_that_is_no_tcp_port_is_refused_when_parsed(
    command: list[str], port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was an OverflowError traceback from bind() once the server started (the marshaller at once)."""
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, f"--port={port}"])
    assert exited.value.code == 2
    assert "argument --port:" in capsys.readouterr().err


def test_drift_over_logs_it_cannot_read_says_so_not_that_it_cannot_publish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "2026" / "a.json").mkdir(parents=True)  # a folder named like a batch of records
    assert cli.main(["monitor", "drift", APP, "--env", "dev", "--logs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot read the logs under --logs {tmp_path}" in err and "a.json" in err, err
    assert "cannot publish" not in err
