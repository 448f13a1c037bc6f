"""What the commands share: argument types (argparse turns their errors into a one-line message)
and options made from the fields of a step's config (:func:`add_setting`), so that a command's
defaults and help are its config's."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

from protoexplain.tomlconfig import field_default, field_doc

T = TypeVar("T")


def positive_int(text: str) -> int:
    """An integer of at least 1 (batch sizes, counts of items to show)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (worker processes, epochs where 0 skips a step)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def add_setting(parser: argparse.ArgumentParser, config_class: type, name: str,
                *flags: str, **kwargs: Any) -> argparse.Action:
    """Add the option for field ``name`` of the step config ``config_class``: its default and help
    are the field's (``--name-with-dashes`` unless ``flags`` are given); ``kwargs`` go to
    ``add_argument`` (``type``, ``choices``, ``metavar``, ...)."""
    default = field_default(config_class, name)
    if isinstance(default, list):
        shown = ",".join(map(str, default)) or "none"
    else:
        shown = default if default not in ({}, "") else "none"
    return parser.add_argument(
        *(flags or (f"--{name.replace('_', '-')}",)), dest=name, default=default,
        help=f"{field_doc(config_class, name)} (default: {shown})".replace("%", "%%"), **kwargs,
    )


def config_from_args(config_class: type[T], args: argparse.Namespace, **values: Any) -> T:
    """The step config ``config_class`` from the parsed options named after its fields (the rest
    keep their defaults); ``values`` give fields the command computes itself."""
    names = {item.name for item in dataclasses.fields(config_class)}  # type: ignore[arg-type]
    given = {name: getattr(args, name) for name in names if hasattr(args, name)}
    return config_class(**{**given, **values})
