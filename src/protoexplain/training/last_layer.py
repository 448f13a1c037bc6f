"""Stand-alone last-layer optimisation (after push, and after pruning)."""

from __future__ import annotations

import torch

from protoexplain.data import ImageFolderDataset
from protoexplain.models.ppnet import ProtoPNet
from protoexplain.training.datasets import train_loader
from protoexplain.training.distributed import DistContext
from protoexplain.training.epoch import DetailsForward, run_epoch
from protoexplain.training.losses import LossWeights
from protoexplain.training.phases import last_layer_phase, make_optimizer, set_trainable


def train_last_layer(
    model: ProtoPNet,
    dataset: ImageFolderDataset,
    *,
    epochs: int,
    lr: float = 1e-4,
    batch_size: int = 80,
    device: str | torch.device = "cpu",
    seed: int = 0,
    workers: int = 0,
    l1: float = 1e-4,
) -> list[dict[str, float]]:
    """Train only the last layer (CE + ``l1``·wrong-class L1, Adam) for ``epochs`` epochs.

    Everything before the last layer stays fixed, batch-norm statistics included. ``dataset``
    yields normalised training images. Returns the per-epoch loss terms and accuracy.
    """
    device = torch.device(device)
    model.to(device)
    context = DistContext(device=device)
    phase = last_layer_phase(lr)
    set_trainable(model, phase)
    model.eval()
    optimizer = make_optimizer(model, phase)
    batches = train_loader(dataset, batch_size, workers, seed, context)
    weights = LossWeights(l1=l1)
    history = []
    for epoch in range(epochs):
        batches.sampler.set_epoch(epoch)
        history.append(
            run_epoch(
                model, DetailsForward(model), batches, optimizer, weights, context,
                description=f"last layer {epoch + 1}/{epochs}",
            )
        )
    return history
