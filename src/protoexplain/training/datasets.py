"""The data of a run: training / validation split, test and push sets, and their loaders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from protoexplain.data import ImageFolderDataset, eval_transform, make_loader, train_transform
from protoexplain.errors import UserError
from protoexplain.training.config import RunConfig
from protoexplain.training.distributed import DistContext, ShardSampler, per_rank_batch


@dataclass
class RunData:
    """Datasets of a run; ``push_indices`` are the push images within ``push``."""

    train: torch.utils.data.Dataset
    validation_indices: list[int]
    train_eval: ImageFolderDataset
    test: ImageFolderDataset
    push: ImageFolderDataset
    push_indices: list[int]
    classes: list[str]


def validation_split(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified (train, validation) indices: ``round(fraction·n)`` per class, seeded."""
    generator = torch.Generator().manual_seed(seed)
    train, validation = [], []
    for label in sorted(set(labels)):
        members = [i for i, value in enumerate(labels) if value == label]
        order = torch.randperm(len(members), generator=generator).tolist()
        count = round(fraction * len(members))
        validation += [members[i] for i in order[:count]]
        train += [members[i] for i in order[count:]]
    return sorted(train), sorted(validation)


def _require(path: str, key: str) -> str:
    if not path:
        raise UserError(f"the config sets no data.{key}; give the image folder path")
    return path


def _refuse_empty_classes(dataset: ImageFolderDataset) -> None:
    """A class folder without images would give the model a class it can never learn."""
    counts = Counter(dataset.targets)
    empty = [name for index, name in enumerate(dataset.classes) if counts[index] == 0]
    if empty:
        raise UserError(
            f"training folder {dataset.root} has {len(empty)} class folders without images "
            f"({', '.join(repr(name) for name in empty[:5])}); the model could never learn them: "
            "add images or remove those folders"
        )


def build_run_data(config: RunConfig) -> RunData:
    """Open the folders named in the config and split off the validation images."""
    data, model = config.data, config.model
    evaluate = eval_transform(model.image_size)
    train_eval = ImageFolderDataset(_require(data.train, "train"), evaluate)
    classes = train_eval.classes
    _refuse_empty_classes(train_eval)
    test = ImageFolderDataset(_require(data.test, "test"), evaluate, classes=classes)
    if data.augmentation == "offline":
        if data.validation_fraction > 0:
            raise UserError(
                "offline augmentation copies every training image, so no validation images can "
                "be held out: set data.validation_fraction = 0 or use augmentation = 'online'"
            )
        train = ImageFolderDataset(
            data.train_augmented, train_transform(model.image_size, augment=False), classes=classes
        )
        train_indices, validation = list(range(len(train))), []
    else:
        transform = train_transform(model.image_size, augment=data.augmentation == "online")
        full = ImageFolderDataset(data.train, transform, classes=classes)
        train_indices, validation = validation_split(
            full.targets, data.validation_fraction, config.seed
        )
        train = Subset(full, train_indices) if validation else full
    if data.push:
        push = ImageFolderDataset(data.push, evaluate, classes=classes)
        push_indices = list(range(len(push)))
    else:
        push = train_eval
        push_indices = sorted(set(range(len(train_eval))) - set(validation))
    return RunData(train, validation, train_eval, test, push, push_indices, classes)


def train_loader(
    dataset: Dataset, batch_size: int, workers: int, seed: int, context: DistContext
) -> DataLoader:
    """Shuffled loader over this process's share; call ``sampler.set_epoch`` before each pass.

    The permutation depends only on (seed, epoch), so the union of the processes' batches
    equals the single-process batch of the same global size.
    """
    sampler = DistributedSampler(
        dataset, num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=seed
    )
    local = per_rank_batch(batch_size, context, "train")
    return make_loader(dataset, batch_size=local, sampler=sampler, workers=workers)


def eval_loader(
    dataset: Dataset, indices: Sequence[int], batch_size: int, workers: int, context: DistContext
) -> DataLoader:
    """Loader over this process's shard of ``indices`` (no padding, so no double counting)."""
    local = -(-batch_size // context.world_size)
    sampler = ShardSampler(indices, context)
    return make_loader(dataset, batch_size=local, sampler=sampler, workers=workers)
