"""The report's image files, made with Pillow: thumbnails, copies, images with a box drawn on.

Every file is named after what it was made from (:func:`keyed_name`: the stem and a hash of the
inputs' paths, sizes, modification times and parameters), so a rerun reuses the files whose
inputs did not change and an interrupted run never leaves a file under a name that claims other
inputs. :func:`remove_unused` deletes what no page refers to any more.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from protoexplain.data.images import load_rgb
from protoexplain.fileio import atomic_path

Box = tuple[int, int, int, int]
BOX_COLOUR = (255, 212, 0)
THUMB_SIDE = 64
#: Bump when the way an image is drawn changes, so that reruns redraw it.
DRAWING_VERSION = "1"


def file_key(path: str | os.PathLike | None) -> str:
    """What identifies a file's content cheaply: path, size and modification time."""
    if path is None:
        return "none"
    try:
        status = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{path}:{status.st_size}:{status.st_mtime_ns}"


def keyed_name(stem: str, *parts: object, suffix: str = ".png") -> str:
    """``stem-<hash of parts>.png``: a file name that changes whenever an input changes."""
    digest = hashlib.sha1(repr((DRAWING_VERSION, *parts)).encode("utf-8")).hexdigest()[:10]
    return f"{stem}-{digest}{suffix}"


def load_image(path: str | os.PathLike | None) -> np.ndarray | None:
    """An RGB array of ``path``, or ``None`` when there is no such file."""
    if path is None or not Path(path).is_file():
        return None
    return np.asarray(load_rgb(path))


def write_thumbnail(image: np.ndarray, out: Path, side: int = THUMB_SIDE) -> None:
    """``image`` shrunk to fit ``side``×``side`` (never enlarged), as PNG."""
    thumb = Image.fromarray(image)
    thumb.thumbnail((side, side))
    _save(thumb, out)


def write_copy(source: Path, out: Path) -> None:
    """``source`` (already an image file) at ``out``: a hard link where the file system allows
    (created in one step, shares no later change: pipeline files are replaced, never edited),
    else an atomic byte copy."""
    try:
        os.link(source, out)
    except FileExistsError:
        return
    except OSError:
        with atomic_path(out) as path:
            shutil.copyfile(source, path)


def write_boxed(image: np.ndarray, box: Box | None, out: Path) -> None:
    """``image`` with ``box`` (h0, h1, w0, w1; ends exclusive) outlined, as PNG."""
    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    if box is not None:
        h0, h1, w0, w1 = box
        width = max(1, round(max(picture.size) / 112))
        ImageDraw.Draw(picture).rectangle(
            (w0, h0, max(w0, w1 - 1), max(h0, h1 - 1)), outline=BOX_COLOUR, width=width
        )
    _save(picture, out)


def _save(picture: Image.Image, out: Path) -> None:
    with atomic_path(out) as path:
        picture.save(path, format="PNG", compress_level=1)


def remove_unused(folder: Path, used: Iterable[str]) -> int:
    """Delete the files of ``folder`` whose names are not in ``used``; return how many."""
    keep = set(used)
    removed = 0
    for path in folder.iterdir() if folder.is_dir() else ():
        if path.is_file() and path.name not in keep:
            path.unlink()
            removed += 1
    return removed
