"""Training phases as data: which parameter groups train with which optimiser settings, and when.

The run is a flat list of :class:`Step` s (``warm``/``joint`` epochs, ``push``, ``last_layer``
epochs) computed from the config, so a run can resume after any completed step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from protoexplain.training.config import JointConfig, RunConfig, ScheduleConfig

PARAMETER_GROUPS = ("features", "add_on_layers", "prototype_vectors", "last_layer")
GroupParameters = Callable[[nn.Module, str], list[nn.Parameter]]


@dataclass(frozen=True)
class GroupSettings:
    """One optimiser parameter group: a model part with its learning rate and weight decay."""

    name: str
    lr: float
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Phase:
    """A training phase: the parameter groups it trains (everything else is frozen).

    ``batch_norm_updates``: whether the model runs in train mode (batch-norm statistics move).
    The last-layer phase keeps them fixed, so pushed prototypes stay exact training patches.
    """

    name: str
    groups: tuple[GroupSettings, ...]
    batch_norm_updates: bool = True

    @property
    def trainable(self) -> tuple[str, ...]:
        return tuple(group.name for group in self.groups)


@dataclass(frozen=True)
class Step:
    """One resumable unit of the run."""

    kind: str  # warm | joint | push | last_layer
    epoch: int
    iteration: int = 0

    @property
    def label(self) -> str:
        if self.kind == "last_layer":
            return f"epoch {self.epoch} last layer {self.iteration + 1}"
        return f"epoch {self.epoch} {self.kind}"


def build_phases(config: RunConfig) -> dict[str, Phase]:
    """The three phases of method §3 with the configured learning rates and weight decays."""
    warm, joint = config.warm, config.joint
    return {
        "warm": Phase(
            "warm",
            (
                GroupSettings("add_on_layers", warm.add_on_lr, warm.add_on_weight_decay),
                GroupSettings("prototype_vectors", warm.prototypes_lr),
            ),
        ),
        "joint": Phase(
            "joint",
            (
                GroupSettings("features", joint.features_lr, joint.features_weight_decay),
                GroupSettings("add_on_layers", joint.add_on_lr, joint.add_on_weight_decay),
                GroupSettings("prototype_vectors", joint.prototypes_lr),
            ),
        ),
        "last_layer": last_layer_phase(config.last_layer.lr),
    }


def last_layer_phase(lr: float = 1e-4) -> Phase:
    """Only the last layer trains; everything before it is fixed, batch norm included."""
    return Phase("last_layer", (GroupSettings("last_layer", lr),), batch_norm_updates=False)


def group_parameters(model: nn.Module, name: str) -> list[nn.Parameter]:
    """The parameters of one named model part."""
    part = getattr(model, name)
    return [part] if isinstance(part, nn.Parameter) else list(part.parameters())


def set_trainable(
    model: nn.Module,
    phase: Phase,
    names: Sequence[str] = PARAMETER_GROUPS,
    parameters: GroupParameters = group_parameters,
) -> None:
    """Let exactly the phase's parameter groups (of the architecture's ``names``) get gradients."""
    for name in names:
        for parameter in parameters(model, name):
            parameter.requires_grad_(name in phase.trainable)


def make_optimizer(
    model: nn.Module, phase: Phase, parameters: GroupParameters = group_parameters
) -> torch.optim.Adam:
    """Adam over the phase's parameter groups (one optimiser group per model part)."""
    groups = [
        {
            "params": parameters(model, group.name),
            "lr": group.lr,
            "weight_decay": group.weight_decay,
        }
        for group in phase.groups
        if parameters(model, group.name)  # a part without parameters (PIP-Net's bare add-on)
    ]
    return torch.optim.Adam(groups)


def make_joint_scheduler(
    optimizer: torch.optim.Optimizer, joint: JointConfig
) -> torch.optim.lr_scheduler.StepLR:
    """The joint phase's StepLR (step size ``joint.lr_step``, factor ``joint.lr_gamma``)."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=joint.lr_step,
                                           gamma=joint.lr_gamma)


def push_epochs(schedule: ScheduleConfig) -> list[int]:
    """Epochs after which the prototypes are pushed."""
    epochs = [
        epoch
        for epoch in range(schedule.push_start, schedule.epochs)
        if (epoch - schedule.push_start) % schedule.push_every == 0
    ]
    if schedule.push_at_end and schedule.epochs > 0 and schedule.epochs - 1 not in epochs:
        epochs.append(schedule.epochs - 1)
    return epochs


def build_schedule(schedule: ScheduleConfig, activation: str = "log") -> list[Step]:
    """Every step of the run in order (the original ``main.py`` loop, flattened)."""
    pushes = set(push_epochs(schedule))
    steps: list[Step] = []
    for epoch in range(schedule.epochs):
        steps.append(Step("warm" if epoch < schedule.warm_epochs else "joint", epoch))
        if epoch in pushes:
            steps.append(Step("push", epoch))
            if activation != "linear":
                steps += [
                    Step("last_layer", epoch, i) for i in range(schedule.last_layer_epochs)
                ]
    return steps

