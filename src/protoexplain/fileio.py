"""Atomic file writes: write to a temporary file beside the target, then rename.

A job killed at any moment leaves either the old file or the complete new one, never half a file.
Temporary files and folders end with the mode an ordinary ``open()`` or ``mkdir`` would give under
the current umask, not ``tempfile``'s owner-only one, so results stay shareable.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from protoexplain.errors import UserError


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    with (
        contextlib.suppress(OSError, ValueError),
        open("/proc/self/status", encoding="ascii") as status,
    ):
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_file_beside(target: Path, suffix: str = ".tmp") -> Path:
    """A new empty file ``.<name>.*<suffix>`` beside ``target``, with the umask's file mode."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    return Path(name)


def temp_folder_beside(target: Path, suffix: str = ".tmp") -> Path:
    """A new empty folder ``.<name>.*<suffix>`` beside ``target``, with the umask's folder mode."""
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent))
    folder.chmod(0o777 & ~current_umask())
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_file_beside(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` when closed without error."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def read_json_if_intact(path: str | os.PathLike) -> Any | None:
    """A JSON file's content, or ``None`` when it is missing or damaged (markers and caches that
    are rewritten when unusable)."""
    try:
        return read_json(path)
    except (OSError, UserError):
        return None


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a damaged one is a :class:`UserError` naming it."""
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
            raise UserError(
                f"{path} is not valid JSON ({error}); restore it or rerun the step that wrote it"
            ) from None
