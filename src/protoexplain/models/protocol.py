"""The one model contract every explainer, analysis and report is written against.

A part-prototype model gives, for a *normalised* image batch, one similarity map per prototype
(B, P, H', W') and the class logits; it says what input it expects (:class:`InputSpec`), how its
prototypes relate to classes (a non-negative P × C matrix) and which image box a latent cell
stands for. ProtoPNet, PIP-Net and :class:`~protoexplain.models.adapter.SimilarityModelAdapter`
(any user module) satisfy it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from protoexplain.errors import UserError

Box = tuple[int, int, int, int]


class StoredSpec:
    """Mixin for an architecture's spec dataclass: what ``model.json`` stores and rebuilds."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def check_normalisation(mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    """One mean and one std per colour channel, or a one-line error."""
    if len(mean) != 3 or len(std) != 3:
        raise UserError("mean and std must give one value per colour channel (three each)")


@dataclass(frozen=True)
class InputSpec:
    """What a model expects: square ``image_size`` pixels, normalised with ``mean`` and ``std``."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise a [0, 1] image batch (B, 3, H, W) for the model."""
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images - mean) / std


class SpecProperties:
    """Mixin for a module whose ``spec`` holds ``num_classes``, ``class_names``, ``image_size``,
    ``mean`` and ``std``: the contract's members that read it."""

    spec: Any

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def class_names(self) -> list[str]:
        return self.spec.class_names

    @property
    def input_spec(self) -> InputSpec:
        """Image size, mean and std (from the spec)."""
        return InputSpec(self.spec.image_size, self.spec.mean, self.spec.std)


@runtime_checkable
class PrototypeModel(Protocol):
    """The surface an explainer needs from any prototype model (an ``nn.Module``)."""

    @property
    def input_spec(self) -> InputSpec:
        """Image size, mean and std of the normalised input."""

    @property
    def class_names(self) -> list[str]:
        """One name per class, in logit order."""

    @property
    def num_prototypes(self) -> int:
        """P, the number of similarity maps."""

    @property
    def num_classes(self) -> int:
        """C, the number of logits."""

    @property
    def main_class(self) -> torch.Tensor:
        """(P,) long: each prototype's class, the argmax of :meth:`class_weights`."""

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, P, H', W') similarity of every latent cell to every prototype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) logits of a normalised batch."""

    def class_weights(self) -> torch.Tensor:
        """(P, C) non-negative relation of every prototype to every class."""

    def cell_box(self, cell_h: int, cell_w: int, image_size: int) -> Box:
        """Image box ``(h0, h1, w0, w1)`` (exclusive ends) that latent cell (h, w) stands for."""

    def linear_evidence(self, similarities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For (P,) best similarities: the last layer's (C, P) weights and the (P,) values it
        multiplies, so that logits = weights @ values (the local analysis' contributions)."""


def strongest_class(weights: torch.Tensor) -> torch.Tensor:
    """(P,) index of each prototype's largest class weight (first on ties)."""
    return weights.argmax(dim=1)


def grid_box(cell_h: int, cell_w: int, grid: tuple[int, int], image_size: int) -> Box:
    """The image box of cell (h, w) when a ``grid`` (H', W') map is upsampled to the image."""
    rows, cols = grid
    h0, h1 = cell_h * image_size // rows, (cell_h + 1) * image_size // rows
    w0, w1 = cell_w * image_size // cols, (cell_w + 1) * image_size // cols
    return int(h0), int(h1), int(w0), int(w1)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a module with neither)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def probe_grid(model: nn.Module, image_size: int) -> tuple[int, int]:
    """(H', W') of ``model.similarity_maps`` on an ``image_size`` input (one zero image, eval)."""
    probe = torch.zeros(1, 3, image_size, image_size, device=model_device(model))
    was_training = model.training
    model.eval()
    try:
        height, width = model.similarity_maps(probe).shape[2:]
    finally:
        model.train(was_training)
    return int(height), int(width)
