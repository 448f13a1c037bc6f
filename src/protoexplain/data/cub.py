"""CUB-200-2011 preparation: crop every image to its bounding box, split train/test (method §1)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image

from protoexplain.data.fingerprint import fingerprint_files
from protoexplain.data.folder import check_on_error
from protoexplain.data.images import load_rgb, save_image
from protoexplain.errors import UserError
from protoexplain.fileio import write_json
from protoexplain.outputs import locked_output
from protoexplain.progress import progress_bar

METADATA_FILES = ("images.txt", "bounding_boxes.txt", "train_test_split.txt")
SPLITS = {"1": "train", "0": "test"}


@dataclass(frozen=True)
class CubImage:
    """One annotated image: id, relative path under ``images/``, box (x, y, w, h), split."""

    image_id: int
    relative: str
    box: tuple[float, float, float, float]
    split: str


@dataclass
class CubSummary:
    """What :func:`prepare_cub` did."""

    out_dir: Path
    counts: dict[str, int]
    classes: int
    written: int = 0
    existing: int = 0
    skipped: list[str] = field(default_factory=list)


def find_cub_root(cub_root: str | os.PathLike) -> Path:
    """The folder holding ``images.txt`` (``cub_root`` or its ``CUB_200_2011`` sub-folder)."""
    root = Path(cub_root)
    if not root.is_dir():
        raise UserError(f"CUB-200-2011 folder {root} does not exist")
    if not (root / "images.txt").exists() and (root / "CUB_200_2011" / "images.txt").exists():
        root = root / "CUB_200_2011"
    for name in (*METADATA_FILES, "images"):
        if not (root / name).exists():
            raise UserError(
                f"{root} is not a CUB-200-2011 folder: {root / name} is missing; pass the folder "
                "that contains images.txt, bounding_boxes.txt, train_test_split.txt and images/"
            )
    return root


def _read_table(path: Path, columns: int) -> dict[int, list[str]]:
    table: dict[int, list[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != columns + 1 or not fields[0].isdigit():
                raise UserError(
                    f"{path}:{number}: expected '<id>' and {columns} value(s), got {line.strip()!r}"
                )
            image_id = int(fields[0])
            if image_id in table:
                raise UserError(f"{path}:{number}: image id {image_id} appears twice")
            table[image_id] = fields[1:]
    return table


def _checked_relative(name: str, source: Path, image_id: int) -> str:
    """An image path from ``images.txt`` that stays inside ``images/`` and the output folder:
    relative, ``<class folder>/<file>``, no ``..`` (a crafted line must not write elsewhere)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or PureWindowsPath(name).drive or len(path.parts) < 2 or any(
        part in ("..", ".") for part in path.parts
    ):
        raise UserError(
            f"{source}: image id {image_id} has path {name!r}, which is not of the form "
            "<class folder>/<file> inside images/; fix that line of the file"
        )
    return path.as_posix()


def read_cub(root: Path) -> list[CubImage]:
    """Join images, boxes and split **by image id**; sorted by id."""
    names = _read_table(root / "images.txt", 1)
    boxes = _read_table(root / "bounding_boxes.txt", 4)
    splits = _read_table(root / "train_test_split.txt", 1)
    for other, table in (("bounding_boxes.txt", boxes), ("train_test_split.txt", splits)):
        missing = sorted(set(names) - set(table))
        if missing:
            raise UserError(
                f"{root / other} has no entry for image id {missing[0]} "
                f"({len(missing)} ids missing); the three files must list the same ids"
            )
    images = []
    for image_id in sorted(names):
        split = splits[image_id][0]
        if split not in SPLITS:
            raise UserError(
                f"{root / 'train_test_split.txt'}: image id {image_id} has split {split!r}; "
                "expected 1 (train) or 0 (test)"
            )
        try:
            x, y, w, h = (float(v) for v in boxes[image_id])
        except ValueError as error:
            raise UserError(
                f"{root / 'bounding_boxes.txt'}: image id {image_id} has a non-numeric box"
            ) from error
        relative = _checked_relative(names[image_id][0], root / "images.txt", image_id)
        images.append(CubImage(image_id, relative, (x, y, w, h), SPLITS[split]))
    return images


def crop_box(image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """``img[y:y+h, x:x+w]`` with every coordinate truncated to int (method §1)."""
    x, y, w, h = (int(v) for v in box)
    x, y = max(x, 0), max(y, 0)
    crop = np.asarray(image)[y : y + h, x : x + w]
    if crop.size == 0:
        raise UserError(f"bounding box {box} lies outside the {image.width}×{image.height} image")
    return Image.fromarray(np.ascontiguousarray(crop))


def output_path(out_dir: Path, item: CubImage, image_format: str) -> Path:
    """``out_dir/<split>/<class folder>/<file stem>.<format>``."""
    relative = Path(item.relative)
    return out_dir / item.split / relative.parent / f"{relative.stem}.{image_format}"


def prepare_cub(
    cub_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    image_format: str = "jpg",
    quality: int = 95,
    on_error: str = "error",
    progress: bool = True,
) -> CubSummary:
    """Crop and split CUB-200-2011 into ``out_dir/{train,test}/<class>/``; resumable.

    Finished images are skipped on a rerun; each image is written atomically, so an interrupted
    run leaves no partial files. Writes ``out_dir/manifest.json`` (counts, source fingerprint).
    """
    check_on_error(on_error)
    if image_format not in ("jpg", "png"):
        raise UserError(f"unknown image format {image_format!r}: use jpg or png")
    if not 1 <= quality <= 100:
        raise UserError(f"JPEG quality must be between 1 and 100, got {quality}")
    root = find_cub_root(cub_root)
    items = read_cub(root)
    with locked_output(out_dir, "prepare-cub") as out:
        return _write_cub(root, items, out, image_format, quality, on_error, progress)


def _write_cub(
    root: Path, items: list[CubImage], out: Path, image_format: str, quality: int,
    on_error: str, progress: bool,
) -> CubSummary:
    summary = CubSummary(out, counts={"train": 0, "test": 0}, classes=0)
    for item in progress_bar(items, desc="prepare-cub", unit="img", disable=not progress):
        target = output_path(out, item, image_format)
        if target.exists():
            summary.existing += 1
        else:
            source = root / "images" / item.relative
            try:
                cropped = crop_box(load_rgb(source), item.box)
            except UserError as error:
                message = str(error) if str(source) in str(error) else f"{source}: {error}"
                if on_error == "error":
                    raise UserError(message) from error
                warnings.warn(f"skipping image: {message}", stacklevel=2)
                summary.skipped.append(item.relative)
                continue
            save_image(cropped, target, quality=quality)
            summary.written += 1
        summary.counts[item.split] += 1
    summary.classes = len({Path(item.relative).parent.as_posix() for item in items})
    write_json(
        out / "manifest.json",
        {
            "dataset": "CUB-200-2011, cropped to bounding boxes",
            "source": str(root.resolve()),
            "source_fingerprint": fingerprint_files([root / n for n in METADATA_FILES], root),
            "image_format": image_format,
            "quality": quality if image_format == "jpg" else None,
            "counts": summary.counts,
            "classes": summary.classes,
            "skipped": summary.skipped,
        },
    )
    return summary
