"""Batched torch re-implementation of ``cv2.fastNlMeansDenoisingColored`` for the fast mode.

OpenCV converts linear BGR to 8-bit CIELAB, denoises L with ``h`` and (a, b) together with
``hColor`` by non-local means (patch ``template``×``template``, search window ``search``×``search``,
weight ``exp(−mean squared patch distance / (h²·channels))``, weights below 0.001 dropped,
reflect-101 borders), and converts back. We follow the same steps in floating point; OpenCV's
fixed-point arithmetic makes results differ by about one grey level on average.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_XYZ_FROM_RGB = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_RGB_FROM_XYZ = torch.tensor(
    [
        [3.240479, -1.53715, -0.498535],
        [-0.969256, 1.875991, 0.041556],
        [0.055648, -0.204043, 1.057311],
    ]
)
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])
_THRESHOLD = 0.008856
_WEIGHT_THRESHOLD = 0.001
_CUTOFF = -math.log(_WEIGHT_THRESHOLD)


def _mix(matrix: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(images), images)


def linear_rgb_to_lab8(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) linear RGB in [0, 1] → 8-bit-scaled Lab (L·255/100, a+128, b+128), rounded."""
    xyz = _mix(_XYZ_FROM_RGB, rgb) / _WHITE.to(rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > _THRESHOLD, xyz.clamp_min(0).pow(1 / 3), 7.787 * xyz + 16 / 116)
    y = xyz[:, 1:2]
    lightness = torch.where(y > _THRESHOLD, 116 * f[:, 1:2] - 16, 903.3 * y)
    a = 500 * (f[:, 0:1] - f[:, 1:2])
    b = 200 * (f[:, 1:2] - f[:, 2:3])
    lab = torch.cat([lightness * 255 / 100, a + 128, b + 128], dim=1)
    return lab.round().clamp(0, 255)


def lab8_to_linear_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`linear_rgb_to_lab8`, rounded to 8-bit levels and returned in [0, 1]."""
    lightness = lab[:, 0:1] * 100 / 255
    fy = (lightness + 16) / 116
    y = torch.where(lightness > 903.3 * _THRESHOLD, fy.pow(3), lightness / 903.3)
    fx = fy + (lab[:, 1:2] - 128) / 500
    fz = fy - (lab[:, 2:3] - 128) / 200
    cube = 6 / 29

    def inverse(f: torch.Tensor) -> torch.Tensor:
        return torch.where(f > cube, f.pow(3), (f - 16 / 116) / 7.787)

    xyz = torch.cat([inverse(fx), y, inverse(fz)], dim=1) * _WHITE.to(lab).view(1, 3, 1, 1)
    rgb = _mix(_RGB_FROM_XYZ, xyz)
    return (rgb * 255).round().clamp(0, 255) / 255


def _box_mean(images: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over every ``size``×``size`` window (valid positions), by running sums."""
    rows = F.pad(images, (0, 0, 1, 0)).cumsum(dim=-2)
    images = rows[..., size:, :] - rows[..., :-size, :]
    cols = F.pad(images, (1, 0, 0, 0)).cumsum(dim=-1)
    return (cols[..., size:] - cols[..., :-size]) / (size * size)


def nl_means(images: torch.Tensor, h: float, template: int = 7, search: int = 21) -> torch.Tensor:
    """Non-local means of (B, C, H, W) images in 0…255 levels; output rounded to levels."""
    if h <= 0:
        return images
    half_t, half_s = template // 2, search // 2
    pad = half_t + half_s
    mode = "reflect" if min(images.shape[-2:]) > pad else "replicate"
    padded = F.pad(images, (pad, pad, pad, pad), mode=mode)
    height, width = images.shape[-2:]
    inner_h, inner_w = height + 2 * half_t, width + 2 * half_t
    centre = padded[..., half_s : half_s + inner_h, half_s : half_s + inner_w]
    scale = 1.0 / (h * h * images.shape[1])
    total = torch.zeros_like(images)
    weights = torch.zeros_like(images[:, :1])
    for dy in range(search):
        for dx in range(search):
            moved = padded[..., dy : dy + inner_h, dx : dx + inner_w]
            distance = (moved - centre).square().sum(dim=1, keepdim=True)
            exponent = _box_mean(distance, template) * scale
            # Clamping first keeps exp() away from denormal floats, which are very slow on CPUs.
            weight = torch.exp(-exponent.clamp_max(_CUTOFF))
            weight = torch.where(exponent > _CUTOFF, 0.0, weight)
            total += weight * moved[..., half_t : half_t + height, half_t : half_t + width]
            weights += weight
    return (total / weights).round()


def denoise_colored(
    images: torch.Tensor, h: float, h_color: float, template: int = 7, search: int = 21
) -> torch.Tensor:
    """``cv2.fastNlMeansDenoisingColored`` on a (B, 3, H, W) RGB batch in [0, 1]."""
    quantised = (images.clamp(0, 1) * 255).round() / 255
    lab = linear_rgb_to_lab8(quantised)
    lightness = nl_means(lab[:, :1], h, template, search)
    chroma = nl_means(lab[:, 1:], h_color, template, search)
    return lab8_to_linear_rgb(torch.cat([lightness, chroma], dim=1))
