"""One pass over the data: a training epoch of a phase, or an evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from protoexplain.models.ppnet import ProtoPNet
from protoexplain.models.protocol import PrototypeModel
from protoexplain.progress import progress_bar
from protoexplain.training.distributed import DistContext, all_reduce_sum
from protoexplain.training.losses import LossWeights, protopnet_loss

TERMS = ("loss", "ce", "cluster", "separation", "l1")


@dataclass(frozen=True)
class Precision:
    """Mixed precision and memory format for a device."""

    bf16: bool = False
    channels_last: bool = False

    @classmethod
    def for_device(cls, device: torch.device, bf16: bool, channels_last: bool) -> Precision:
        on_cuda = device.type == "cuda"
        return cls(bf16=bf16 and on_cuda, channels_last=channels_last and on_cuda)

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def prepare(self, images: torch.Tensor, device: torch.device) -> torch.Tensor:
        images = images.to(device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images


class EpochTotals:
    """Sample-weighted sums of an epoch's loss terms, with correct predictions and samples."""

    def __init__(self, terms: tuple[str, ...]) -> None:
        self.terms = terms
        self.sums = torch.zeros(len(terms) + 2, dtype=torch.float64)

    def add(self, values: list[torch.Tensor], correct: float, size: int) -> None:
        """One batch: its mean ``values`` (one per term), correct predictions and size."""
        weighted = [float(v) * size for v in values]
        self.sums[: len(self.terms)] += torch.tensor(weighted, dtype=torch.float64)
        self.sums[-2] += correct
        self.sums[-1] += size

    @property
    def accuracy(self) -> float:
        """Accuracy so far in this process."""
        return float(self.sums[-2] / max(float(self.sums[-1]), 1.0))

    def means(self, context: DistContext) -> dict[str, float]:
        """Mean of every term and ``train_acc`` over all processes' samples."""
        sums = all_reduce_sum(self.sums, context)
        count = max(float(sums[-1]), 1.0)
        result = {name: float(sums[i]) / count for i, name in enumerate(self.terms)}
        result["train_acc"] = float(sums[-2]) / count
        return result


class DetailsForward(nn.Module):
    """``forward`` returns the fields of ``model.forward_details`` as a tuple (ProtoPNet: logits,
    min distances, distance maps; PIP-Net: presence, pooled, scores), so DDP can wrap the
    training forward of any architecture."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.forward_details(x))


def run_epoch(
    model: ProtoPNet,
    forward: nn.Module,
    batches: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    weights: LossWeights,
    context: DistContext,
    precision: Precision = Precision(),
    *,
    description: str = "train",
    max_batches: int | None = None,
) -> dict[str, float]:
    """Train one epoch; returns the mean loss terms and accuracy over all processes' samples."""
    totals = EpochTotals(TERMS)
    bar = progress_bar(batches, desc=description, leave=False, disable=not context.is_main)
    for number, batch in enumerate(bar):
        if max_batches is not None and number >= max_batches:
            break
        images = precision.prepare(batch[0], context.device)
        labels = batch[1].to(context.device)
        with precision.autocast(context.device):
            logits, min_distances = forward(images)[:2]
        loss, terms = protopnet_loss(
            logits, min_distances, labels, model.prototype_class, model.last_layer.weight, weights
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        values = [loss.detach(), *terms.values()]
        totals.add(values, float((logits.argmax(dim=1) == labels).sum()), labels.shape[0])
        bar.set_postfix(
            {name: f"{float(v):.3g}" for name, v in zip(TERMS, values, strict=True)}
            | {"acc": f"{totals.accuracy:.3f}"}
        )
    return totals.means(context)


@torch.inference_mode()
def evaluate(
    model: PrototypeModel,
    batches: Iterable[Any],
    context: DistContext,
    precision: Precision = Precision(),
    *,
    description: str = "evaluate",
    max_batches: int | None = None,
) -> float:
    """Accuracy over all processes' samples (``nan`` for no samples); the model is not changed."""
    was_training = model.training
    model.eval()
    counts = torch.zeros(2, dtype=torch.float64)
    for number, batch in enumerate(
        progress_bar(batches, desc=description, leave=False, disable=not context.is_main)
    ):
        if max_batches is not None and number >= max_batches:
            break
        images = precision.prepare(batch[0], context.device)
        with precision.autocast(context.device):
            logits = model(images)
        counts[0] += float((logits.argmax(dim=1).cpu() == batch[1]).sum())
        counts[1] += batch[1].shape[0]
    counts = all_reduce_sum(counts, context)
    model.train(was_training)
    return float(counts[0] / counts[1]) if counts[1] > 0 else float("nan")
