"""Typed training configuration: dataclasses loaded from TOML, every default from method §3.

Unknown keys and wrongly typed values are errors naming the key and the file. Relative data paths
are resolved against the config file's folder. :func:`dump_config` writes a commented TOML file
(used for ``protoexplain config --print-default`` and the run folder's ``config.toml``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protoexplain.errors import UserError
from protoexplain.tomlconfig import dump_toml, from_dict, read_toml, setting


@dataclass
class DataConfig:
    """Where the images are and how training images are augmented."""

    train: str = setting(
        "", "training images, ImageFolder layout root/<class>/<image> (cropped CUB)")
    test: str = setting("", "test images (reported every epoch, never used to select checkpoints)")
    push: str = setting(
        "", "push images (un-augmented); empty = the training images minus validation")
    train_augmented: str = setting("", "offline-augmented training folder (augmentation = offline)")
    augmentation: str = setting("online", "none | online (original pipelines on the fly) | offline")
    validation_fraction: float = setting(0.1, "share of training images held out to select 'best/'")
    workers: int = setting(0, "data-loader worker processes")


@dataclass
class ModelConfig:
    """The architecture: ProtoPNet (method §2) or PIP-Net (docs/pipnet.md)."""

    architecture: str = setting("protopnet", "protopnet | pipnet (then see [pipnet])")
    backbone: str = setting("resnet34", "trunk: vgg*, resnet*, densenet*, small_cnn; PIP-Net: "
                       "resnet18, resnet50, convnext_tiny_26, convnext_tiny_13, small_cnn")
    weights: str = setting("imagenet", "imagenet (torch cache), none, or a local weight file")
    image_size: int = setting(224, "input size in pixels (plain square resize)")
    prototypes_per_class: int = setting(10, "prototypes per class (P = this × classes)")
    prototype_depth: int = setting(128, "prototype depth D")
    add_on: str = setting("bottleneck", "add-on layers: bottleneck (original) | regular")
    activation: str = setting("log", "similarity: log = log((d+1)/(d+eps)) | linear = -d")
    epsilon: float = setting(1e-4, "epsilon of the log similarity")
    num_prototypes: int = setting(0, "PIP-Net prototypes; 0 = one per trunk channel (published)")


@dataclass
class BatchConfig:
    """Global batch sizes (split evenly over processes under torchrun)."""

    train: int = setting(80, "training batch size")
    test: int = setting(100, "evaluation batch size")
    push: int = setting(75, "push batch size")


@dataclass
class LossConfig:
    """Coefficients of loss = ce·CE + cluster·Clst + separation·Sep + l1·L1(wrong class)."""

    cross_entropy: float = setting(1.0, "cross-entropy")
    cluster: float = setting(0.8, "cluster cost (min distance to an own-class prototype)")
    separation: float = setting(
        -0.08, "separation cost (min distance to another class's prototype)")
    l1: float = setting(1e-4, "L1 of the last layer's wrong-class connections")


@dataclass
class ScheduleConfig:
    """How many epochs of which phase, and when to push (method §3)."""

    epochs: int = setting(31, "training epochs (warm-up + joint), counted from 0")
    warm_epochs: int = setting(5, "first epochs train only add-on layers and prototypes")
    push_start: int = setting(10, "first push after this epoch")
    push_every: int = setting(10, "then push every this many epochs")
    push_at_end: bool = setting(True, "also push after the last epoch when it is not a push epoch")
    last_layer_epochs: int = setting(20, "last-layer epochs after each push (not for linear)")
    push_images: str = setting("every", "prototype PNGs at every push | last (records only "
                               "before the last push: faster)")


@dataclass
class WarmConfig:
    """Warm-up optimiser (Adam): trunk frozen."""

    add_on_lr: float = setting(3e-3, "add-on learning rate")
    add_on_weight_decay: float = setting(1e-3, "add-on weight decay")
    prototypes_lr: float = setting(3e-3, "prototype learning rate")


@dataclass
class JointConfig:
    """Joint optimiser (Adam) and its StepLR, stepped before each joint epoch as the original."""

    features_lr: float = setting(1e-4, "trunk learning rate")
    features_weight_decay: float = setting(1e-3, "trunk weight decay")
    add_on_lr: float = setting(3e-3, "add-on learning rate")
    add_on_weight_decay: float = setting(1e-3, "add-on weight decay")
    prototypes_lr: float = setting(3e-3, "prototype learning rate")
    lr_step: int = setting(5, "StepLR step size (decays land at epochs 9, 14, 19, … by default)")
    lr_gamma: float = setting(0.1, "StepLR factor")


@dataclass
class LastLayerConfig:
    """Last-layer optimiser (Adam)."""

    lr: float = setting(1e-4, "last-layer learning rate")


@dataclass
class PIPNetConfig:
    """PIP-Net's phases (published CUB settings): pre-training, then training."""

    pretrain_epochs: int = setting(
        10, "pre-training epochs (alignment + tanh losses, no classifier)")
    epochs: int = setting(60, "training epochs after pre-training")
    finetune_epochs: int = setting(3, "first training epochs: only the classifier trains")
    freeze_epochs: int = setting(10, "training epochs (from the first) with the trunk frozen")
    pretrain_batch: int = setting(128, "pre-training batch size (two views of each image)")
    trunk_lr: float = setting(5e-4, "trunk learning rate")
    add_on_lr: float = setting(5e-3, "add-on learning rate (ten times the trunk's, as published)")
    classifier_lr: float = setting(0.05, "classifier learning rate")
    weight_decay: float = setting(0.0, "weight decay of trunk and add-on")


@dataclass
class DeviceConfig:
    """Where and how to compute (the --device option overrides ``name``)."""

    name: str = setting("auto", "auto | cpu | cuda | cuda:N")
    bf16: bool = setting(True, "bf16 autocast for training steps on CUDA (ignored on CPU)")
    channels_last: bool = setting(True, "channels-last memory format on CUDA (ignored on CPU)")


@dataclass
class RunConfig:
    """A whole training run."""

    seed: int = setting(0, "seed of initialisation, shuffling, augmentation and validation split")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    warm: WarmConfig = field(default_factory=WarmConfig)
    joint: JointConfig = field(default_factory=JointConfig)
    last_layer: LastLayerConfig = field(default_factory=LastLayerConfig)
    pipnet: PIPNetConfig = field(default_factory=PIPNetConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)

    def to_dict(self) -> dict[str, Any]:
        """A plain dictionary (JSON / TOML ready)."""
        return dataclasses.asdict(self)


_CHOICES = {
    ("model", "architecture"): ("protopnet", "pipnet"),
    ("data", "augmentation"): ("none", "online", "offline"),
    ("model", "add_on"): ("bottleneck", "regular"),
    ("model", "activation"): ("log", "linear"),
    ("schedule", "push_images"): ("every", "last"),
}


def validate(config: RunConfig, source: str = "config") -> RunConfig:
    """Check value ranges and choices; raise :class:`UserError` naming the key."""
    for (section, key), choices in _CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in choices:
            raise UserError(f"{source}: {section}.{key} = {value!r}; use one of {choices}")
    positive = {
        "batch.train": config.batch.train,
        "batch.test": config.batch.test,
        "batch.push": config.batch.push,
        "model.image_size": config.model.image_size,
        "model.prototypes_per_class": config.model.prototypes_per_class,
        "model.prototype_depth": config.model.prototype_depth,
        "schedule.push_every": config.schedule.push_every,
        "joint.lr_step": config.joint.lr_step,
        "pipnet.pretrain_batch": config.pipnet.pretrain_batch,
    }
    for key, value in positive.items():
        if value < 1:
            raise UserError(f"{source}: {key} must be at least 1, got {value}")
    for section in ("warm", "joint", "last_layer", "pipnet"):
        for name, value in dataclasses.asdict(getattr(config, section)).items():
            if name == "lr_gamma" and (not math.isfinite(value) or value <= 0):
                raise UserError(f"{source}: {section}.{name} must be a positive number, "
                                f"got {value}")
            if (name.endswith("lr") or name.endswith("weight_decay")) \
                    and (not math.isfinite(value) or value < 0):
                raise UserError(f"{source}: {section}.{name} must be 0 or more (0 freezes the "
                                f"part), got {value}")
    if not math.isfinite(config.model.epsilon) or config.model.epsilon <= 0:
        raise UserError(f"{source}: model.epsilon must be a positive number, "
                        f"got {config.model.epsilon}")
    pip = config.pipnet
    if min(pip.pretrain_epochs, pip.epochs, pip.finetune_epochs, pip.freeze_epochs,
           config.model.num_prototypes) < 0:
        raise UserError(f"{source}: pipnet epochs and model.num_prototypes must not be negative")
    if config.data.workers < 0:
        raise UserError(f"{source}: data.workers must be 0 or more, got {config.data.workers}")
    if not 0 <= config.data.validation_fraction < 1:
        raise UserError(f"{source}: data.validation_fraction must be in [0, 1)")
    schedule = config.schedule
    if min(schedule.epochs, schedule.warm_epochs, schedule.last_layer_epochs) < 0:
        raise UserError(f"{source}: schedule epochs must not be negative")
    if config.data.augmentation == "offline" and not config.data.train_augmented:
        raise UserError(f"{source}: augmentation = 'offline' needs data.train_augmented")
    return config


def config_from_dict(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Build and validate a :class:`RunConfig` from a (TOML-shaped) dictionary."""
    return validate(from_dict(RunConfig, data, source), source)


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a TOML config; relative data paths are taken relative to the config file."""
    path = Path(path)
    data = read_toml(path, hint="write one with 'protoexplain config'")
    config = config_from_dict(data, str(path))
    return resolve_paths(config, path.parent)


def resolve_paths(config: RunConfig, base: str | os.PathLike) -> RunConfig:
    """Make the non-empty data paths absolute, relative to ``base``."""
    for name in ("train", "test", "push", "train_augmented"):
        value = getattr(config.data, name)
        if value:
            setattr(config.data, name, str((Path(base) / value).resolve()))
    if config.model.weights not in ("imagenet", "none", "") and not os.path.isabs(
        config.model.weights
    ):
        candidate = Path(base) / config.model.weights
        if candidate.exists():
            config.model.weights = str(candidate.resolve())
    return config


def dump_config(config: RunConfig, header: str = "") -> str:
    """TOML text of ``config`` with one comment per key (readable back by :func:`load_config`)."""
    return dump_toml(config, header)


def default_config_text() -> str:
    """A commented TOML config with every default (method §3); fill in the data paths."""
    header = (
        "protoexplain training config (defaults = the original ProtoPNet settings).\n"
        "Fill in data.train and data.test, then run: protoexplain train THIS_FILE"
    )
    return dump_config(RunConfig(), header)
