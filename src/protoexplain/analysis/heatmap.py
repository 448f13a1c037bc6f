"""Pictures of activations, shared with push so that boxes and overlays look the same everywhere.

Upsampling (bicubic), the 95th-percentile high-activation box and the JET overlay
(0.5·image + 0.3·JET) are push's own (:mod:`protoexplain.training.push`,
:mod:`protoexplain.training.artifacts`). This module adds the small image helpers the analyses
need. Images are float arrays in [0, 1], (H, W, 3), RGB; boxes are ``(h0, h1, w0, w1)``, end
exclusive.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from PIL import Image

from protoexplain.fileio import atomic_path
from protoexplain.training.push import high_activation_boxes, upsample_maps

Box = tuple[int, int, int, int]
BOX_COLOUR = (1.0, 1.0, 0.0)


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """(N, H', W') maps → (N, size, size), bicubic."""
    return upsample_maps(torch.as_tensor(maps), size).numpy()


def boxes(maps: np.ndarray, size: int) -> np.ndarray:
    """(N, 4) high-activation boxes of (N, H', W') similarity maps at ``size`` pixels."""
    return high_activation_boxes(torch.as_tensor(maps), size).numpy()


def draw_box(
    image: np.ndarray, box: Box, colour: tuple[float, float, float] = BOX_COLOUR
) -> np.ndarray:
    """A copy of ``image`` with a 1-pixel rectangle around ``box``."""
    h0, h1, w0, w1 = (int(v) for v in box)
    out = np.ascontiguousarray(np.array(image, dtype=np.float32, copy=True))
    cv2.rectangle(out, (w0, h0), (w1 - 1, h1 - 1), colour, thickness=1)
    return out


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The part of ``image`` inside ``box``."""
    h0, h1, w0, w1 = (int(v) for v in box)
    return image[h0:h1, w0:w1]


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a [0, 1] float RGB image as PNG, atomically."""
    pixels = np.uint8(np.clip(np.round(np.asarray(image) * 255.0), 0, 255))
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
