"""The original augmentation: parameter ranges by property, geometry, determinism, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from helpers_data import random_rgb, tree_bytes
from protoexplain.data import augment_folder
from protoexplain.data.augmentation import apply_params, derive_rng, sample_params


def _line_angle(pixels: np.ndarray) -> float:
    """Angle (degrees, counter-clockwise, in (-90, 90]) of the bright pixels' main axis."""
    ys, xs = np.nonzero(pixels > 128)
    coords = np.stack([xs - xs.mean(), -(ys - ys.mean())])
    _, vectors = np.linalg.eigh(coords @ coords.T)
    dx, dy = vectors[:, -1]
    angle = math.degrees(math.atan2(dy, dx))
    return (angle + 90) % 180 - 90


@pytest.mark.parametrize("seed", range(40))
def test_parameter_ranges(seed):
    rng = derive_rng("ranges", seed)
    rotate = sample_params("rotate", 60, 40, rng)
    shear = sample_params("shear", 60, 40, rng)
    skew = sample_params("skew", 60, 40, rng)
    assert -15 <= rotate.angle <= 15 and -10 <= shear.shear <= 10
    # torchvision's RandomPerspective(0.2): each corner moves inward by at most
    # int(0.2 * half_size) pixels, never outward
    max_dx, max_dy = int(0.2 * 30), int(0.2 * 20)
    corners = [(0, 0), (59, 0), (59, 39), (0, 39)]
    assert list(skew.startpoints) == corners
    for (sx, sy), (ex, ey) in zip(skew.startpoints, skew.endpoints, strict=True):
        assert abs(ex - sx) <= max_dx and abs(ey - sy) <= max_dy
        assert 0 <= ex <= 59 and 0 <= ey <= 39


def test_flip_probability_is_about_half():
    rng = derive_rng("flip")
    flips = [sample_params("rotate", 10, 10, rng).flip for _ in range(2000)]
    assert 0.45 < np.mean(flips) < 0.55


def test_rotation_of_a_line_never_exceeds_15_degrees():
    canvas = np.zeros((81, 81), np.uint8)
    canvas[40, 8:73] = 255
    image = Image.fromarray(canvas).convert("RGB")
    measured = []
    for seed in range(30):
        params = sample_params("rotate", 81, 81, derive_rng("line", seed))
        angle = _line_angle(np.asarray(apply_params(image, params))[:, :, 0])
        expected = -params.angle if params.flip else params.angle
        assert abs(angle - expected) < 1.5
        measured.append(angle)
    assert max(abs(a) for a in measured) <= 15.5
    assert max(abs(a) for a in measured) > 8  # the range is actually used


def test_shear_tilts_a_vertical_line_by_at_most_10_degrees():
    canvas = np.zeros((81, 81), np.uint8)
    canvas[8:73, 40] = 255
    image = Image.fromarray(canvas).convert("RGB")
    for seed in range(20):
        params = sample_params("shear", 81, 81, derive_rng("shear", seed))
        tilt = 90 - abs(_line_angle(np.asarray(apply_params(image, params))[:, :, 0]))
        assert abs(tilt - abs(params.shear)) < 1.5 and tilt <= 10.5


def _folder(root):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(random_rgb(rng, 20, 24)).save(root / name / f"x{k}.png")


def test_augment_folder_is_deterministic_and_resumes(tmp_path):
    _folder(tmp_path / "in")
    first = augment_folder(tmp_path / "in", tmp_path / "one", seed=7, copies_per_pipeline=2,
                           progress=False)
    assert first.written == 4 * 3 * 2
    names = sorted(p.name for p in (tmp_path / "one" / "a").iterdir())
    assert names[:2] == ["x0_rotate_00.png", "x0_rotate_01.png"] and len(names) == 12
    augment_folder(tmp_path / "in", tmp_path / "two", seed=7, copies_per_pipeline=2,
                   progress=False)
    reference = tree_bytes(tmp_path / "one")
    assert tree_bytes(tmp_path / "two") == reference
    for victim in list((tmp_path / "two" / "b").iterdir())[:5]:
        victim.unlink()
    resumed = augment_folder(tmp_path / "in", tmp_path / "two", seed=7, copies_per_pipeline=2,
                             progress=False)
    assert resumed.written == 5 and resumed.existing == 19
    assert tree_bytes(tmp_path / "two") == reference
    augment_folder(tmp_path / "in", tmp_path / "three", seed=8, copies_per_pipeline=2,
                   progress=False)
    assert tree_bytes(tmp_path / "three") != reference
