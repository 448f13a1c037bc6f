"""Synthetic "bird" images whose generating factors are known (hue, shape, texture, …).

``generate_synthetic(out_dir, preset)`` writes ``train/`` and ``test/`` in ImageFolder layout
(lossless PNG), ``factors.csv`` (one row per image: split, file, class, every factor, part boxes),
``synth.json`` (what was generated) and, with ``masks=True``, part-label masks under ``masks/``.
The same arguments give byte-identical files. Factors and presets: :mod:`.synth_factors`;
drawing: :mod:`.synth_render`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from protoexplain.data.synth_factors import (
    PART_FACTORS,
    PARTS,
    PRESETS,
    RANDOM_RANGES,
    check_background,
    get_preset,
    list_presets,
    sample_factors,
)
from protoexplain.data.synth_render import Rendered, render
from protoexplain.errors import UserError
from protoexplain.fileio import read_json, temp_folder_beside, write_json
from protoexplain.outputs import LOCK_NAME, locked_output
from protoexplain.progress import progress_bar

__all__ = ["PRESETS", "SynthConfig", "generate_synthetic", "list_presets", "render_sample"]

SPLIT_CODES = {"train": 1, "test": 2}
GLOBAL_FACTORS = (
    "cx", "cy", "scale", "rotation", "bg_hue", "bg_saturation", "bg_value",
    "bg_texture", "bg_contrast", "bg_period", "bg_angle", "bg_phase_u", "bg_phase_v",
)
FACTOR_COLUMNS = (
    *GLOBAL_FACTORS, *(f"{part}_{factor}" for part in PARTS for factor in PART_FACTORS)
)
BOX_COLUMNS = tuple(f"{part}_{corner}" for part in PARTS for corner in ("x0", "y0", "x1", "y1"))
CSV_COLUMNS = ("split", "file", "class", "class_index", *FACTOR_COLUMNS, *BOX_COLUMNS)


@dataclass(frozen=True)
class SynthConfig:
    """What to generate (recorded in ``synth.json``)."""

    preset: str
    seed: int = 0
    size: int = 128
    train_per_class: int = 100
    test_per_class: int = 30
    masks: bool = False
    background: str = "plain"


def render_sample(
    preset: str, class_index: int, split: str, index: int, seed: int, size: int,
    background: str = "plain", change: Callable[[dict], dict] | None = None,
) -> tuple[dict, Rendered]:
    """Factors and rendering of one image; depends only on its arguments.

    ``change`` maps the factors drawn from the seed to those drawn (an intervention, see
    :mod:`.interventions`); the nuisance (background noise, pattern phases) stays the same.
    """
    spec = get_preset(preset)
    entropy = [seed, zlib.crc32(preset.encode()), SPLIT_CODES[split], class_index, index]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    factors = sample_factors(spec, class_index, rng, background)
    if change is not None:
        factors = change(dict(factors))
    return factors, render(factors, size, rng)


def _format(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _check(config: SynthConfig) -> None:
    get_preset(config.preset)
    check_background(config.background)
    if not 32 <= config.size <= 1024:
        raise UserError(f"image size must be between 32 and 1024 pixels, got {config.size}")
    if config.train_per_class < 1 or config.test_per_class < 1:
        raise UserError("train-per-class and test-per-class must be at least 1")


def _write_png(path: Path, pixels: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    path.write_bytes(encoded.tobytes())


def _metadata(config: SynthConfig) -> dict:
    spec = get_preset(config.preset)
    return {
        "generator": "protoexplain synthetic birds",
        "config": asdict(config),
        "description": spec.description,
        "class_factor": spec.factor,
        "classes": [
            {"name": c.name, "fixed": {f"{p}_{f}": v for (p, f), v in c.fixed.items()}}
            for c in spec.classes
        ],
        "random_ranges": RANDOM_RANGES,
        "allowed": {k: list(v) for k, v in spec.allowed.items()},
        "counts": {
            "train": config.train_per_class * len(spec.classes),
            "test": config.test_per_class * len(spec.classes),
        },
        "mask_labels": {"0": "background", **{str(i + 1): p for i, p in enumerate(PARTS)}},
    }


def generate_synthetic(
    out_dir: str | os.PathLike,
    preset: str = "mixed",
    seed: int = 0,
    size: int = 128,
    train_per_class: int = 100,
    test_per_class: int = 30,
    masks: bool = False,
    progress: bool = True,
    background: str = "plain",
) -> dict:
    """Generate a synthetic data set into ``out_dir`` and return its ``synth.json`` content.

    ``background``: ``plain`` or ``like-parts`` (see :mod:`.synth_factors`).

    The set is built in a temporary folder inside ``out_dir`` (held with
    :func:`~protoexplain.outputs.locked_output`) and moved into place, ``synth.json`` last, so an
    interrupted run leaves only that temporary, which the next run removes. If ``out_dir``
    already holds the same data set it is kept as is; a non-empty folder holding anything else
    is an error.
    """
    config = SynthConfig(preset, seed, size, train_per_class, test_per_class, masks, background)
    _check(config)
    metadata = _metadata(config)
    with locked_output(out_dir, "synth") as out:
        if any(p.name != LOCK_NAME for p in out.iterdir()):
            marker = out / "synth.json"
            if marker.exists() and read_json(marker) == json.loads(json.dumps(metadata)):
                return metadata
            raise UserError(
                f"output folder {out} is not empty and holds no identical synthetic data set; "
                "choose a new folder or remove it"
            )
        staging = temp_folder_beside(out / "data", suffix=".partial")
        try:
            _write_all(staging, config, progress)
            write_json(staging / "synth.json", metadata)
            for entry in sorted(staging.iterdir(), key=lambda p: p.name == "synth.json"):
                os.replace(entry, out / entry.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return metadata


def _write_all(root: Path, config: SynthConfig, progress: bool) -> None:
    spec = get_preset(config.preset)
    per_split = {"train": config.train_per_class, "test": config.test_per_class}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    total = sum(per_split.values()) * len(spec.classes)
    bar = progress_bar(total=total, desc=f"synth {config.preset}", unit="img", disable=not progress)
    for split, count in per_split.items():
        for class_index, class_spec in enumerate(spec.classes):
            folder = root / split / class_spec.name
            folder.mkdir(parents=True)
            if config.masks:
                (root / "masks" / split / class_spec.name).mkdir(parents=True)
            for index in range(count):
                factors, drawn = render_sample(
                    config.preset, class_index, split, index, config.seed, config.size,
                    config.background,
                )
                name = f"{index:05d}.png"
                _write_png(folder / name, cv2.cvtColor(drawn.image, cv2.COLOR_RGB2BGR))
                if config.masks:
                    _write_png(root / "masks" / split / class_spec.name / name, drawn.mask)
                row = [split, f"{split}/{class_spec.name}/{name}", class_spec.name, class_index]
                row += [_format(factors[column]) for column in FACTOR_COLUMNS]
                row += [v for part in PARTS for v in drawn.boxes[part]]
                writer.writerow(row)
                bar.update()
    bar.close()
    (root / "factors.csv").write_text(buffer.getvalue(), encoding="utf-8")
