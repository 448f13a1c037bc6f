"""Push (prototype projection, method §4): replace each prototype by its closest own-class patch.

The search is :func:`find_nearest_patches` (k = 1, own class); under torchrun every process
searches its shard of the push images and the candidates are gathered, so the result equals a
single-process push. Receptive-field and high-activation boxes are computed for all prototypes
at once; images are written once, at the end, by :func:`save_push_artifacts`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from protoexplain.data import ImageFolderDataset, make_loader
from protoexplain.models.ppnet import ProtoPNet
from protoexplain.models.receptive_field import ReceptiveField
from protoexplain.training.distributed import (
    DistContext,
    ShardSampler,
    all_gather_cat,
)
from protoexplain.training.nearest import NearestPatches, find_nearest_patches, select_top

LOG = logging.getLogger(__name__)

HIGH_ACTIVATION_PERCENTILE = 95.0


@dataclass
class PushResult:
    """What one push did, per prototype (P rows; ``-1`` / ``nan`` where not pushed).

    ``rf_boxes`` and ``ha_boxes`` are (P, 4) ``(h0, h1, w0, w1)`` in pixels of the model input
    (end exclusive); ``similarity_maps`` (P, H', W') is each prototype's similarity map on its
    source image, as found during the search (before projection, like the original).
    """

    prototype_class: torch.Tensor
    pushed: torch.Tensor
    image_index: torch.Tensor
    cell_h: torch.Tensor
    cell_w: torch.Tensor
    distance: torch.Tensor
    rf_boxes: torch.Tensor
    ha_boxes: torch.Tensor
    similarity_maps: torch.Tensor
    image_paths: list[str | None]
    data_root: str
    image_size: int

    @property
    def num_pushed(self) -> int:
        return int(self.pushed.sum())


def high_activation_boxes(
    similarity_maps: torch.Tensor,
    image_size: int,
    percentile: float = HIGH_ACTIVATION_PERCENTILE,
    chunk: int = 128,
) -> torch.Tensor:
    """(N, 4) tightest boxes around the pixels at or above ``percentile`` of each map.

    Each (H', W') map is upsampled bicubically to ``image_size`` (as ``cv2.INTER_CUBIC``).
    """
    boxes = []
    for part in similarity_maps.float().split(chunk):
        up = upsample_maps(part, image_size)
        flat = up.flatten(1)
        threshold = torch.quantile(flat, percentile / 100.0, dim=1).view(-1, 1, 1)
        mask = up >= threshold
        boxes.append(torch.cat([_span(mask.any(dim=2)), _span(mask.any(dim=1))], dim=1))
    if not boxes:
        return torch.zeros(0, 4, dtype=torch.long)
    return torch.cat(boxes)


def upsample_maps(maps: torch.Tensor, image_size: int) -> torch.Tensor:
    """Bicubic upsampling of (N, H', W') maps to (N, size, size)."""
    up = F.interpolate(
        maps.float().unsqueeze(1), size=(image_size, image_size), mode="bicubic",
        align_corners=False,
    )
    return up.squeeze(1)


def _field_span(field: ReceptiveField, cells: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 2) pixel span of latent cells along one axis, as :meth:`ReceptiveField.box`."""
    centre = field.start + cells.double() * field.jump
    low = torch.trunc(centre - field.rf / 2).clamp(min=0)
    high = torch.trunc(centre + field.rf / 2).clamp(max=size)
    return torch.stack([low, high], dim=1).long()


def _span(any_along: torch.Tensor) -> torch.Tensor:
    """(N, 2) first index and last index + 1 of the True entries of each row."""
    size = any_along.shape[1]
    as_int = any_along.to(torch.int8)
    first = as_int.argmax(dim=1)
    last = size - as_int.flip(1).argmax(dim=1)
    return torch.stack([first, last], dim=1).long()


def push_loader(
    dataset: ImageFolderDataset,
    indices: Sequence[int] | None,
    batch_size: int,
    workers: int,
    context: DistContext,
) -> DataLoader:
    """A loader over this process's shard of the push images (in index order, no padding)."""
    indices = range(len(dataset)) if indices is None else indices
    sampler = ShardSampler(indices, context)
    local_batch = -(-batch_size // context.world_size)
    return make_loader(dataset, batch_size=local_batch, sampler=sampler, workers=workers)


def gather_nearest(nearest: NearestPatches, context: DistContext) -> NearestPatches:
    """Merge the per-process results into the result of a search over all images."""
    if not context.distributed:
        return nearest
    gathered = {name: all_gather_cat(t, context, dim=1) for name, t in nearest.tensors().items()}
    return select_top(NearestPatches(**gathered), nearest.k)


@torch.no_grad()
def push_prototypes(
    model: ProtoPNet,
    dataset: ImageFolderDataset,
    *,
    batch_size: int = 75,
    device: str | torch.device | None = None,
    workers: int = 0,
    indices: Sequence[int] | None = None,
    context: DistContext | None = None,
    progress: bool = False,
) -> PushResult:
    """Project every prototype onto its closest latent patch among own-class push images.

    ``dataset`` yields normalised, un-augmented images at the model's input size (the evaluation
    transform); ``indices`` restricts the search to some of its images. A prototype whose class
    has no push image stays unchanged (with a warning).
    """
    context = context or DistContext(device=torch.device(device or "cpu"))
    if device is not None:
        model.to(device)
    loader = push_loader(dataset, indices, batch_size, workers, context)
    nearest = find_nearest_patches(
        model, loader, k=1, own_class_only=True, keep_latents=True, keep_maps=True,
        progress=progress and context.is_main,
    )
    nearest = gather_nearest(nearest, context)
    pushed = nearest.image_index[:, 0] >= 0
    vectors = model.prototype_vectors
    new = nearest.latents[:, 0].view(-1, *vectors.shape[1:]).to(vectors.device, vectors.dtype)
    vectors.data[pushed.to(vectors.device)] = new[pushed.to(vectors.device)]
    _warn_unpushed(model, pushed)
    return _describe(model, dataset, nearest, pushed)


def _warn_unpushed(model: ProtoPNet, pushed: torch.Tensor) -> None:
    if bool(pushed.all()):
        return
    missing = sorted({model.class_names[c] for c in model.prototype_class[~pushed.cpu()].tolist()})
    LOG.warning(
        "%d prototypes were left unchanged: no push image of their class (%s)",
        int((~pushed).sum()),
        ", ".join(missing[:10]) + (" …" if len(missing) > 10 else ""),
    )


def _describe(
    model: ProtoPNet, dataset: ImageFolderDataset, nearest: NearestPatches, pushed: torch.Tensor
) -> PushResult:
    size = model.spec.image_size
    field = model.receptive_field()
    cell_h, cell_w = nearest.cell_h[:, 0], nearest.cell_w[:, 0]
    rf = torch.cat([_field_span(field, cell_h, size), _field_span(field, cell_w, size)], dim=1)
    maps = model.distance_to_similarity(nearest.maps[:, 0].float())
    ha = high_activation_boxes(maps, size)
    rf[~pushed], ha[~pushed] = -1, -1
    image_index = nearest.image_index[:, 0]
    paths = [
        os.path.relpath(dataset.samples[i][0], dataset.root) if i >= 0 else None
        for i in image_index.tolist()
    ]
    return PushResult(
        prototype_class=model.prototype_class.cpu().clone(),
        pushed=pushed,
        image_index=image_index,
        cell_h=cell_h,
        cell_w=cell_w,
        distance=nearest.distance[:, 0],
        rf_boxes=rf,
        ha_boxes=ha,
        similarity_maps=maps,
        image_paths=paths,
        data_root=str(Path(dataset.root).resolve()),
        image_size=size,
    )
