"""Better shape proxies? Candidate shape modifications against the interventional reference.

Usage: python benchmarks/shape_proxies.py CORRECTNESS_DIR [OUT_JSON] [--device cpu]
(default OUT_JSON: ./shape_proxies.json; a few minutes per seed on two CPU cores)

CORRECTNESS_DIR is a finished ``protoexplain benchmark correctness`` output (any seeds;
``--no-mixed`` is enough). For each of its seeds and isolated presets, the trained model and its
three controls are explained with every candidate shape modification, at the strength whose mean
ΔE2000 on the run's own calibration images matches each of the run's targets. A candidate's
family is the perceptual one with its shape modification replaced: the perceptual rows of the
run's ``per_prototype.csv`` are copied with the method's shape importance swapped for the
candidate's. M1 (every characteristic) and M2 are then computed for the perceptual family and
each candidate on the same models with the benchmark's clustered intervals. Issue 16's rule: a
candidate is better only when it beats the perceptual family on shape's M1 and on M2's top-1
agreement with non-overlapping intervals.

Candidates (all keep every pixel's colour, only move pixels):
- the perceptual family's shape (the paper's sine warp of rows then columns, w = 0.05);
- ``elastic 4x4`` / ``elastic 8x8``: a smooth random displacement field (a fixed-seed Gaussian
  draw on a 4 × 4 or 8 × 8 grid of control points, bicubic upsampling), local bends of the
  outline at the scale of the whole bird or of one part; strength = RMS displacement in pixels;
- ``outline-following``: the 4 × 4 field weighted by closeness to strong edges (a Gaussian-blurred
  map of the largest colour steps), so that outlines move and flat or finely patterned interiors
  move less.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from protoexplain.benchmark.agreement import per_factor, per_prototype
from protoexplain.benchmark.correctness import (
    CHARACTERISTICS,
    CorrectnessConfig,
    calibration_indices,
    method_importances,
)
from protoexplain.benchmark.correctness_metrics import profiles
from protoexplain.benchmark.correctness_run import saved_config
from protoexplain.benchmark.faithfulness import benchmark_models
from protoexplain.data import ImageFolderDataset
from protoexplain.device import resolve_device
from protoexplain.explain.families.calibration import (
    StrengthRange,
    bisect_strength,
    mean_delta_e,
    to_lab,
)
from protoexplain.explain.modifications import get_modification, register_modification
from protoexplain.fileio import read_json, write_json
from protoexplain.models import load_model
from protoexplain.progress import progress_bar

FAMILY = "shape-proxy-study"
BASE = "perceptual"
SEARCH = StrengthRange(0.0, 16.0)  # RMS displacement in pixels (the sine warp's range)
EDGE_BLUR = 2.0  # σ in pixels of the edge-closeness weight


@functools.lru_cache(maxsize=16)
def smooth_field(height: int, width: int, grid: int) -> np.ndarray:
    """(H, W, 2) float32 displacement with unit RMS: a fixed-seed draw on ``grid`` × ``grid``
    control points, upsampled bicubically (the same for every image of a size; read-only)."""
    coarse = np.random.default_rng(0).standard_normal((grid, grid, 2)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    field /= np.sqrt(np.mean(np.sum(field**2, axis=2)))
    field.flags.writeable = False
    return field


def edge_closeness(pixels: np.ndarray) -> np.ndarray:
    """(H, W) weight in [0, 1]: closeness to the image's strongest colour steps."""
    channels = pixels.astype(np.float32)
    step = np.maximum(np.abs(np.diff(channels, axis=0, append=channels[-1:])).max(2),
                      np.abs(np.diff(channels, axis=1, append=channels[:, -1:])).max(2))
    strong = (step > 0.25 * np.quantile(step, 0.99)).astype(np.float32)
    near = cv2.GaussianBlur(strong, (0, 0), EDGE_BLUR)
    return near / max(float(near.max()), 1e-6)


def displaced(pixels: np.ndarray, field: np.ndarray) -> np.ndarray:
    """``pixels`` resampled at (x, y) + ``field`` (bilinear, mirrored border)."""
    height, width = pixels.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return cv2.remap(pixels, xs + field[..., 0], ys + field[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT_101)


def elastic(grid: int, follow_outline: bool = False):
    """A shape modification: the ``grid`` field scaled to RMS ``strength`` pixels (weighted by
    :func:`edge_closeness` when ``follow_outline``)."""
    def apply(image: Image.Image, strength: float) -> Image.Image:
        pixels = np.asarray(image.convert("RGB"))
        if strength <= 0:
            return Image.fromarray(pixels)
        field = smooth_field(*pixels.shape[:2], grid)
        if follow_outline:
            weight = edge_closeness(pixels)[..., None]
            field = field * weight / np.sqrt(np.mean(np.sum((field * weight) ** 2, axis=2)))
        return Image.fromarray(displaced(pixels, strength * field))
    return apply


CANDIDATES = {"elastic 4x4": elastic(4), "elastic 8x8": elastic(8),
              "outline-following": elastic(4, follow_outline=True)}
NAMES = {label: f"shape_{index}" for index, label in enumerate(CANDIDATES)}


def register() -> None:
    """Each candidate as a modification of the study's family."""
    for label, function in CANDIDATES.items():
        register_modification(NAMES[label], family=FAMILY, default_strength=2.0,
                              description=label)(function)


def calibrated(images: list[Image.Image], targets: tuple[float, ...]) -> dict:
    """{modification name: {target: strength}} of every candidate on ``images``."""
    labs = [to_lab(image) for image in images]
    chosen: dict[str, dict[str, float]] = {}
    for name in NAMES.values():
        modification = get_modification(name, FAMILY)
        for target in targets:
            strength, _, _ = bisect_strength(
                lambda s, m=modification: mean_delta_e(images, m, s, labs), SEARCH, target)
            chosen.setdefault(name, {})[str(target)] = strength
    return chosen


def candidate_rows(run: Path, config: CorrectnessConfig, seed: int, preset: str, device) -> list:
    """Rows (seed, preset, model, prototype, target, name, method) of one preset and seed."""
    root = run / f"seed-{seed}"
    data = root / "data" / preset
    model = load_model(root / "runs" / preset / "model").eval()
    models = benchmark_models(model, data / "train", seed)
    train = ImageFolderDataset(data / "train")
    images = [train.load_image(i).convert("RGB")
              for i in calibration_indices(train, seed, config.calibration_images)]
    chosen = calibrated(images, config.targets)
    found = method_importances(models, ImageFolderDataset(data / "test"), FAMILY, chosen, config,
                               device, seed)
    rows = []
    for kind, by_target in found.items():
        for target, by_name in by_target.items():
            for name, values in by_name.items():
                rows += [{"seed": seed, "preset": preset, "model": kind, "prototype": p,
                          "target": float(target), "name": name, "candidate": v}
                         for p, v in enumerate(values)]
    return rows


def with_candidates(table: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """``table`` plus, per candidate, a copy of its perceptual rows with the shape importance
    replaced (family ``perceptual+LABEL``)."""
    keys = ["seed", "preset", "model", "prototype", "target"]
    base = table[table["family"] == BASE]
    added = [table]
    for label, name in NAMES.items():
        swap = candidates[candidates["name"] == name][[*keys, "candidate"]]
        copy = base.merge(swap, on=keys, how="left")
        is_shape = copy["characteristic"] == "shape"
        copy.loc[is_shape, "method"] = copy.loc[is_shape, "candidate"]
        added.append(copy.drop(columns="candidate").assign(family=f"{BASE}+{label}"))
    return pd.concat(added, ignore_index=True)


def summarise(table: pd.DataFrame, families: list[str], target: float, replicates: int) -> dict:
    """M1 (every characteristic) and M2 (pooled) of each family on the same models."""
    found = {}
    for family in families:
        models = profiles(table, family, target)
        found[family] = {"m1": per_factor(models, CHARACTERISTICS, replicates, seed=0),
                         "m2": per_prototype(models, replicates, seed=1)}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("correctness_dir", type=Path,
                        help="a finished 'protoexplain benchmark correctness' output folder")
    parser.add_argument("out", type=Path, nargs="?", default=Path("shape_proxies.json"),
                        help="JSON file to write (default: ./shape_proxies.json)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (default: cpu)")
    args = parser.parse_args()
    record = args.correctness_dir / "correctness.json"
    table_path = args.correctness_dir / "per_prototype.csv"
    if not record.is_file() or not table_path.is_file():
        raise SystemExit(f"shape_proxies: {args.correctness_dir} holds no finished correctness "
                         "run (correctness.json, per_prototype.csv); run 'protoexplain benchmark "
                         "correctness' first")
    settings = read_json(record)["config"]
    config = saved_config(settings)
    device = resolve_device(args.device)
    register()
    table = pd.read_csv(table_path)
    table = table[table["preset"].isin(config.presets)]
    jobs = [(seed, preset) for seed in sorted(set(table["seed"])) for preset in config.presets]
    rows = []
    for seed, preset in progress_bar(jobs, desc="shape proxies", unit="preset"):
        rows += candidate_rows(args.correctness_dir, config, seed, preset, device)
    combined = with_candidates(table, pd.DataFrame(rows))
    families = [BASE, *(f"{BASE}+{label}" for label in CANDIDATES)]
    summary = summarise(combined, families, config.headline, config.bootstrap)
    print(f"seeds {sorted(set(table['seed']))}, target ΔE {config.headline}; "
          "ρ / share (95 % interval clustered by model)")
    print(f"{'family':<34}{'M1 shape':>20}{'M1 texture':>20}{'M2 top-1':>20}")
    for family, entry in summary.items():
        m1s, m1t, top = entry["m1"]["shape"], entry["m1"]["texture"], entry["m2"]["method_top1"]
        print(f"{family:<34}{m1s['rho']:>8.2f} ({m1s['low']:.2f}–{m1s['high']:.2f})"
              f"{m1t['rho']:>8.2f} ({m1t['low']:.2f}–{m1t['high']:.2f})"
              f"{top['value']:>8.0%} ({top['low']:.0%}–{top['high']:.0%})")
    write_json(args.out, {"correctness_config": settings, "candidates": list(CANDIDATES),
                          "summary": json.loads(json.dumps(summary))})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
