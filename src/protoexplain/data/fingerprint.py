"""Content fingerprints of files and folders, to record which data a run used."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from protoexplain.data.images import is_image_file


def fingerprint_files(paths: Iterable[str | os.PathLike], root: str | os.PathLike) -> str:
    """SHA-256 over the relative names and contents of ``paths`` (in the given order)."""
    digest = hashlib.sha256()
    for path in paths:
        path = Path(path)
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def fingerprint_folder(root: str | os.PathLike) -> str:
    """SHA-256 over every visible image file under ``root`` (names relative to ``root`` + bytes)."""
    root = Path(root)
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and is_image_file(p)
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    return fingerprint_files(files, root)
