"""Pictures of activations, shared with push so that boxes and overlays look the same everywhere.

Upsampling (bicubic) and the 95th-percentile high-activation box are push's own
(:mod:`protoexplain.training.push`); PNG writing, boxes and the JET overlay (0.5·image +
0.3·JET) live in :mod:`protoexplain.imaging`. This module adapts them to the analyses. Images are
float arrays in [0, 1], (H, W, 3), RGB; boxes are ``(h0, h1, w0, w1)``, end exclusive.
"""

from __future__ import annotations

import numpy as np
import torch

from protoexplain import imaging
from protoexplain.imaging import Box, save_png
from protoexplain.training.push import high_activation_boxes, upsample_maps

BOX_COLOUR = (1.0, 1.0, 0.0)


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """(N, H', W') maps → (N, size, size), bicubic."""
    return upsample_maps(torch.as_tensor(maps), size).numpy()


def boxes(maps: np.ndarray, size: int) -> np.ndarray:
    """(N, 4) high-activation boxes of (N, H', W') similarity maps at ``size`` pixels."""
    return high_activation_boxes(torch.as_tensor(maps), size).numpy()


def draw_box(image: np.ndarray, box: Box, colour: tuple = BOX_COLOUR) -> np.ndarray:
    """A copy of a [0, 1] float image with a 1-pixel rectangle around ``box``."""
    return imaging.draw_box(np.asarray(image, dtype=np.float32), box, colour, thickness=1)


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The part of ``image`` inside ``box``."""
    h0, h1, w0, w1 = (int(v) for v in box)
    return image[h0:h1, w0:w1]


__all__ = ["BOX_COLOUR", "Box", "boxes", "crop", "draw_box", "save_png", "upsample"]
