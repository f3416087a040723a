"""The command as users start it: `python -m messages_integrations` and `main()`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from messages_integrations import __version__
from messages_integrations.cli import main


def test_python_dash_m_shows_every_subcommand() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "messages_integrations", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: messages-integrations")
    for command in ("send", "sign", "verify", "webhooks"):
        assert f"    {command} " in result.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"messages-integrations {__version__}\n"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_an_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webhooks", "list", "--frm", "+1"]) == 2
    assert "unrecognized arguments: --frm" in capsys.readouterr().err
