"""The sine warp of Nauta et al. (the ``shape`` modification), vectorised.

Row ``i`` is rolled horizontally by ``int(A·sin(π·w·i))`` (``np.roll`` direction: a positive
shift moves pixels right), then column ``j`` of the result is rolled vertically by
``int(A·sin(π·w·j))`` (positive: down). ``int`` truncates toward zero; pixels wrap around.
"""

from __future__ import annotations

import numpy as np
import torch


def sine_shifts(length: int, amplitude: float, frequency: float) -> np.ndarray:
    """Integer shifts ``int(A·sin(π·w·k))`` for ``k = 0 … length−1`` (truncated toward zero)."""
    positions = np.arange(length, dtype=np.float64)
    return np.trunc(amplitude * np.sin(np.pi * frequency * positions)).astype(np.int64)


def sine_warp(image: np.ndarray, amplitude: float, frequency: float) -> np.ndarray:
    """Warp an (H, W) or (H, W, C) array; returns a new array of the same shape and dtype."""
    height, width = image.shape[:2]
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    row_shift = sine_shifts(height, amplitude, frequency)
    warped = image[rows, (cols - row_shift[:, None]) % width]
    col_shift = sine_shifts(width, amplitude, frequency)
    return warped[(rows - col_shift[None, :]) % height, cols]


def sine_warp_batch(images: torch.Tensor, amplitude: float, frequency: float) -> torch.Tensor:
    """The same warp on a (B, C, H, W) tensor (any dtype, any device)."""
    batch, channels, height, width = images.shape
    device = images.device
    rows = torch.arange(height, device=device)[:, None]
    cols = torch.arange(width, device=device)[None, :]
    row_shift = torch.from_numpy(sine_shifts(height, amplitude, frequency)).to(device)
    col_shift = torch.from_numpy(sine_shifts(width, amplitude, frequency)).to(device)
    horizontal = ((cols - row_shift[:, None]) % width).expand(batch, channels, height, width)
    warped = torch.gather(images, 3, horizontal)
    vertical = ((rows - col_shift[None, :]) % height).expand(batch, channels, height, width)
    return torch.gather(warped, 2, vertical)
