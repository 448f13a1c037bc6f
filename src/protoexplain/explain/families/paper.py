"""The six characteristics of Nauta et al. (method §6), exactly as the original computed them.

Colour changes use torchvision's PIL path with a fixed factor (the original's
``ColorJitter(x=(f, f))`` draws its factor from [f, f], i.e. always f); texture is OpenCV's
non-local means colour denoising on BGR channel order; shape is the integer sine warp. Each also
has a batched torch version for the ``fast`` mode (applied after resizing).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from protoexplain.explain.modifications import register_modification
from protoexplain.explain.nlmeans import denoise_colored
from protoexplain.explain.warp import sine_warp, sine_warp_batch

SHAPE_FREQUENCY = 0.05
TEXTURE_TEMPLATE = 7
TEXTURE_SEARCH = 21


@register_modification(
    "contrast",
    default_strength=0.45,
    batch=TF.adjust_contrast,
    description="blend toward the image's mean grey; factor (1 = unchanged, 0 = flat grey)",
)
def contrast(image: Image.Image, strength: float) -> Image.Image:
    """Contrast factor ``strength`` (torchvision ``adjust_contrast``)."""
    return TF.adjust_contrast(image, strength)


@register_modification(
    "saturation",
    default_strength=0.7,
    batch=TF.adjust_saturation,
    description="blend toward grayscale; factor (1 = unchanged, 0 = grayscale)",
)
def saturation(image: Image.Image, strength: float) -> Image.Image:
    """Saturation factor ``strength`` (torchvision ``adjust_saturation``)."""
    return TF.adjust_saturation(image, strength)


@register_modification(
    "hue",
    default_strength=0.1,
    batch=TF.adjust_hue,
    description="rotate hue by a fraction of the circle in [-0.5, 0.5] (0.1 = 36°)",
)
def hue(image: Image.Image, strength: float) -> Image.Image:
    """Hue shift ``strength`` (torchvision ``adjust_hue``)."""
    return TF.adjust_hue(image, strength)


@register_modification(
    "brightness",
    default_strength=0.8,
    batch=TF.adjust_brightness,
    description="multiply intensities; factor (1 = unchanged, 0 = black)",
)
def brightness(image: Image.Image, strength: float) -> Image.Image:
    """Brightness factor ``strength`` (torchvision ``adjust_brightness``)."""
    return TF.adjust_brightness(image, strength)


def _shape_batch(images: torch.Tensor, strength: float) -> torch.Tensor:
    return sine_warp_batch(images, strength, SHAPE_FREQUENCY)


@register_modification(
    "shape",
    default_strength=4.0,
    batch=_shape_batch,
    description="sine warp of rows then columns; amplitude A in pixels (w = 0.05, 0 = unchanged)",
)
def shape(image: Image.Image, strength: float) -> Image.Image:
    """Sine warp with amplitude ``strength`` and frequency 0.05 (see :mod:`..warp`)."""
    return Image.fromarray(sine_warp(np.asarray(image), strength, SHAPE_FREQUENCY))


def _texture_batch(images: torch.Tensor, strength: float) -> torch.Tensor:
    return denoise_colored(images, strength, strength, TEXTURE_TEMPLATE, TEXTURE_SEARCH)


@register_modification(
    "texture",
    default_strength=4.0,
    batch=_texture_batch,
    description="OpenCV non-local means colour denoising on BGR; h = hColor = strength",
)
def texture(image: Image.Image, strength: float) -> Image.Image:
    """``cv2.fastNlMeansDenoisingColored`` (template 7, search 21, h = hColor = ``strength``)."""
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    denoised = cv2.fastNlMeansDenoisingColored(
        bgr, None, strength, strength, TEXTURE_TEMPLATE, TEXTURE_SEARCH
    )
    return Image.fromarray(np.ascontiguousarray(denoised[:, :, ::-1]))
