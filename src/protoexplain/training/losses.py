"""ProtoPNet loss terms (method §3), computed with class masks (not the original max-dist trick)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def own_class_mask(labels: torch.Tensor, prototype_class: torch.Tensor) -> torch.Tensor:
    """(B, P) boolean mask: prototype j belongs to the true class of sample i."""
    return labels.view(-1, 1) == prototype_class.view(1, -1)


def _masked_min(min_distances: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    inf = torch.full_like(min_distances, float("inf"))
    return torch.where(mask, min_distances, inf).amin(dim=1)


def cluster_cost(
    min_distances: torch.Tensor, labels: torch.Tensor, prototype_class: torch.Tensor
) -> torch.Tensor:
    """Mean over the batch of the smallest distance to a prototype of the true class."""
    return _masked_min(min_distances, own_class_mask(labels, prototype_class)).mean()


def separation_cost(
    min_distances: torch.Tensor, labels: torch.Tensor, prototype_class: torch.Tensor
) -> torch.Tensor:
    """Mean over the batch of the smallest distance to a prototype of any other class."""
    return _masked_min(min_distances, ~own_class_mask(labels, prototype_class)).mean()


def wrong_class_l1(last_layer_weight: torch.Tensor, prototype_class: torch.Tensor) -> torch.Tensor:
    """Sum of |w| over last-layer connections from a prototype to a class not its own."""
    num_classes = last_layer_weight.shape[0]
    identity = F.one_hot(prototype_class, num_classes).T.to(last_layer_weight.dtype)
    return (last_layer_weight * (1 - identity)).abs().sum()


@dataclass(frozen=True)
class LossWeights:
    """Coefficients of the total loss (defaults: method §3)."""

    cross_entropy: float = 1.0
    cluster: float = 0.8
    separation: float = -0.08
    l1: float = 1e-4


def protopnet_loss(
    logits: torch.Tensor,
    min_distances: torch.Tensor,
    labels: torch.Tensor,
    prototype_class: torch.Tensor,
    last_layer_weight: torch.Tensor,
    weights: LossWeights,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its detached terms ``ce``, ``cluster``, ``separation``, ``l1``."""
    min_distances = min_distances.float()
    terms = {
        "ce": F.cross_entropy(logits.float(), labels),
        "cluster": cluster_cost(min_distances, labels, prototype_class),
        "separation": separation_cost(min_distances, labels, prototype_class),
        "l1": wrong_class_l1(last_layer_weight, prototype_class),
    }
    total = (
        weights.cross_entropy * terms["ce"]
        + weights.cluster * terms["cluster"]
        + weights.separation * terms["separation"]
        + weights.l1 * terms["l1"]
    )
    return total, {name: value.detach() for name, value in terms.items()}
