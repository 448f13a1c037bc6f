"""Invariants of the perceptual family: each colour modification moves one LCh coordinate only.

Fixtures are grids of in-gamut CIELAB colours (moderate chroma, mid lightness) so that no
modification below leaves the sRGB gamut; tolerances allow for 8-bit quantisation only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from skimage import color

from protoexplain.explain.modifications import get_modification, list_modifications

PERCEPTUAL = "perceptual"


def _lab_grid() -> np.ndarray:
    """(3, 24, 3) Lab colours: L 50/60/70 × 12 hue angles × chroma 15/22."""
    rows = []
    for lightness in (50.0, 60.0, 70.0):
        row = []
        for chroma in (15.0, 22.0):
            for angle in np.arange(0, 360, 30):
                rad = math.radians(angle)
                row.append([lightness, chroma * math.cos(rad), chroma * math.sin(rad)])
        rows.append(row)
    return np.array(rows)


def _image(lab: np.ndarray) -> Image.Image:
    rgb = color.lab2rgb(lab)
    return Image.fromarray(np.rint(rgb * 255).astype(np.uint8))


def _lab(image: Image.Image) -> np.ndarray:
    return color.rgb2lab(np.asarray(image, dtype=np.float64) / 255.0)


def _chroma(lab: np.ndarray) -> np.ndarray:
    return np.hypot(lab[..., 1], lab[..., 2])


def _apply(name: str, image: Image.Image, strength: float) -> Image.Image:
    return get_modification(name, PERCEPTUAL).apply(image, strength)


def test_family_has_the_six_characteristics():
    names = {m.name for m in list_modifications(PERCEPTUAL)}
    assert names == {"hue", "saturation", "contrast", "brightness", "shape", "texture"}


@pytest.mark.parametrize("turns", [0.1, 0.25, -0.3, 0.5])
def test_hue_rotation_keeps_lightness_and_chroma(turns):
    image = _image(_lab_grid())
    before = _lab(image)
    after = _lab(_apply("hue", image, turns))
    # naive reference: rotate (a, b) by the angle
    theta = 2 * math.pi * turns
    a = before[..., 1] * math.cos(theta) - before[..., 2] * math.sin(theta)
    b = before[..., 1] * math.sin(theta) + before[..., 2] * math.cos(theta)
    np.testing.assert_allclose(after[..., 0], before[..., 0], atol=0.6)
    np.testing.assert_allclose(_chroma(after), _chroma(before), atol=1.0)
    np.testing.assert_allclose(after[..., 1], a, atol=1.2)
    np.testing.assert_allclose(after[..., 2], b, atol=1.2)


def test_hue_full_turn_is_identity():
    image = _image(_lab_grid())
    after = _apply("hue", image, 1.0)
    diff = np.abs(np.asarray(after, dtype=int) - np.asarray(image, dtype=int))
    assert diff.max() <= 1


@pytest.mark.parametrize("factor", [0.0, 0.3, 0.7])
def test_chroma_scaling_keeps_lightness_and_hue(factor):
    image = _image(_lab_grid())
    before = _lab(image)
    after = _lab(_apply("saturation", image, factor))
    np.testing.assert_allclose(after[..., 0], before[..., 0], atol=0.6)
    np.testing.assert_allclose(_chroma(after), factor * _chroma(before), atol=1.0)
    if factor > 0:
        # hue kept: the (a, b) direction is unchanged (compare unit vectors)
        unit_before = before[..., 1:] / _chroma(before)[..., None]
        np.testing.assert_allclose(after[..., 1:], factor * _chroma(before)[..., None]
                                   * unit_before, atol=1.0)


@pytest.mark.parametrize("factor", [0.0, 0.45, 0.8])
def test_lightness_contrast_keeps_chroma_and_hue(factor):
    image = _image(_lab_grid())
    before = _lab(image)
    after = _lab(_apply("contrast", image, factor))
    mean = before[..., 0].mean()
    np.testing.assert_allclose(after[..., 0], mean + factor * (before[..., 0] - mean), atol=0.6)
    np.testing.assert_allclose(after[..., 1:], before[..., 1:], atol=1.0)


def test_brightness_scales_lightness_only():
    image = _image(_lab_grid())
    before = _lab(image)
    after = _lab(_apply("brightness", image, 0.8))
    np.testing.assert_allclose(after[..., 0], 0.8 * before[..., 0], atol=0.6)
    np.testing.assert_allclose(after[..., 1:], before[..., 1:], atol=1.0)


def test_unit_strengths_are_identity():
    image = _image(_lab_grid())
    for name, strength in (("hue", 0.0), ("saturation", 1.0), ("contrast", 1.0),
                           ("brightness", 1.0), ("texture", 0.0), ("shape", 0.0)):
        after = np.asarray(_apply(name, image, strength), dtype=int)
        assert np.abs(after - np.asarray(image, dtype=int)).max() <= 1, name


def test_shape_is_the_paper_warp():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    ours = np.asarray(_apply("shape", image, 4.0))
    theirs = np.asarray(get_modification("shape", "paper").apply(image, 4.0))
    np.testing.assert_array_equal(ours, theirs)


def _striped(size: int = 48, period: int = 4) -> np.ndarray:
    """A red square with dark stripes on a flat grey background."""
    pixels = np.full((size, size, 3), 128, dtype=np.uint8)
    square = np.zeros((size, size), dtype=bool)
    square[8:40, 8:40] = True
    stripes = (np.arange(size) // (period // 2)) % 2 == 0
    pixels[square] = (200, 60, 60)
    pixels[square & stripes[None, :]] = (120, 30, 30)
    return pixels


def test_texture_removes_stripes_but_keeps_flat_regions_and_mean_colour():
    pixels = _striped()
    image = Image.fromarray(pixels)
    after = np.asarray(_apply("texture", image, 0.2))
    inner = (slice(12, 36), slice(12, 36))
    lab_before, lab_after = _lab(image), _lab(Image.fromarray(after))
    # the pattern's lightness variation inside the square drops by more than half
    assert lab_after[inner][..., 0].std() < 0.5 * lab_before[inner][..., 0].std()
    # the square's mean colour moves little (ΔE2000 < 3)
    shift = color.deltaE_ciede2000(lab_before[inner].reshape(-1, 3).mean(0),
                                   lab_after[inner].reshape(-1, 3).mean(0))
    assert shift < 3.0
    # the flat background far from the square is untouched
    np.testing.assert_allclose(after[:3, :3].astype(int), pixels[:3, :3].astype(int), atol=2)
