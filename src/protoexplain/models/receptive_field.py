"""Receptive-field bookkeeping, as the original code did it: [n, jump, rf, start] per layer.

The layers are the convolutions and poolings of the trunk's main path in forward order (ResNet
shortcut ``downsample`` convolutions are not on it), followed by the prototype layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ReceptiveField:
    """Latent size ``n``, ``jump`` between cells, field size ``rf`` and centre of cell 0."""

    n: int
    jump: float
    rf: float
    start: float

    def as_list(self) -> list[float]:
        """``[n, jump, rf, start]``, the original's layout."""
        return [self.n, self.jump, self.rf, self.start]

    def box(self, cell_h: int, cell_w: int, image_size: int) -> tuple[int, int, int, int]:
        """Pixel box ``(h0, h1, w0, w1)`` (end exclusive) seen by latent cell (cell_h, cell_w)."""
        h0, h1 = self._span(cell_h, image_size)
        w0, w1 = self._span(cell_w, image_size)
        return h0, h1, w0, w1

    def _span(self, index: int, image_size: int) -> tuple[int, int]:
        centre = self.start + index * self.jump
        return max(int(centre - self.rf / 2), 0), min(int(centre + self.rf / 2), image_size)


def next_layer(previous: ReceptiveField, kernel: int, stride: int, padding: int) -> ReceptiveField:
    """Receptive field after one layer with the given kernel, stride and (symmetric) padding."""
    n_out = math.floor((previous.n - kernel + 2 * padding) / stride) + 1
    return ReceptiveField(
        n=n_out,
        jump=previous.jump * stride,
        rf=previous.rf + (kernel - 1) * previous.jump,
        start=previous.start + ((kernel - 1) / 2 - padding) * previous.jump,
    )


def _pair_first(value: int | tuple[int, ...]) -> int:
    return value[0] if isinstance(value, tuple) else int(value)


def trunk_layers(trunk: nn.Module) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of every conv/pool on the trunk's main path, in forward order."""
    layers: list[tuple[int, int, int]] = []
    for name, module in trunk.named_modules():
        if "downsample" in name.split("."):
            continue
        if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            layers.append(
                (
                    _pair_first(module.kernel_size),
                    _pair_first(module.stride),
                    _pair_first(module.padding),
                )
            )
    return layers


def compute_receptive_field(
    trunk: nn.Module, image_size: int, prototype_kernel: int = 1
) -> ReceptiveField:
    """Receptive field of one prototype-layer cell for square inputs of ``image_size`` pixels."""
    field = ReceptiveField(n=image_size, jump=1, rf=1, start=0.5)
    for kernel, stride, padding in trunk_layers(trunk):
        field = next_layer(field, kernel, stride, padding)
    return next_layer(field, prototype_kernel, 1, 0)
