"""Errors meant for the user: one clear line, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (a path, a file, a config value).

    The command-line front end prints ``protoexplain: error: <message>`` and exits with status 2
    instead of showing a traceback. The message should name the input and say what to do.
    """
