"""The image's entry points (`python -m mlplat.monitoring`, `python -m mlplat.retrain`) parse as `mlplat` does."""

from __future__ import annotations

import pytest

from mlplat import entrypoint
from mlplat.monitoring.__main__ import parser as monitoring_parser


def test_an_abbreviated_option_of_a_nested_command_is_refused_not_taken(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`drift` is a subcommand of `monitor`'s own subparser, a parser of its own: `--form` was taken as
    `--format` there, as `--repo-r` was taken for a command's `--repo-root`."""
    with pytest.raises(SystemExit) as exited:
        entrypoint.run(
            monitoring_parser(),
            ["monitor", "drift", "iris-classifier", "--env", "dev", "--logs", "x", "--form", "json"],
        )
    assert exited.value.code == 2
    assert "unrecognized arguments: --form" in capsys.readouterr().err
