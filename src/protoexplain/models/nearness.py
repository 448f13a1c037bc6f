"""How near a latent cell is to a prototype, for ranking patches (smaller is nearer).

ProtoPNet ranks by its squared L2 distance, the quantity push and the original code use; every
other architecture of the model contract by −similarity. The two functions are inverse, so a
caller that searched by nearness gets the exact similarities back without a second forward pass.
"""

from __future__ import annotations

import torch

from protoexplain.models.ppnet import ProtoPNet
from protoexplain.models.protocol import PrototypeModel


def nearness_maps(model: PrototypeModel, images: torch.Tensor) -> torch.Tensor:
    """(B, P, H', W') for a normalised batch: ProtoPNet's squared distances, else −similarity."""
    if isinstance(model, ProtoPNet):
        return model.distance_maps(images)
    return -model.similarity_maps(images)


def nearness_to_similarity(model: PrototypeModel, nearness: torch.Tensor) -> torch.Tensor:
    """The similarities of :func:`nearness_maps` values (any shape)."""
    if isinstance(model, ProtoPNet):
        return model.distance_to_similarity(nearness)
    return -nearness
