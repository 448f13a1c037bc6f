"""Builders for the data tests: tiny image trees and a miniature CUB-200-2011 folder."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SRC = Path(__file__).resolve().parents[1] / "src"


def run_cli(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``python -m protoexplain ARGS`` in a subprocess with the package on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "protoexplain", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def cli_popen(*args: str) -> subprocess.Popen:
    """Start ``python -m protoexplain ARGS`` without waiting."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen(
        [sys.executable, "-m", "protoexplain", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def noise_folder(root: Path, per_class: int, seed: int, size: int = 32) -> Path:
    """An ImageFolder tree of two classes (``a``, ``b``) of ``size`` px colour-noise images."""
    rng = np.random.default_rng(seed)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                root / name / f"{i}.png")
    return root


def random_rgb(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth-ish random colours (JPEG keeps them close to the original)."""
    small = rng.integers(0, 256, size=(max(height // 8, 2), max(width // 8, 2), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) by relative path → content."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


@dataclass
class MiniCub:
    """A miniature CUB folder and the truth the test needs."""

    root: Path
    images: dict[int, str]  # id -> relative path under images/
    boxes: dict[int, tuple[float, float, float, float]]
    is_train: dict[int, bool]
    special: dict[str, int]  # "gray", "cmyk", "empty" -> id


def make_mini_cub(root: Path, per_class: int = 4, zero_byte: bool = True, seed: int = 0) -> MiniCub:
    """3 classes × ``per_class`` JPEGs; a grayscale and a CMYK JPEG; optionally a zero-byte file.

    The three metadata files list the ids in different orders, and boxes have fractional
    coordinates (the crop truncates them).
    """
    rng = np.random.default_rng(seed)
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
    ids = list(range(1, len(classes) * per_class + 1))
    images, boxes, is_train = {}, {}, {}
    special = {"gray": ids[1], "cmyk": ids[per_class + 1]}
    if zero_byte:
        special["empty"] = ids[-1]
    for n, image_id in enumerate(ids):
        name = classes[n // per_class]
        relative = f"{name}/{name.split('.')[1]}_{image_id:04d}_{100 + n}.jpg"
        path = root / "images" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        height, width = int(rng.integers(30, 60)), int(rng.integers(30, 60))
        pixels = random_rgb(rng, height, width)
        if image_id == special["gray"]:
            Image.fromarray(pixels[:, :, 0]).save(path, quality=95)
        elif image_id == special["cmyk"]:
            Image.fromarray(pixels).convert("CMYK").save(path, quality=95)
        elif image_id == special.get("empty"):
            path.write_bytes(b"")
        else:
            Image.fromarray(pixels).save(path, quality=95)
        x, y = rng.uniform(0, width / 3), rng.uniform(0, height / 3)
        w, h = rng.uniform(5, width - x), rng.uniform(5, height - y)
        images[image_id] = relative
        boxes[image_id] = (round(x, 1), round(y, 1), round(w, 1), round(h, 1))
        is_train[image_id] = bool(n % 2)
    order = list(ids)
    (root / "images.txt").write_text("".join(f"{i} {images[i]}\n" for i in order))
    order = order[::-1]
    (root / "bounding_boxes.txt").write_text(
        "".join(f"{i} {' '.join(str(v) for v in boxes[i])}\n" for i in order)
    )
    order = list(rng.permutation(ids))
    (root / "train_test_split.txt").write_text(
        "".join(f"{i} {int(is_train[i])}\n" for i in order)
    )
    (root / "classes.txt").write_text("".join(f"{k + 1} {c}\n" for k, c in enumerate(classes)))
    return MiniCub(root, images, boxes, is_train, special)


def expected_crop(cub: MiniCub, image_id: int) -> np.ndarray:
    """The crop computed independently: decode as RGB, truncate the box, slice."""
    with Image.open(cub.root / "images" / cub.images[image_id]) as image:
        if image.mode == "CMYK":
            cmyk = np.asarray(image).astype(np.float64)
            k = cmyk[:, :, 3:4]
            rgb = np.rint((255 - cmyk[:, :, :3]) * (255 - k) / 255).astype(np.uint8)
        elif image.mode == "L":
            rgb = np.repeat(np.asarray(image)[:, :, None], 3, axis=2)
        else:
            rgb = np.asarray(image)
    x, y, w, h = (int(v) for v in cub.boxes[image_id])
    return rgb[y : y + h, x : x + w]
