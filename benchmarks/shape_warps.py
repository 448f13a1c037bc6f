"""Is a smoother sine warp more specific to shape? Prints a table, writes JSON.

Usage: python benchmarks/shape_warps.py BENCHMARK_DIR [OUT_JSON] [--device cpu]
(default OUT_JSON: ./shape_warps.json; about 20 seconds on two CPU cores)

BENCHMARK_DIR is the output of ``protoexplain benchmark faithfulness`` with the ``shape`` preset.
Its trained shape model and the benchmark's three controls are explained with the perceptual
family's five colour and texture modifications plus each candidate shape modification in turn:
the paper's warp (integer row and column shifts, A = 4, w = 0.05), the same displacement with
sub-pixel shifts (bilinear resampling, OpenCV ``remap``), and both with half the frequency. For
each candidate the table gives how often it is the most important of the six characteristics.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from protoexplain.benchmark import factor_ranks, summarise_ranks
from protoexplain.benchmark.faithfulness import benchmark_models
from protoexplain.benchmark.studies import load_preset_run, study_arguments
from protoexplain.data import ImageFolderDataset
from protoexplain.explain import explain_dataset
from protoexplain.explain.families import perceptual
from protoexplain.explain.modifications import get_modification, register_modification
from protoexplain.explain.warp import sine_warp
from protoexplain.fileio import write_json
from protoexplain.progress import progress_bar

FAMILY = "warp-study"
AMPLITUDE = 4.0
OTHERS = {"hue": perceptual.hue, "saturation": perceptual.saturation,
          "contrast": perceptual.contrast, "brightness": perceptual.brightness,
          "texture": perceptual.texture}


def smooth_sine_warp(pixels: np.ndarray, amplitude: float, frequency: float) -> np.ndarray:
    """The paper's displacement field with sub-pixel shifts: rows move by A·sin(π·w·i), then
    columns by A·sin(π·w·j), bilinear resampling, wrapping around like the original."""
    height, width = pixels.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    row_shift = (amplitude * np.sin(np.pi * frequency * np.arange(height)))[:, None]
    rows_moved = cv2.remap(pixels, ((xs - row_shift) % width).astype(np.float32), ys,
                           cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    col_shift = (amplitude * np.sin(np.pi * frequency * np.arange(width)))[None, :]
    return cv2.remap(rows_moved, xs, ((ys - col_shift) % height).astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def _warp(function, frequency: float):
    return lambda image, strength: Image.fromarray(function(np.asarray(image), strength, frequency))


CANDIDATES = {
    "integer, w = 0.05 (paper)": _warp(sine_warp, 0.05),
    "sub-pixel, w = 0.05": _warp(smooth_sine_warp, 0.05),
    "integer, w = 0.025": _warp(sine_warp, 0.025),
    "sub-pixel, w = 0.025": _warp(smooth_sine_warp, 0.025),
}
NAMES = {label: f"shape_{index}" for index, label in enumerate(CANDIDATES)}


def _register() -> None:
    """The study's family: the perceptual colour and texture modifications and every warp."""
    for name, function in OTHERS.items():
        strength = get_modification(name, perceptual.FAMILY).default_strength
        register_modification(name, family=FAMILY, default_strength=strength)(function)
    for label, function in CANDIDATES.items():
        register_modification(NAMES[label], family=FAMILY, default_strength=AMPLITUDE,
                              description=label)(function)


def main() -> None:
    args = study_arguments(__doc__.splitlines()[0], "shape_warps.json", "JSON file to write")
    device = args.device
    config, model, data = load_preset_run(args.benchmark_dir, "shape", "shape_warps")
    _register()
    models = benchmark_models(model, data / "train", config["seed"])
    test = ImageFolderDataset(data / "test")
    rows = []
    for kind, explained in progress_bar(models.items(), desc="shape warps", unit="model"):
        scores = explain_dataset(
            explained, test, modifications=[*OTHERS, *NAMES.values()], family=FAMILY,
            mode="faithful", bootstrap=0, device=device, batch_size=32, seed=config["seed"],
        ).global_scores
        means = scores.groupby("modification")["weighted_delta"].mean()
        for label, name in NAMES.items():
            six = scores[scores["modification"].isin([*OTHERS, name])]
            rows.append({"model": kind, "warp": label,
                         "shape_first": summarise_ranks(factor_ranks(six, name))["top1_share"],
                         "shape_importance": float(means[name]),
                         "hue_importance": float(means["hue"])})
    print(f"{'warp':<28}{'model':<17}{'shape first':>12}{'shape imp.':>11}{'hue imp.':>10}")
    for row in rows:
        print(f"{row['warp']:<28}{row['model']:<17}{row['shape_first']:>12.0%}"
              f"{row['shape_importance']:>11.4f}{row['hue_importance']:>10.4f}")
    write_json(args.out, {"benchmark_config": config, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
