"""Whole folders written atomically: built beside their final place, then renamed into it."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from protoexplain.fileio import temp_folder_beside


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty folder beside ``target``; on success it replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_folder_beside(target)
    try:
        yield staging
        replace_folder(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def replace_folder(new: Path, target: Path) -> None:
    """Swap ``new`` into ``target``; a kill in between leaves ``.<name>.old`` for recovery."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    if old.exists():
        shutil.rmtree(old)


def recover_folder(target: str | os.PathLike) -> Path | None:
    """``target`` if it exists, else the ``.old`` copy a kill mid-swap left behind."""
    target = Path(target)
    if target.exists():
        return target
    old = target.with_name(f".{target.name}.old")
    return old if old.exists() else None
