"""PIP-Net training: pre-training, then training (classifier only → trunk frozen → everything).

Phases and their losses are data (:func:`pipnet_phases`, ``PHASE_LOSSES``); the run is a flat
list of epoch steps (:func:`pipnet_schedule`) executed, evaluated and checkpointed after every
step by the same loop as ProtoPNet's (:class:`~protoexplain.training.loop.Trainer`), so a run
resumes after any completed epoch. Every training image is seen as two augmented views.
Under torchrun it trains like ProtoPNet: DDP over sharded batches, global-batch batch norm, and
the tanh loss summed over the global batch (:func:`~.distributed.differentiable_sum`).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from protoexplain.models.pipnet import PIPNet, PIPNetSpec
from protoexplain.progress import progress_bar
from protoexplain.training.config import PIPNetConfig, RunConfig
from protoexplain.training.datasets import RunData, train_loader
from protoexplain.training.distributed import DistContext, differentiable_sum
from protoexplain.training.epoch import EpochTotals, Precision
from protoexplain.training.loop import Trainer, seed_everything
from protoexplain.training.phases import (
    GroupSettings,
    Phase,
    Step,
    make_optimizer,
    set_trainable,
)
from protoexplain.training.pipnet_losses import PHASE_LOSSES, TERMS, pipnet_loss
from protoexplain.training.runlog import RunLog

PIPNET_GROUPS = ("features", "add_on", "classification")
METRIC_COLUMNS = ("step", "epoch", "phase", "iteration", "lr", *TERMS, "train_acc", "val_acc",
                  "test_acc", "seconds")
WEIGHT_SHRINK = 1e-3  # subtracted from the classifier weights after every training step


def pipnet_parameters(model: nn.Module, name: str) -> list[nn.Parameter]:
    """The trainable parameters of one PIP-Net part; the classifier's exponent stays fixed."""
    if name == "classification":
        layer = model.classification
        return [layer.weight] + ([layer.bias] if layer.bias is not None else [])
    return list(getattr(model, name).parameters())


def pipnet_phases(config: PIPNetConfig) -> dict[str, Phase]:
    """Which parts train in each phase, with which learning rate (Adam)."""
    trunk = GroupSettings("features", config.trunk_lr, config.weight_decay)
    add_on = GroupSettings("add_on", config.add_on_lr, config.weight_decay)
    classifier = GroupSettings("classification", config.classifier_lr)
    return {
        "pretrain": Phase("pretrain", (trunk, add_on)),
        "finetune": Phase("finetune", (classifier,)),
        "frozen": Phase("frozen", (add_on, classifier)),
        "train": Phase("train", (trunk, add_on, classifier)),
    }


def pipnet_schedule(config: PIPNetConfig) -> list[Step]:
    """Pre-training epochs 1…E₀, then training epochs 1…E: the first ``finetune_epochs`` (only
    after pre-training) train the classifier alone, those up to ``freeze_epochs`` keep the trunk
    frozen, the rest train everything."""
    steps = [Step("pretrain", epoch) for epoch in range(1, config.pretrain_epochs + 1)]
    finetune = config.finetune_epochs if config.pretrain_epochs > 0 else 0
    for epoch in range(1, config.epochs + 1):
        kind = "finetune" if epoch <= finetune else "frozen" if epoch <= config.freeze_epochs \
            else "train"
        steps.append(Step(kind, epoch))
    return steps


def build_pipnet(config: RunConfig, classes: list[str]) -> PIPNet:
    """A fresh PIP-Net for the config and the training classes."""
    m = config.model
    spec = PIPNetSpec(m.backbone, len(classes), list(classes), num_prototypes=m.num_prototypes,
                      image_size=m.image_size)
    return PIPNet(spec, backbone_weights=None if m.weights in ("", "none") else m.weights)


class TwoViews(Dataset):
    """Each item twice through the (random) training transform: ``((2, 3, H, W), label, i)``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.samples = getattr(dataset, "samples", None)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        first, label, item = self.dataset[index]
        second = self.dataset[index][0]
        return torch.stack([first, second]), label, item


def run_pipnet_epoch(
    model: PIPNet,
    forward: nn.Module,
    batches: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    step: Step,
    pretrain_epochs: int,
    context: DistContext,
    precision: Precision,
    *,
    max_batches: int | None = None,
) -> dict[str, float]:
    """Train one epoch of ``step``'s phase on two-view batches; mean loss terms and accuracy.

    ``forward`` is :class:`~.epoch.DetailsForward` of ``model``, DDP-wrapped under torchrun.
    """
    weights = PHASE_LOSSES[step.kind]
    align = weights.align_weight(step.epoch, pretrain_epochs)
    batch_total = partial(differentiable_sum, context=context)  # identity in one process
    totals = EpochTotals(TERMS)
    bar = progress_bar(batches, desc=step.label, leave=False, disable=not context.is_main)
    for number, batch in enumerate(bar):
        if max_batches is not None and number >= max_batches:
            break
        views = batch[0]
        images = precision.prepare(torch.cat([views[:, 0], views[:, 1]]), context.device)
        labels = batch[1].to(context.device)
        with precision.autocast(context.device):
            presence, pooled, scores = forward(images)
        loss, terms = pipnet_loss(
            presence, pooled, scores, labels, model.classification.normalization_multiplier,
            weights, align, batch_total,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step.kind != "pretrain":
            _shrink_classifier(model)
        correct = float((scores.argmax(dim=1) == labels.repeat(2)).sum())
        totals.add([loss.detach(), *terms.values()], correct, 2 * labels.shape[0])
        bar.set_postfix({"loss": f"{float(loss.detach()):.3g}", "acc": f"{totals.accuracy:.3f}"})
    return totals.means(context)


@torch.no_grad()
def _shrink_classifier(model: PIPNet) -> None:
    """Published sparsity step: weights −1e-3, clamped at 0; bias clamped at 0."""
    layer = model.classification
    layer.weight.copy_(torch.clamp(layer.weight - WEIGHT_SHRINK, min=0.0))
    if layer.bias is not None:
        layer.bias.copy_(torch.clamp(layer.bias, min=0.0))


def dry_run_steps() -> list[Step]:
    """One step of every phase."""
    return [Step("pretrain", 1), Step("finetune", 1), Step("frozen", 2), Step("train", 3)]


class PIPNetTrainer(Trainer):
    """A PIP-Net run; stepping, evaluation, checkpoints and resume are :class:`Trainer`'s."""

    def __init__(
        self, config: RunConfig, data: RunData, out_dir: Path, context: DistContext,
        dry_run: bool,
    ) -> None:
        self._start(config, data, out_dir, context, dry_run)
        seed_everything(config.seed)
        self.model: PIPNet = self._placed(build_pipnet(config, self.data.classes))
        self.phases = pipnet_phases(config.pipnet)
        self.optimizers = {
            name: make_optimizer(self.model, phase, pipnet_parameters)
            for name, phase in self.phases.items()
        }
        self.scheduler = None
        self.steps = dry_run_steps() if dry_run else pipnet_schedule(config.pipnet)
        views = TwoViews(self.data.train)
        workers, seed = config.data.workers, config.seed
        self.loaders = {
            "pretrain": train_loader(views, config.pipnet.pretrain_batch, workers, seed, context),
            "train": train_loader(views, config.batch.train, workers, seed, context),
        }
        self.log = RunLog(out_dir, context.is_main, METRIC_COLUMNS)

    def _train_step(self, index: int, step: Step) -> dict[str, Any]:
        phase = self.phases[step.kind]
        set_trainable(self.model, phase, PIPNET_GROUPS, pipnet_parameters)
        self.model.train()
        loader = self.loaders["pretrain" if step.kind == "pretrain" else "train"]
        loader.sampler.set_epoch(index)
        optimizer = self.optimizers[step.kind]
        stats = run_pipnet_epoch(
            self.model, self._training_forward(phase), loader, optimizer, step,
            self.config.pipnet.pretrain_epochs, self.context, self.precision,
            max_batches=self.max_batches,
        )
        return {**stats, "lr": optimizer.param_groups[0]["lr"]}
