"""Progress bars that redraw on a terminal and write plain lines into a log file.

On a terminal (or in a notebook) :func:`progress_bar` is an ordinary tqdm bar. When stderr is a file
or a pipe (``protoexplain demo 2> demo.log``, a batch job, CI) it writes one plain line per
update, at most every :data:`LOG_INTERVAL_S` seconds: no carriage returns, no cursor movements, no
block characters, and every bar leaves its final line so that the log says how long each part
took.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

import tqdm.auto
from tqdm.autonotebook import tqdm as _chosen_tqdm
from tqdm.std import tqdm as std_tqdm

LOG_INTERVAL_S = 30.0  # seconds between two lines of one bar when not on a terminal

_IN_NOTEBOOK = _chosen_tqdm is not std_tqdm  # tqdm.auto picked the notebook widget


class _LineWriter:
    """A text stream that turns tqdm's in-place redraws into one line per redraw."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        for chunk in text.replace("\n", "\r").split("\r"):
            line = chunk.rstrip()
            if line:
                self._stream.write(line + "\n")

    def flush(self) -> None:
        self._stream.flush()


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def progress_bar(iterable: Iterable | None = None, **tqdm_kwargs: Any) -> std_tqdm:
    """A tqdm bar over ``iterable`` (or one updated by hand with ``total=``).

    Takes tqdm's keyword arguments. On a terminal or in a notebook the bar is tqdm's own; when the
    bar's stream (``file=``, default stderr) is not a terminal, updates become plain lines at most
    every :data:`LOG_INTERVAL_S` seconds and the bar's last line is always kept.
    """
    stream = tqdm_kwargs.pop("file", None) or sys.stderr
    if _IN_NOTEBOOK or _is_terminal(stream):
        return tqdm.auto.tqdm(iterable, file=stream, **tqdm_kwargs)
    log_settings = {
        "file": _LineWriter(stream),
        "mininterval": LOG_INTERVAL_S,
        "ascii": True,
        "dynamic_ncols": False,
        "position": 0,  # no cursor movements between nested bars
        "leave": True,
    }
    return std_tqdm(iterable, **{**tqdm_kwargs, **log_settings})
