"""The ``shellwatch`` command line's help: plain text, no reStructuredText markup from docstrings."""

from __future__ import annotations

import pytest

from shellwatch.__main__ import main

COMMANDS = ["detect", "record", "replay", "check-rules", "demo", "worker"]


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys)
    assert text.startswith("usage: shellwatch")
    assert "``" not in text
    for command in COMMANDS:
        assert command in text


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_is_plain_text(capsys: pytest.CaptureFixture[str], command: str) -> None:
    text = help_text(capsys, command)
    assert text.startswith(f"usage: shellwatch {command}")
    assert "``" not in text
