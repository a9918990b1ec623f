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
