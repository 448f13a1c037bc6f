"""The ``paper-lightness`` family: the paper's modifications except a contrast that keeps colour."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import color

from protoexplain.errors import UserError
from protoexplain.explain.families.calibration import calibrate_strengths
from protoexplain.explain.modifications import get_modification, list_modifications

FAMILY = "paper-lightness"


def _image(seed: int = 0) -> Image.Image:
    """A 32 × 32 image of smooth colour blobs (moderate chroma, inside the sRGB gamut)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.25, 0.75, (4, 4, 3))
    pixels = np.kron(coarse, np.ones((8, 8, 1)))
    return Image.fromarray(np.rint(pixels * 255).astype(np.uint8))


def _chroma(image: Image.Image) -> np.ndarray:
    lab = color.rgb2lab(np.asarray(image, dtype=np.float64) / 255.0)
    return np.hypot(lab[..., 1], lab[..., 2])


def test_the_family_has_the_papers_six_characteristics_in_its_order():
    assert [m.name for m in list_modifications(FAMILY)] == [
        m.name for m in list_modifications("paper")]


@pytest.mark.parametrize(("name", "strength"), [("saturation", 0.4), ("hue", 0.2),
                                                ("brightness", 0.6), ("shape", 3.0),
                                                ("texture", 8.0)])
def test_every_other_characteristic_is_the_papers(name, strength):
    ours, papers = get_modification(name, FAMILY), get_modification(name, "paper")
    image = _image()
    assert np.array_equal(np.asarray(ours.apply(image, strength)),
                          np.asarray(papers.apply(image, strength)))
    assert ours.apply_batch is papers.apply_batch and ours.default_strength == (
        papers.default_strength)


def test_contrast_keeps_chroma_where_the_papers_removes_it():
    image = _image(1)
    before = _chroma(image)
    ours = _chroma(get_modification("contrast", FAMILY).apply(image, 0.3))
    papers = _chroma(get_modification("contrast", "paper").apply(image, 0.3))
    # the paper's blend toward grey at factor 0.3 keeps about 30 % of each pixel's chroma; a
    # lightness-only change keeps all of it up to 8-bit rounding (well under one ΔE unit)
    assert np.abs(ours - before).max() < 1.5
    assert papers.mean() < 0.5 * before.mean()
    lightness = color.rgb2lab(np.asarray(get_modification("contrast", FAMILY).apply(image, 0.3),
                                          dtype=np.float64) / 255.0)[..., 0]
    original = color.rgb2lab(np.asarray(image, dtype=np.float64) / 255.0)[..., 0]
    assert lightness.std() == pytest.approx(0.3 * original.std(), rel=0.05)


def test_fast_mode_names_the_contrast_as_unavailable(tmp_path):
    import torch

    from helpers_data import noise_folder
    from protoexplain.data import ImageFolderDataset
    from protoexplain.explain import explain_dataset
    from protoexplain.models import ModelSpec, ProtoPNet

    torch.manual_seed(0)
    model = ProtoPNet(ModelSpec("small_cnn", 2, (2, 16, 1, 1), image_size=32)).eval()
    data = ImageFolderDataset(noise_folder(tmp_path / "data", 2, 0))
    with pytest.raises(UserError, match=r"\['contrast'\] have no batched version"):
        explain_dataset(model, data, family=FAMILY, mode="fast", bootstrap=0, device="cpu")


def test_every_modification_has_a_calibration_range():
    images = [_image(2), _image(3)]
    ours = calibrate_strengths(images, FAMILY, 3.0).results
    papers = {r.name: r for r in calibrate_strengths(images, "paper", 3.0).results}
    assert [r.name for r in ours] == [m.name for m in list_modifications(FAMILY)]
    for result in ours:
        if result.name == "contrast":
            assert result.reached and result.delta_e == pytest.approx(3.0, rel=0.02)
        else:
            assert (result.strength, result.delta_e) == (papers[result.name].strength,
                                                        papers[result.name].delta_e)
