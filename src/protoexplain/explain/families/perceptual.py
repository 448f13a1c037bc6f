"""The ``perceptual`` family: colour characteristics changed one at a time in CIELAB / LCh.

The paper's colour operations are entangled (a contrast blend toward grey also removes colour; an
HSV hue shift also changes lightness). Here each colour characteristic moves one coordinate of
CIELAB's cylindrical form LCh (lightness L, chroma C, hue angle h) and keeps the others:

- ``hue``: h rotated by ``strength`` of a full turn (0.1 = 36°), L and C kept;
- ``saturation``: C multiplied by ``strength`` (1 = unchanged, 0 = grey), L and h kept;
- ``contrast``: L pulled toward the image's mean L, ``L' = m + strength·(L − m)``, C and h kept;
- ``brightness``: L multiplied by ``strength``, C and h kept.

Strengths mean the same as in the ``paper`` family, so the defaults are the paper's. Conversions
use scikit-image (sRGB, D65); colours that leave the sRGB gamut are clipped per channel when
converting back. ``shape`` is the paper's sine warp; ``texture`` is total-variation (ROF)
smoothing of the CIELAB image, which removes fine periodic patterns that non-local means keeps
(see ``docs/faithfulness.md``). No maintained torch colour library is a dependency, so the colour
modifications and ``texture`` have no batched implementation: this family runs in ``faithful``
mode only.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from PIL import Image
from skimage import color
from skimage.restoration import denoise_tv_chambolle

from protoexplain.explain.families import paper
from protoexplain.explain.modifications import register_modification

FAMILY = "perceptual"


def image_to_lch(image: Image.Image) -> np.ndarray:
    """(H, W, 3) float LCh of an RGB PIL image (L in 0…100, h in radians)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    return color.lab2lch(color.rgb2lab(rgb))


def lch_to_image(lch: np.ndarray) -> Image.Image:
    """RGB PIL image of an LCh array; out-of-gamut colours are clipped per channel."""
    with warnings.catch_warnings():
        # lab2rgb warns when a colour leaves the gamut; clipping is the documented behaviour.
        warnings.simplefilter("ignore", UserWarning)
        rgb = color.lab2rgb(color.lch2lab(lch))
    return Image.fromarray(np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8))


def _with_lch(image: Image.Image, change) -> Image.Image:
    lch = image_to_lch(image)
    change(lch)
    return lch_to_image(lch)


@register_modification(
    "hue",
    family=FAMILY,
    default_strength=0.1,
    description="rotate the CIELAB hue angle by a fraction of a turn (0.1 = 36°); L, C kept",
)
def hue(image: Image.Image, strength: float) -> Image.Image:
    """Rotate the LCh hue angle by ``strength`` turns at constant lightness and chroma."""

    def change(lch: np.ndarray) -> None:
        lch[..., 2] = np.mod(lch[..., 2] + 2.0 * math.pi * strength, 2.0 * math.pi)

    return _with_lch(image, change)


@register_modification(
    "saturation",
    family=FAMILY,
    default_strength=0.7,
    description="scale CIELAB chroma by a factor (1 = unchanged, 0 = grey); L, h kept",
)
def saturation(image: Image.Image, strength: float) -> Image.Image:
    """Multiply chroma C by ``strength`` at constant lightness and hue."""

    def change(lch: np.ndarray) -> None:
        lch[..., 1] *= strength

    return _with_lch(image, change)


@register_modification(
    "contrast",
    family=FAMILY,
    default_strength=0.45,
    description="lightness contrast around the mean L (1 = unchanged, 0 = flat L); C, h kept",
)
def contrast(image: Image.Image, strength: float) -> Image.Image:
    """Scale lightness deviations from the image's mean lightness by ``strength``."""

    def change(lch: np.ndarray) -> None:
        mean = lch[..., 0].mean()
        lch[..., 0] = mean + strength * (lch[..., 0] - mean)

    return _with_lch(image, change)


@register_modification(
    "brightness",
    family=FAMILY,
    default_strength=0.8,
    description="scale CIELAB lightness by a factor (1 = unchanged, 0 = black); C, h kept",
)
def brightness(image: Image.Image, strength: float) -> Image.Image:
    """Multiply lightness L by ``strength`` at constant chroma and hue."""

    def change(lch: np.ndarray) -> None:
        lch[..., 0] *= strength

    return _with_lch(image, change)


register_modification(
    "shape",
    family=FAMILY,
    default_strength=4.0,
    batch=paper._shape_batch,
    description="sine warp of rows then columns (as the paper); amplitude A in pixels",
)(paper.shape)


#: Lab channel scales for the TV smoothing: L spans 0…100, a and b about ±100.
_TV_SCALE = 100.0


@register_modification(
    "texture",
    family=FAMILY,
    default_strength=0.1,
    description="total-variation (ROF) smoothing in CIELAB; weight (0 = unchanged, 0.1 ≈ mild)",
)
def texture(image: Image.Image, strength: float) -> Image.Image:
    """Remove fine texture by Chambolle's total-variation denoising of the Lab image.

    TV smoothing (the cartoon part of a cartoon–texture decomposition) flattens small oscillating
    patterns while keeping large regions' edges and mean colour. ``strength`` is the TV weight on
    Lab scaled to about 0…1.
    """
    if strength <= 0:
        return image.convert("RGB")
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    lab = color.rgb2lab(rgb) / _TV_SCALE
    smooth = denoise_tv_chambolle(lab, weight=strength, channel_axis=-1) * _TV_SCALE
    return lch_to_image(color.lab2lch(smooth))
