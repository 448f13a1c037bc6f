"""The command-line front end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from protoexplain.cli import build_parser, main

SRC = Path(__file__).resolve().parents[1] / "src"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "protoexplain", *args], capture_output=True, text=True, env=env,
        check=False,
    )


def test_help_lists_every_registered_command():
    result = _run("--help")
    assert result.returncode == 0
    commands = build_parser()._subparsers._group_actions[0].choices
    assert "import-legacy" in commands
    for name in commands:
        assert name in result.stdout


def test_every_command_has_help_text():
    commands = build_parser()._subparsers._group_actions[0].choices
    for name, parser in commands.items():
        assert parser.description, f"{name} has no description"
        assert parser.format_help().count("\n") > 3


def test_user_error_is_one_line_without_traceback(tmp_path):
    result = _run("import-legacy", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "out"),
                  "--arch", "vgg11")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "missing.pth does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "commands" in capsys.readouterr().out
