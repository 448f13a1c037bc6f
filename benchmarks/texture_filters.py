"""Which filter removes synthetic texture without moving colour? Prints a table, writes JSON.

Usage: python benchmarks/texture_filters.py [OUT_DIR]  (default: ./texture-filters)

On the synthetic ``texture`` preset (64 px, with part masks) it measures, per filter and strength:
``removed`` = drop of the lightness standard deviation inside patterned parts (1 = pattern gone),
``part_delta_e`` = CIEDE2000 between each part's mean Lab before and after (colour moved),
``background_delta_e`` = mean per-pixel CIEDE2000 on the background.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import color

from protoexplain.data.synth import generate_synthetic
from protoexplain.explain.modifications import get_modification
from protoexplain.fileio import write_json


def _bilateral(image: Image.Image, sigma: float) -> Image.Image:
    return Image.fromarray(cv2.bilateralFilter(np.asarray(image), 9, sigma, 5))


def _median(image: Image.Image, size: float) -> Image.Image:
    return Image.fromarray(cv2.medianBlur(np.asarray(image), int(size)))


FILTERS = {
    "nl_means (paper texture, h)": (get_modification("texture", "paper").apply, [4, 10, 20, 40]),
    "bilateral (sigma colour)": (_bilateral, [25, 50, 100]),
    "median (size)": (_median, [3, 5, 7]),
    "tv_lab (perceptual texture, weight)": (
        get_modification("texture", "perceptual").apply, [0.05, 0.1, 0.2, 0.4]
    ),
}


def measure(root: Path, apply, strength: float) -> dict[str, float]:
    removed, shifts, background = [], [], []
    kernel = np.ones((3, 3), np.uint8)
    for path in sorted((root / "train").glob("*/*.png")):
        image = Image.open(path).convert("RGB")
        mask = np.asarray(Image.open(root / "masks" / path.relative_to(root)))
        before = color.rgb2lab(np.asarray(image) / 255.0)
        after = color.rgb2lab(np.asarray(apply(image, strength)) / 255.0)
        inner = cv2.erode((mask > 0).astype(np.uint8), kernel) > 0
        if "plain" not in path.parent.name:
            removed.append(1 - after[..., 0][inner].std() / max(before[..., 0][inner].std(), 1e-6))
        for part in range(1, 5):
            region = (mask == part) & inner
            if region.sum() > 10:
                shifts.append(color.deltaE_ciede2000(before[region].mean(0), after[region].mean(0)))
        outside = cv2.erode((mask == 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        background.append(color.deltaE_ciede2000(before, after)[outside].mean())
    return {"removed": float(np.mean(removed)), "part_delta_e": float(np.mean(shifts)),
            "background_delta_e": float(np.mean(background))}


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "texture-filters")
    data = out / "data"
    generate_synthetic(data, "texture", seed=0, size=64, train_per_class=8, test_per_class=1,
                       masks=True, progress=False)
    rows = []
    print(f"{'filter':<38}{'strength':>9}{'removed':>9}{'part dE':>9}{'bg dE':>8}")
    for name, (apply, strengths) in FILTERS.items():
        for strength in strengths:
            row = {"filter": name, "strength": strength, **measure(data, apply, strength)}
            rows.append(row)
            print(f"{name:<38}{strength:>9}{row['removed']:>9.2f}{row['part_delta_e']:>9.2f}"
                  f"{row['background_delta_e']:>8.2f}")
    write_json(out / "texture_filters.json", rows)


if __name__ == "__main__":
    main()
