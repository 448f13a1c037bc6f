"""Command-line front end: ``protoexplain <command> ...``.

Every module in :mod:`protoexplain.cli.commands` that defines ``register(subparsers)`` adds its
commands; ``ORDER`` (an int, default 100) sets where they appear in ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Sequence

from protoexplain import __version__
from protoexplain.cli import commands as _commands_pkg
from protoexplain.cli.parser import CommandParser
from protoexplain.errors import UserError


def _command_modules() -> list:
    modules = []
    for info in pkgutil.iter_modules(_commands_pkg.__path__):
        module = importlib.import_module(f"{_commands_pkg.__name__}.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="protoexplain",
        description=(
            "Train prototype-based image classifiers (ProtoPNet, 'this looks like that') and "
            "explain which visual characteristics (hue, shape, texture, contrast, saturation, "
            "brightness) each prototype relies on."
        ),
        epilog="Run 'protoexplain <command> --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"protoexplain {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", title="commands",
                                       parser_class=CommandParser)
    for module in _command_modules():
        module.register(subparsers)
    return parser


def _format_warning(message: Warning | str, category: type[Warning], *_: object,
                    **__: object) -> str:
    """Warnings as one line, without the source line that raised them."""
    return f"protoexplain: warning: {message}\n"


def describe_os_error(error: OSError) -> str:
    """One line naming the path an operating-system error is about and what to check."""
    paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
    reason = error.strerror or str(error)
    if not paths:
        return f"{type(error).__name__}: {error}"
    return f"cannot use {paths}: {reason}; check the path and its permissions"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    formatwarning, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        result = args.func(args)
    except UserError as error:
        print(f"protoexplain: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a path that cannot be read or written: the user's to fix
        print(f"protoexplain: error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("protoexplain: interrupted; finished work is kept, rerun to go on", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = formatwarning
    return int(result or 0)
