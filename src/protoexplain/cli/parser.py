"""The parser of one command: its own usage on a wrong option, and second spellings of arguments.

The convention every command follows (``tests/test_cli_convention.py`` checks it over the whole
command tree): the output goes to ``--out DIR``; a command driven by a config takes it as
``CONFIG`` or ``--config FILE``; ``--device`` defaults to ``auto``; ``--workers`` defaults to 0;
options taking several values are plural (``--strengths``). Spellings from before the convention
keep working for one release and print a one-line deprecation warning.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REMOVED_IN = "0.3"  # the release that drops the deprecated spellings


def warn_deprecated(old: str, new: str) -> None:
    """Print the one-line deprecation warning for an old spelling."""
    print(f"protoexplain: warning: {old} is deprecated and goes away in {REMOVED_IN}; "
          f"write {new}", file=sys.stderr)


@dataclass(frozen=True)
class _Alias:
    """A positional argument that is another spelling of the option ``dest``."""

    dest: str
    option: str  # the option's spelling, e.g. --out
    positional: str  # the positional's metavar, e.g. OUT_DIR
    deprecated: bool
    required: bool

    @property
    def alias_dest(self) -> str:
        return f"{self.dest}_positional"


class CommandParser(argparse.ArgumentParser):
    """An argument parser for one command (the class of every subcommand's parser).

    A wrong option is reported with this command's usage: argparse otherwise hands unknown
    options up to the top-level parser, whose usage says nothing about the command.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._aliases: list[_Alias] = []
        self._required_options: list[argparse.Action] = []  # required, checked after parsing

    def add_output(self, help: str, *, default: Path | None = None, required: bool = False,
                   legacy_positional: str | None = None) -> None:
        """Add ``--out DIR``; ``legacy_positional`` (a metavar) also accepts the output folder as
        the last positional argument, with a deprecation warning."""
        action = self.add_argument("--out", type=Path, default=default, metavar="DIR", help=help,
                                   required=required and legacy_positional is None)
        if legacy_positional is not None:
            self._add_alias(_Alias("out", "--out", legacy_positional, True, required))
            if required:
                self._required_options.append(action)

    def add_config(self, help: str) -> None:
        """Add the config file as ``CONFIG`` or ``--config FILE`` (both documented forms)."""
        self.add_argument("--config", type=Path, metavar="FILE", help=f"{help}, as --config FILE")
        self._add_alias(_Alias("config", "--config", "CONFIG", False, True), help=help)

    def _add_alias(self, alias: _Alias, help: str = argparse.SUPPRESS) -> None:
        self.add_argument(alias.alias_dest, nargs="?", type=Path, metavar=alias.positional,
                          help=help)
        self._aliases.append(alias)

    def format_usage(self) -> str:
        with self._required_shown():
            return super().format_usage()

    def format_help(self) -> str:
        with self._required_shown():
            return super().format_help()

    @contextmanager
    def _required_shown(self) -> Iterator[None]:
        """Show ``--out DIR`` without brackets where it is required but checked after parsing
        (its old positional spelling may stand in for it)."""
        for action in self._required_options:
            action.required = True
        try:
            yield
        finally:
            for action in self._required_options:
                action.required = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse, merge second spellings, and stop with this command's usage on leftovers."""
        namespace, extras = super().parse_known_args(args, namespace)
        if self._take_trailing_positional(namespace, extras):
            extras = []
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        for alias in self._aliases:
            self._merge(alias, namespace)
        return namespace, extras

    def _take_trailing_positional(self, namespace: argparse.Namespace, extras: list[str]) -> bool:
        """Whether the one leftover is an old-style positional: argparse fills an optional
        positional as soon as the positionals before it are read, so in ``explain MODEL DATA
        --mode fast OUT`` the trailing OUT arrives as a leftover."""
        empty = [a for a in self._aliases if getattr(namespace, a.alias_dest, None) is None]
        if len(extras) == 1 and not extras[0].startswith("-") and len(empty) == 1:
            setattr(namespace, empty[0].alias_dest, Path(extras[0]))
            return True
        return False

    def _merge(self, alias: _Alias, namespace: argparse.Namespace) -> None:
        """Move the positional spelling's value to the option's destination."""
        value = getattr(namespace, alias.alias_dest)
        delattr(namespace, alias.alias_dest)
        documented = alias.option if alias.deprecated else alias.positional
        if value is not None:
            if getattr(namespace, alias.dest) is not None:
                self.error(f"{alias.positional} and {alias.option} name the same thing; give one")
            setattr(namespace, alias.dest, value)
            if alias.deprecated:
                warn_deprecated(f"the positional {alias.positional} of '{self.prog}'",
                                f"{alias.option} {alias.positional}")
        if alias.required and getattr(namespace, alias.dest) is None:
            self.error(f"the following arguments are required: {documented}")


class RenamedOption(argparse.Action):
    """An old option name (hidden from help) that does what ``target`` does, with a warning."""

    def __init__(self, option_strings: list[str], dest: str, target: argparse.Action,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs=target.nargs,
                         type=target.type, choices=target.choices, metavar=target.metavar,
                         help=argparse.SUPPRESS)
        self.target = target

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        warn_deprecated(str(option_string), self.target.option_strings[0])
        self.target(parser, namespace, values, option_string)


def add_renamed_option(parser: argparse.ArgumentParser, old: str,
                       target: argparse.Action) -> None:
    """Accept ``old`` as a deprecated spelling of the option ``target``."""
    parser.add_argument(old, action=RenamedOption, target=target)
