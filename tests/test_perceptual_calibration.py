"""Strength calibration: the chosen strengths give the target mean ΔE2000."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import color

from protoexplain.errors import UserError
from protoexplain.explain.families.calibration import calibrate_strengths, sample_images
from protoexplain.explain.modifications import get_modification


def _images(count: int = 3, size: int = 24) -> list[Image.Image]:
    rng = np.random.default_rng(1)
    images = []
    for _ in range(count):
        base = rng.uniform(40, 215, (4, 4, 3)).astype(np.uint8)
        images.append(Image.fromarray(base).resize((size, size), Image.BILINEAR))
    return images


def _mean_delta_e(images, name, family, strength) -> float:
    """Independent reference: per-pixel CIEDE2000, averaged per image then over images."""
    values = []
    for image in images:
        before = color.rgb2lab(np.asarray(image) / 255.0)
        modified = get_modification(name, family).apply(image, strength)
        after = color.rgb2lab(np.asarray(modified) / 255.0)
        values.append(color.deltaE_ciede2000(before, after).mean())
    return float(np.mean(values))


# The paper's hue (PIL, 8-bit HSV hue) changes in steps too coarse for a 3% tolerance.
@pytest.mark.parametrize(
    ("family", "names"),
    [
        ("perceptual", ["hue", "saturation", "contrast", "brightness"]),
        ("paper", ["saturation", "contrast", "brightness"]),
    ],
)
def test_calibrated_strengths_hit_the_target(family, names):
    images = _images()
    calibration = calibrate_strengths(images, family, target=4.0, names=names)
    assert calibration.metric == "CIEDE2000"
    assert [r.name for r in calibration.results] == names
    for result in calibration.results:
        assert result.reached, result
        measured = _mean_delta_e(images, result.name, family, result.strength)
        assert measured == pytest.approx(4.0, rel=0.03), result
        assert measured == pytest.approx(result.delta_e, rel=1e-9)
    assert calibration.strengths() == {r.name: [r.strength] for r in calibration.results}
    record = calibration.to_dict()
    assert record["target"] == 4.0 and record["n_images"] == len(images)


def test_larger_targets_need_larger_changes():
    images = _images()
    small = calibrate_strengths(images, "perceptual", 2.0, names=["saturation"]).results[0]
    large = calibrate_strengths(images, "perceptual", 6.0, names=["saturation"]).results[0]
    assert large.strength < small.strength < 1.0  # chroma factor: smaller = stronger


def test_unreachable_target_reports_the_extreme():
    flat = [Image.new("RGB", (16, 16), (128, 128, 128))]
    result = calibrate_strengths(flat, "perceptual", 5.0, names=["texture"]).results[0]
    assert not result.reached
    assert result.strength == 2.0
    assert result.delta_e == pytest.approx(0.0, abs=1e-6)


def test_bad_inputs_are_user_errors():
    with pytest.raises(UserError):
        calibrate_strengths([], "perceptual", 5.0)
    with pytest.raises(UserError):
        calibrate_strengths(_images(1), "perceptual", 0.0)


def test_sample_images_draws_distinct_images_reproducibly():
    class Tiny:
        def __len__(self):
            return 5

        def load_image(self, i):
            return Image.new("RGB", (4, 4), (i * 40, 0, 0))

    first = [im.getpixel((0, 0))[0] for im in sample_images(Tiny(), 3, seed=2)]
    again = [im.getpixel((0, 0))[0] for im in sample_images(Tiny(), 3, seed=2)]
    assert first == again and len(set(first)) == 3
    assert len(sample_images(Tiny(), 10)) == 5
