"""Data loaders that report unreadable images in the main process, never inside a worker.

Workers return a :class:`LoadFailure` marker instead of raising; the main process then stops with a
one-line :class:`UserError` naming the file (policy ``error``) or warns once per file, counts it in
``loader.skipped`` and leaves it out of the batch (policy ``skip``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from protoexplain.data.folder import check_on_error
from protoexplain.errors import UserError


class Batch(NamedTuple):
    """One batch: ``images`` (B, 3, H, W) tensor (or a list without a tensor transform),
    ``labels`` (B,) long tensor, ``indices`` (B,) long tensor of dataset indices."""

    images: Any
    labels: torch.Tensor
    indices: torch.Tensor


@dataclass(frozen=True)
class LoadFailure:
    """Marker returned by a worker for a sample that could not be read."""

    index: int
    path: str
    message: str


class _SafeDataset(Dataset):
    """Wrap a dataset so that a :class:`UserError` becomes a :class:`LoadFailure` marker."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except UserError as error:
            samples = getattr(self.dataset, "samples", None)
            path = str(samples[index][0]) if samples is not None else f"sample {index}"
            return LoadFailure(index, path, str(error))


def _collate(items: Sequence[Any]) -> tuple[Batch | None, list[LoadFailure]]:
    failures = [item for item in items if isinstance(item, LoadFailure)]
    good = [item for item in items if not isinstance(item, LoadFailure)]
    if not good:
        return None, failures
    images = [item[0] for item in good]
    stacked = torch.stack(images) if all(isinstance(i, torch.Tensor) for i in images) else images
    labels = default_collate([item[1] for item in good])
    indices = torch.as_tensor([item[2] for item in good], dtype=torch.long)
    return Batch(stacked, torch.as_tensor(labels, dtype=torch.long), indices), failures


class SafeLoader:
    """Iterable of :class:`Batch` over a dataset; see the module docstring for unreadable images.

    ``skipped`` lists the paths of skipped images (each once), ``dataset``, ``sampler`` and
    ``batch_size`` are those of the wrapped loader.
    """

    def __init__(self, dataset: Dataset, loader: DataLoader, on_error: str) -> None:
        self.dataset = dataset
        self.loader = loader
        self.on_error = check_on_error(on_error)
        self.skipped: list[str] = []

    @property
    def sampler(self) -> Sampler | Any:
        return self.loader.sampler

    @property
    def batch_size(self) -> int | None:
        return self.loader.batch_size

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for batch, failures in self.loader:
            for failure in failures:
                self._report(failure)
            if batch is not None:
                yield batch

    def _report(self, failure: LoadFailure) -> None:
        if self.on_error == "error":
            raise UserError(
                f"{failure.message} (explain, modify, prepare-cub and augment can also leave such "
                "files out with --on-error skip)"
            )
        if failure.path not in self.skipped:
            self.skipped.append(failure.path)
            warnings.warn(f"skipping unreadable image: {failure.message}", stacklevel=3)


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool = False,
    workers: int = 0,
    sampler: Sampler | None = None,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    pin_memory: bool = False,
    on_error: str | None = None,
) -> SafeLoader:
    """Build a :class:`SafeLoader` over ``dataset`` (items ``(image, label, index)``).

    ``on_error`` defaults to ``dataset.on_error`` (``error`` when the dataset has none). Works with
    ``workers > 0`` and with any sampler, e.g. ``DistributedSampler``.
    """
    policy = on_error if on_error is not None else getattr(dataset, "on_error", "error")
    loader = DataLoader(
        _SafeDataset(dataset),
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        collate_fn=_collate,
        generator=generator,
        drop_last=drop_last,
        pin_memory=pin_memory,
    )
    return SafeLoader(dataset, loader, policy)
