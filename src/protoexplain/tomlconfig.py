"""Dataclass configs loaded from TOML: unknown keys and wrong types are errors naming the key."""

from __future__ import annotations

import dataclasses
import json
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
    try:
        return cls(**kwargs)
    except UserError as error:  # a config that checks itself on construction
        section = f" [{prefix.rstrip('.')}]" if prefix else ""
        raise UserError(f"{source}{section}: {error}") from None


def setting(default: Any, doc: str) -> Any:
    """A dataclass field with its one-line description: the comment in a written TOML file and
    the help of the command-line option made from it (:func:`field_doc`). A list or table field
    is ``field(default_factory=..., metadata={"doc": ...})``."""
    return dataclasses.field(default=default, metadata={"doc": doc})


def _field(cls: type, name: str) -> dataclasses.Field:
    for item in dataclasses.fields(cls):
        if item.name == name:
            return item
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def field_default(cls: type, name: str) -> Any:
    """The default value of dataclass ``cls``'s field ``name`` (a fresh one for mutable ones)."""
    item = _field(cls, name)
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


def field_doc(cls: type, name: str) -> str:
    """The description :func:`setting` gave field ``name`` of ``cls``."""
    return _field(cls, name).metadata["doc"]


def toml_value(value: Any) -> str:
    """``value`` written as a TOML value (inline tables for dictionaries)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    return json.dumps(value)


def dump_toml(config: Any, header: str = "") -> str:
    """TOML text of dataclass ``config`` (one level of nested tables), each key commented with its
    :func:`setting` description; readable back with :func:`from_dict`."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    tables = []
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if dataclasses.is_dataclass(value):
            tables.append((item.name, value))
        else:
            lines.append(_key_line(item, value))
    for name, table in tables:
        lines += ["", f"# {type(table).__doc__}", f"[{name}]"]
        lines += [_key_line(item, getattr(table, item.name)) for item in dataclasses.fields(table)]
    return "\n".join(lines) + "\n"


def _key_line(item: dataclasses.Field, value: Any) -> str:
    doc = item.metadata.get("doc")
    return f"{item.name} = {toml_value(value)}" + (f"  # {doc}" if doc else "")
