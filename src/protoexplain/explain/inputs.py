"""Model inputs for the engine: each image with all its modified versions, or the original only.

``faithful``: the modifications run inside DataLoader workers at the image's native resolution
(the paper's order) or, with ``modify_at = "model"``, on the image resized to the model's input
size first; then every version is resized and normalised with the evaluation transform.
``fast``: only the original is loaded; :func:`modify_on_device` derives the versions from the
resized batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import Dataset

from protoexplain.choices import MODIFY_AT
from protoexplain.explain.modifications import ModificationSetting


def image_versions(
    image: Image.Image, settings: Sequence[ModificationSetting]
) -> list[Image.Image]:
    """The original followed by one modified copy per setting (all RGB, native resolution)."""
    modified = [setting.apply(image) for setting in settings]
    return [image, *(m if m.mode == "RGB" else m.convert("RGB") for m in modified)]


def modification_input(modify_at: str, image_size: int) -> Callable[[Image.Image], Image.Image]:
    """What the modifications receive: the image as loaded (``native``) or resized to the model's
    input size with the evaluation transform's own resize (``model``)."""
    if modify_at == "native":
        return lambda image: image
    if modify_at == "model":
        return T.Resize((image_size, image_size))
    raise ValueError(f"modify_at must be one of {MODIFY_AT}, got {modify_at!r}")


class VersionedImages(Dataset):
    """Items ``(versions (1 + K, 3, H, W), label, index)`` of an image dataset.

    ``settings`` empty gives ``(1, 3, H, W)`` (the fast mode's input). ``prepare`` maps each loaded
    image before it is modified (see :func:`modification_input`). Wraps any dataset with
    ``load_image(i)`` and ``samples`` (path, label); keeps its ``on_error`` policy.
    """

    def __init__(
        self,
        dataset: Any,
        settings: Sequence[ModificationSetting],
        transform: Callable[[Image.Image], torch.Tensor],
        prepare: Callable[[Image.Image], Image.Image] | None = None,
    ) -> None:
        self.dataset = dataset
        self.settings = list(settings)
        self.transform = transform
        self.prepare = prepare
        self.samples = dataset.samples
        self.on_error = getattr(dataset, "on_error", "error")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        image = self.dataset.load_image(index)
        if self.prepare is not None:
            image = self.prepare(image)
        versions = image_versions(image, self.settings)
        stacked = torch.stack([self.transform(version) for version in versions])
        return stacked, int(self.samples[index][1]), index


def modify_on_device(
    originals: torch.Tensor,
    settings: Sequence[ModificationSetting],
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """(B, 3, H, W) normalised originals → (B, 1 + K, 3, H, W) with batched modifications."""
    mean_t = torch.tensor(mean, dtype=originals.dtype, device=originals.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=originals.dtype, device=originals.device).view(1, 3, 1, 1)
    unit = (originals * std_t + mean_t).clamp(0, 1)
    versions = [originals]
    versions += [(s.apply_batch(unit).clamp(0, 1) - mean_t) / std_t for s in settings]
    return torch.stack(versions, dim=1)
