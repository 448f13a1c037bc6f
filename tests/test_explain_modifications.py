"""Each modification against the library call that defines it; sine-warp properties; registry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageFilter

from protoexplain.errors import UserError
from protoexplain.explain import (
    get_modification,
    list_modifications,
    register_modification,
    resolve_settings,
)
from protoexplain.explain.warp import sine_shifts, sine_warp, sine_warp_batch


@pytest.fixture(scope="module")
def image() -> Image.Image:
    rng = np.random.default_rng(0)
    blocks = np.kron(rng.integers(0, 256, (6, 7, 3)), np.ones((7, 7, 1)))
    noisy = np.clip(blocks + rng.normal(0, 10, blocks.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy[:40, :45])  # native, non-square


def test_paper_family_defaults() -> None:
    defaults = {m.name: m.default_strength for m in list_modifications("paper")}
    assert defaults == {"contrast": 0.45, "saturation": 0.7, "hue": 0.1, "brightness": 0.8,
                        "shape": 4.0, "texture": 4.0}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("contrast", lambda im, f: TF.adjust_contrast(im, f)),
        ("saturation", lambda im, f: TF.adjust_saturation(im, f)),
        ("hue", lambda im, f: TF.adjust_hue(im, f)),
        ("brightness", lambda im, f: TF.adjust_brightness(im, f)),
    ],
)
def test_colour_modifications_are_torchvision_pil_path(image, name, call) -> None:
    modification = get_modification(name)
    for factor in (modification.default_strength, 0.3):
        out = modification(image, factor)
        assert out.size == image.size and out.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(out), np.asarray(call(image, factor)))
    assert not np.array_equal(np.asarray(modification(image)), np.asarray(image))


def test_texture_is_opencv_nl_means_on_bgr(image) -> None:
    bgr = np.asarray(image)[:, :, ::-1].copy()
    expected = cv2.fastNlMeansDenoisingColored(bgr, None, 4, 4, 7, 21)[:, :, ::-1]
    np.testing.assert_array_equal(np.asarray(get_modification("texture")(image)), expected)
    rgb_order = cv2.fastNlMeansDenoisingColored(np.asarray(image).copy(), None, 4, 4, 7, 21)
    assert not np.array_equal(expected, rgb_order)  # channel order matters


def test_shape_is_sine_warp_at_native_resolution(image) -> None:
    out = np.asarray(get_modification("shape")(image))
    np.testing.assert_array_equal(out, sine_warp(np.asarray(image), 4, 0.05))


def _naive_warp(array: np.ndarray, amplitude: float, frequency: float) -> np.ndarray:
    out = array.copy()
    for i in range(out.shape[0]):
        out[i] = np.roll(out[i], int(amplitude * np.sin(np.pi * frequency * i)), axis=0)
    for j in range(out.shape[1]):
        out[:, j] = np.roll(out[:, j], int(amplitude * np.sin(np.pi * frequency * j)), axis=0)
    return out


def test_sine_warp_matches_per_row_rolls_and_truncates_toward_zero() -> None:
    array = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for amplitude, frequency in [(4, 0.05), (7.5, 0.13), (-3, 0.05)]:
        np.testing.assert_array_equal(
            sine_warp(array, amplitude, frequency), _naive_warp(array, amplitude, frequency)
        )
    shifts = sine_shifts(40, 4, 0.05)
    assert shifts[10] == 4 and shifts[30] == -4 and shifts[20] == 0
    assert shifts[1] == 0  # 4·sin(0.05π) = 0.63 truncates to 0
    assert shifts[25] == -2  # 4·sin(1.25π) = −2.83 truncates toward zero


def test_sine_warp_row_and_column_shifts_wrap_around() -> None:
    height, width = 8, 12
    rows = np.repeat(np.arange(height)[:, None], width, axis=1)
    cols = np.repeat(np.arange(width)[None, :], height, axis=0)
    grid = np.stack([rows, cols], axis=-1)
    amplitude, frequency = 5, 0.5  # row shifts 0, 5, 0, −5, …; same for columns
    out = sine_warp(grid, amplitude, frequency)
    row_shift = sine_shifts(height, amplitude, frequency)
    col_shift = sine_shifts(width, amplitude, frequency)
    for i in range(height):
        for j in range(width):
            src_i = (i - col_shift[j]) % height
            src_j = (j - row_shift[src_i]) % width
            assert tuple(out[i, j]) == (src_i, src_j)
    assert sorted(map(tuple, out.reshape(-1, 2))) == sorted(map(tuple, grid.reshape(-1, 2)))


def test_sine_warp_identity_at_zero_amplitude_and_torch_version() -> None:
    array = np.random.default_rng(2).integers(0, 256, (30, 41, 3), dtype=np.uint8)
    np.testing.assert_array_equal(sine_warp(array, 0, 0.05), array)
    batch = torch.from_numpy(np.stack([array, array[::-1].copy()])).permute(0, 3, 1, 2)
    warped = sine_warp_batch(batch, 4, 0.05).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(warped[0], sine_warp(array, 4, 0.05))
    np.testing.assert_array_equal(warped[1], sine_warp(array[::-1], 4, 0.05))


def test_fast_texture_close_to_opencv(image) -> None:
    tensor = TF.to_tensor(image)[None]
    fast = get_modification("texture").apply_batch(tensor, 4.0)[0]
    fast_levels = (fast.permute(1, 2, 0).numpy() * 255).round()
    faithful = np.asarray(get_modification("texture")(image)).astype(float)
    error = np.abs(fast_levels - faithful).mean()
    assert error < 1.0 < np.abs(np.asarray(image) - faithful).mean()


def test_fast_colour_versions_agree_with_pil_path(image) -> None:
    tensor = TF.to_tensor(image)[None]
    for modification in list_modifications("paper"):
        if modification.name == "texture":
            continue
        fast = modification.apply_batch(tensor, modification.default_strength)[0]
        faithful = TF.to_tensor(modification(image))
        assert (fast - faithful).abs().mean() < 0.02, modification.name


def test_user_registers_a_modification_with_one_decorator(image) -> None:
    @register_modification("blur", default_strength=1.5, family="test-user", description="blur")
    def blur(img: Image.Image, strength: float) -> Image.Image:
        return img.filter(ImageFilter.GaussianBlur(strength))

    settings = resolve_settings(None, {"blur": [1.0, 2.0]}, family="test-user")
    assert [(s.name, s.strength) for s in settings] == [("blur", 1.0), ("blur", 2.0)]
    expected = image.filter(ImageFilter.GaussianBlur(2.0))
    np.testing.assert_array_equal(np.asarray(settings[1].apply(image)), np.asarray(expected))
    assert get_modification("blur", "test-user").family == "test-user"
    with pytest.raises(UserError, match="batched"):
        settings[0].apply_batch(torch.zeros(1, 3, 4, 4))


def test_unknown_names_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown modification 'huee'"):
        get_modification("huee")
    with pytest.raises(UserError, match="family"):
        get_modification("hue", family="nope")
    with pytest.raises(UserError, match="not among"):
        resolve_settings(["hue"], {"shape": [2.0]})
