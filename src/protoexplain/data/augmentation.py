"""The original ProtoPNet augmentation as explicit, seedable operations.

Three pipelines (method §1), each followed by a horizontal flip with probability 0.5:

* ``rotate``: rotation by an angle uniform in [-15°, 15°] (torchvision ``RandomRotation(15)``);
* ``skew``: perspective distortion of scale 0.2 (``RandomPerspective(distortion_scale=0.2, p=1)``);
* ``shear``: horizontal shear uniform in [-10°, 10°] (``RandomAffine(0, shear=10)``).

Parameters are drawn exactly as torchvision draws them, but from an explicit
``numpy.random.Generator``, then applied with torchvision's functional operations (same
interpolation and black fill as those transforms' defaults). Offline augmentation derives one
generator per (seed, image, pipeline, copy); the online transform draws its seed from torch's RNG,
which ``DataLoader`` seeds differently in each worker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

PIPELINES = ("rotate", "skew", "shear")
MAX_ROTATION = 15.0
DISTORTION_SCALE = 0.2
MAX_SHEAR = 10.0
FLIP_PROBABILITY = 0.5


@dataclass(frozen=True)
class AugmentParams:
    """The sampled parameters of one augmentation (angles in degrees, corners as (x, y))."""

    pipeline: str
    flip: bool
    angle: float = 0.0
    shear: float = 0.0
    startpoints: tuple[tuple[int, int], ...] = ()
    endpoints: tuple[tuple[int, int], ...] = ()


def derive_rng(*parts: object) -> np.random.Generator:
    """A generator seeded from a stable hash of ``parts`` (independent of Python's hash seed)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def perspective_points(
    width: int, height: int, rng: np.random.Generator
) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """Start and end corners as ``RandomPerspective.get_params`` draws them."""
    half_w, half_h = width // 2, height // 2
    dx = int(DISTORTION_SCALE * half_w) + 1
    dy = int(DISTORTION_SCALE * half_h) + 1

    def r(high: int) -> int:
        return int(rng.integers(0, high))

    top_left = (r(dx), r(dy))
    top_right = (width - 1 - r(dx), r(dy))
    bottom_right = (width - 1 - r(dx), height - 1 - r(dy))
    bottom_left = (r(dx), height - 1 - r(dy))
    start = ((0, 0), (width - 1, 0), (width - 1, height - 1), (0, height - 1))
    return start, (top_left, top_right, bottom_right, bottom_left)


def sample_params(
    pipeline: str, width: int, height: int, rng: np.random.Generator
) -> AugmentParams:
    """Draw the parameters of ``pipeline`` (one of :data:`PIPELINES`) for a width × height image."""
    if pipeline == "rotate":
        angle = float(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
        return AugmentParams(pipeline, _flip(rng), angle=angle)
    if pipeline == "skew":
        start, end = perspective_points(width, height, rng)
        return AugmentParams(pipeline, _flip(rng), startpoints=start, endpoints=end)
    if pipeline == "shear":
        shear = float(rng.uniform(-MAX_SHEAR, MAX_SHEAR))
        return AugmentParams(pipeline, _flip(rng), shear=shear)
    raise ValueError(f"unknown augmentation pipeline {pipeline!r}; expected one of {PIPELINES}")


def _flip(rng: np.random.Generator) -> bool:
    return bool(rng.random() < FLIP_PROBABILITY)


def apply_params(image: Image.Image, params: AugmentParams) -> Image.Image:
    """Apply sampled parameters with torchvision's functional operations."""
    if params.pipeline == "rotate":
        image = F.rotate(image, params.angle, interpolation=InterpolationMode.NEAREST)
    elif params.pipeline == "skew":
        image = F.perspective(
            image,
            [list(p) for p in params.startpoints],
            [list(p) for p in params.endpoints],
            interpolation=InterpolationMode.BILINEAR,
        )
    elif params.pipeline == "shear":
        image = F.affine(
            image,
            angle=0.0,
            translate=[0, 0],
            scale=1.0,
            shear=[params.shear, 0.0],
            interpolation=InterpolationMode.NEAREST,
        )
    else:
        raise ValueError(f"unknown augmentation pipeline {params.pipeline!r}")
    return F.hflip(image) if params.flip else image


def augment_image(image: Image.Image, pipeline: str, rng: np.random.Generator) -> Image.Image:
    """Sample parameters of ``pipeline`` for ``image`` and apply them."""
    return apply_params(image, sample_params(pipeline, image.width, image.height, rng))


class OriginalAugmentation:
    """Online version: each call picks one of the three pipelines at random and applies it.

    Randomness comes from torch's global RNG (one draw per call, used as a seed), so results follow
    ``torch.manual_seed`` and differ between ``DataLoader`` workers.
    """

    def __call__(self, image: Image.Image) -> Image.Image:
        seed = int(torch.randint(0, 2**62, (1,)).item())
        rng = np.random.default_rng(seed)
        pipeline = PIPELINES[int(rng.integers(0, len(PIPELINES)))]
        return augment_image(image, pipeline, rng)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pipelines={PIPELINES})"
