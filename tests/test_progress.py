"""Progress bars: redrawn in place on a terminal, plain lines in a log file."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios

from helpers_data import SRC
from protoexplain.progress import progress_bar

ESCAPE = re.compile(r"\x1b\[")


def test_log_stream_gets_a_start_and_a_final_line_only():
    log = io.StringIO()
    for _ in progress_bar(range(500), desc="work", file=log):
        pass
    text = log.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert len(lines) == 2  # started, finished: 500 fast updates fall inside one interval
    assert lines[0].startswith("work:   0%")
    assert lines[1].startswith("work: 100%") and "500/500" in lines[1]


def test_nested_bars_in_a_log_have_no_cursor_movements():
    log = io.StringIO()
    for epoch in progress_bar(range(2), desc="epochs", file=log):
        for _ in progress_bar(range(3), desc=f"epoch {epoch}", leave=False, file=log):
            pass
    text = log.getvalue()
    assert "\r" not in text and not ESCAPE.search(text)
    finals = [line for line in text.splitlines() if "100%" in line]
    # every bar, the inner ones too (leave=False), leaves its final line in the log
    assert [line.split(":")[0] for line in finals] == ["epoch 0", "epoch 1", "epochs"]


def test_command_writing_to_a_file_logs_plain_lines(tmp_path):
    log = tmp_path / "stderr.log"
    with log.open("w") as handle:
        result = subprocess.run(
            [sys.executable, "-m", "protoexplain", "synth", "--out", str(tmp_path / "data"),
             "--size", "32", "--train-per-class", "1", "--test-per-class", "1"],
            env={**os.environ, "PYTHONPATH": str(SRC)}, stdout=subprocess.DEVNULL,
            stderr=handle, timeout=1800, check=False,
        )
    text = log.read_text()
    assert result.returncode == 0, text
    assert "\r" not in text and not ESCAPE.search(text)
    assert re.search(r"^synth mixed: 100%\|#+\| 16/16 ", text, flags=re.MULTILINE), text


def test_bar_on_a_terminal_redraws_in_place():
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # 80 columns
    code = (
        "from protoexplain.progress import progress_bar\n"
        "for _ in progress_bar(range(3), desc='tty', mininterval=0): pass\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SRC)},
        stderr=follower, stdout=subprocess.DEVNULL,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed when the child exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=900) == 0
    text = b"".join(chunks).decode()
    # 0/3, 1/3, 2/3, 3/3 drawn over each other on one line
    assert text.count("\r") >= 4
    assert "3/3" in text and text.rstrip("\r\n").count("\n") == 0
