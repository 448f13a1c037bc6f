"""Several prototype models seen as one, so that each image is modified once for all of them.

The explanation engine modifies every image once per model; the benchmark's four models (trained
and controls) share the same input, so they are explained together as one model whose prototypes
are theirs side by side. Every prototype's score depends only on its own similarity maps (its
best cell on the original, the similarity there on each version), so the stacked result split
back per model is each model's own result.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from protoexplain.models.protocol import InputSpec


class StackedModels(nn.Module):
    """The prototypes of ``models`` (one input spec, one latent grid) side by side; what the
    explanation engine reads: ``input_spec``, ``num_prototypes``, ``main_class``,
    ``similarity_maps``."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        specs = {model.input_spec for model in models}
        if len(specs) != 1:
            raise ValueError(f"stacked models need one input spec, got {len(specs)}")
        self.members = nn.ModuleList(models)
        self._input_spec = specs.pop()
        self.sizes = [int(model.num_prototypes) for model in models]

    @property
    def input_spec(self) -> InputSpec:
        """The members' common input spec."""
        return self._input_spec

    @property
    def num_prototypes(self) -> int:
        """All members' prototypes."""
        return sum(self.sizes)

    @property
    def main_class(self) -> torch.Tensor:
        """Each prototype's class in its own model."""
        return torch.cat([model.main_class for model in self.members])

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ΣP, H', W'): every member's maps, in member order."""
        return torch.cat([model.similarity_maps(x) for model in self.members], dim=1)

    def split(self, values: Sequence[float]) -> list[list[float]]:
        """Per-prototype values of the stack cut into one list per member."""
        found, start = [], 0
        for size in self.sizes:
            found.append(list(values[start:start + size]))
            start += size
        return found
