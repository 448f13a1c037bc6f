"""Explain your own model: wrap any module that produces similarity maps in the model contract.

``SimilarityModelAdapter(module, input_spec, class_weights)`` turns a ``torch.nn.Module`` whose
call returns (B, P, H', W') similarity maps for a normalised batch (a CaBRNet or ProtoTree
similarity layer, a PIP-Net of another code base, …) into a
:class:`~protoexplain.models.protocol.PrototypeModel`, so that
:func:`protoexplain.explain.explain_dataset` and the report's figures run on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from protoexplain.errors import UserError
from protoexplain.models.protocol import Box, InputSpec, grid_box, probe_grid, strongest_class


class SimilarityModelAdapter(nn.Module):
    """A user's similarity module seen through the model contract.

    ``class_weights`` (P, C, non-negative) relates prototypes to classes; ``logits`` maps a
    normalised batch to (B, C) logits — by default each prototype's highest similarity times
    ``class_weights`` (max-pool, then a linear layer, as PIP-Net does). Latent cells map back to
    the image as the cells of the upsampled similarity map.
    """

    def __init__(
        self,
        module: nn.Module,
        input_spec: InputSpec,
        class_weights: torch.Tensor,
        class_names: Sequence[str] | None = None,
        logits: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        weights = torch.as_tensor(class_weights, dtype=torch.float32)
        if weights.ndim != 2 or (weights < 0).any():
            raise UserError("class_weights must be a non-negative (prototypes × classes) matrix")
        names = [str(c) for c in class_names] if class_names is not None else [
            str(c) for c in range(weights.shape[1])
        ]
        if len(names) != weights.shape[1]:
            raise UserError(f"{len(names)} class names given for {weights.shape[1]} classes")
        self.module = module
        self._input_spec = input_spec
        self._class_names = names
        self._logits = logits
        self.register_buffer("weights", weights, persistent=False)
        self._grids: dict[int, tuple[int, int]] = {}

    @property
    def input_spec(self) -> InputSpec:
        return self._input_spec

    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    @property
    def num_prototypes(self) -> int:
        return int(self.weights.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.weights.shape[1])

    @property
    def main_class(self) -> torch.Tensor:
        return strongest_class(self.weights)

    def class_weights(self) -> torch.Tensor:
        return self.weights

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped module's maps; their prototype count must match ``class_weights``."""
        maps = self.module(x)
        if maps.ndim != 4 or maps.shape[1] != self.num_prototypes:
            raise UserError(
                f"the wrapped module returned shape {tuple(maps.shape)}; expected "
                f"(batch, {self.num_prototypes}, height, width) similarity maps"
            )
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._logits is not None:
            return self._logits(x)
        pooled = self.similarity_maps(x).flatten(2).amax(dim=2)
        return pooled @ self.weights.to(pooled.dtype)

    def linear_evidence(self, similarities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``class_weights`` transposed and the similarities (exact for the default logits)."""
        return self.weights.T, similarities

    def cell_box(self, cell_h: int, cell_w: int, image_size: int) -> Box:
        """The cell of the similarity map upsampled to ``image_size``."""
        if image_size not in self._grids:
            self._grids[image_size] = probe_grid(self, image_size)
        return grid_box(cell_h, cell_w, self._grids[image_size], image_size)
