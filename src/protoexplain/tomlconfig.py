"""Dataclass configs loaded from TOML: unknown keys and wrong types are errors naming the key."""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from pathlib import Path
from typing import Any, TypeVar

from protoexplain.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

T = TypeVar("T")


def read_toml(path: str | os.PathLike, hint: str = "") -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a :class:`UserError` (a missing one
    ends with ``hint`` on what to do, when given)."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a TOML file" if path.is_dir() else "not found"
        raise UserError(f"config file {path} {what}" + (f"; {hint}" if hint else ""))
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid TOML (UTF-8 text): {error}") from None


def _check_value(value: Any, kind: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(kind)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float, str, bool) and type(value) is not kind:
        raise UserError(
            f"{source}: key '{key}' must be {kind.__name__}, got {type(value).__name__} {value!r}"
        )
    if origin is list and not isinstance(value, list):
        raise UserError(f"{source}: key '{key}' must be a list, got {value!r}")
    if origin is dict and not isinstance(value, dict):
        raise UserError(f"{source}: key '{key}' must be a table, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], source: str, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a TOML table, recursing into nested dataclass fields."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in known:
            raise UserError(f"{source}: unknown key '{name}' (check its spelling and section)")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                raise UserError(f"{source}: '{name}' must be a [{name}] table")
            kwargs[key] = from_dict(kind, value, source, f"{name}.")
        else:
            kwargs[key] = _check_value(value, kind, name, source)
    return cls(**kwargs)
