"""PIP-Net's loss terms (Nauta et al., 2023, §3) and their weights per phase, as data.

Two augmented views of every image pass through the model together. *Alignment*: at every
location the two views' presence vectors (softmax over prototypes) should agree, −log of their
dot product; each view is aligned to the other's detached vector. *Tanh*: every prototype should
be present somewhere in the batch, −log tanh(Σ over the batch of its pooled presence).
*Classification*: negative log-likelihood of softmax(log(1 + scores^m)), m the classifier's fixed
``normalization_multiplier``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

EPS = 1e-8
ALIGN_EPS = 1e-12
TERMS = ("loss", "align", "tanh", "class")
#: (P,) per-prototype sums of this process's batch → the sums over the global batch
BatchTotal = Callable[[torch.Tensor], torch.Tensor]


def _locations(presence: torch.Tensor) -> torch.Tensor:
    """(B, P, H, W) → (B·H·W, P): one presence vector per location."""
    return presence.flatten(2).permute(0, 2, 1).flatten(end_dim=1)


def alignment_loss(presence1: torch.Tensor, presence2: torch.Tensor) -> torch.Tensor:
    """Symmetric −mean log ⟨z₁, sg(z₂)⟩ over all locations of both views."""
    z1, z2 = _locations(presence1), _locations(presence2)

    def one_way(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return -torch.log((inputs * targets.detach()).sum(dim=1) + ALIGN_EPS).mean()

    return (one_way(z1, z2) + one_way(z2, z1)) / 2


def tanh_loss(
    pooled1: torch.Tensor, pooled2: torch.Tensor, batch_total: BatchTotal | None = None
) -> torch.Tensor:
    """−mean over prototypes of log tanh(Σ_batch pooled), averaged over the two views.

    The sum runs over the whole batch, so it is not a mean of per-image terms: under DDP
    ``batch_total`` turns this process's (P,) sums into the global batch's.
    """

    def one_view(pooled: torch.Tensor) -> torch.Tensor:
        total = pooled.sum(dim=0)
        if batch_total is not None:
            total = batch_total(total)
        return torch.log(torch.tanh(total) + EPS).mean()

    return -(one_view(pooled1) + one_view(pooled2)) / 2


def classification_loss(
    scores: torch.Tensor, labels: torch.Tensor, multiplier: torch.Tensor
) -> torch.Tensor:
    """NLL of ``log_softmax(log1p(scores ** multiplier))`` (scores are non-negative)."""
    return F.nll_loss(F.log_softmax(torch.log1p(scores ** multiplier), dim=1), labels)


@dataclass(frozen=True)
class PIPLossWeights:
    """Coefficients of one phase's loss; ``align_ramp``: the alignment weight grows linearly
    from 1/E to 1 over the E pre-training epochs (the weight then is epoch / E, 1-based)."""

    align: float
    tanh: float
    classification: float
    align_ramp: bool = False

    def align_weight(self, epoch: int, epochs: int) -> float:
        """The alignment weight in (1-based) ``epoch`` of ``epochs``."""
        return self.align * epoch / max(epochs, 1) if self.align_ramp else self.align


PHASE_LOSSES = {
    "pretrain": PIPLossWeights(align=1.0, tanh=5.0, classification=0.0, align_ramp=True),
    "finetune": PIPLossWeights(align=0.0, tanh=0.0, classification=2.0),
    "frozen": PIPLossWeights(align=5.0, tanh=2.0, classification=2.0),
    "train": PIPLossWeights(align=5.0, tanh=2.0, classification=2.0),
}


def pipnet_loss(
    presence: torch.Tensor,
    pooled: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    multiplier: torch.Tensor,
    weights: PIPLossWeights,
    align_weight: float,
    batch_total: BatchTotal | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss of a two-view batch (views stacked: first half view 1) and detached terms.

    ``labels`` are the B labels of the images; the scores of both views are classified.
    ``batch_total``: see :func:`tanh_loss` (DDP).
    """
    presence1, presence2 = presence.float().chunk(2)
    pooled1, pooled2 = pooled.float().chunk(2)
    terms = {
        "align": alignment_loss(presence1, presence2),
        "tanh": tanh_loss(pooled1, pooled2, batch_total),
        "class": classification_loss(scores.float(), labels.repeat(2), multiplier),
    }
    total = weights.classification * terms["class"]
    if align_weight or weights.tanh:
        total = total + align_weight * terms["align"] + weights.tanh * terms["tanh"]
    return total, {name: value.detach() for name, value in terms.items()}
