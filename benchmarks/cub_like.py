"""CUB-like benchmark images: JPEGs of 150–420 px a side, smooth random blobs (compressible and
cheap to decode like photographs, no download), ``root/cNNN/iiiii.jpg``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_jpegs(root: Path, count: int, classes: int, seed: int = 0) -> Path:
    """Write ``count`` images spread round-robin over ``classes`` folders; return ``root``."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / f"c{i % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        height, width = (int(v) for v in rng.integers(150, 421, 2))
        coarse = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3),
                              dtype=np.uint8)
        pixels = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return root
