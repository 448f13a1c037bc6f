"""The one vectorised nearest-patch search: for every prototype, its k nearest images.

Used by push (k = 1, own class only), by global analysis (``nearest``) and by pruning. Each image
contributes at most one patch per prototype (its best cell). Batches are merged with a streaming
top-k, ordered by (distance, image index) so that the result does not depend on batch boundaries
or on how images are sharded over processes.

Nearness is ProtoPNet's squared L2 distance; for any other architecture of the model contract it
is the negated similarity (−s: the most similar patch comes first).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from protoexplain.models.nearness import nearness_maps
from protoexplain.models.protocol import PrototypeModel, model_device, probe_grid
from protoexplain.progress import progress_bar


@dataclass
class NearestPatches:
    """Per prototype (rows) its k nearest images (columns), best first.

    ``distance`` (P, k) float (``inf`` where fewer than k images qualified), ``image_index``,
    ``cell_h``, ``cell_w`` (P, k) long (``-1`` there). Optional: ``latents`` (P, k, D·h·w), the
    latent patch of each entry, and ``maps`` (P, k, H', W'), its image's distance map.
    """

    distance: torch.Tensor
    image_index: torch.Tensor
    cell_h: torch.Tensor
    cell_w: torch.Tensor
    latents: torch.Tensor | None = None
    maps: torch.Tensor | None = None

    @property
    def k(self) -> int:
        return self.distance.shape[1]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The non-empty tensor fields by name."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def merged(self, other: NearestPatches) -> NearestPatches:
        """The k best entries of both (same prototypes, any images)."""
        joined = {
            name: torch.cat([tensor, getattr(other, name)], dim=1)
            for name, tensor in self.tensors().items()
        }
        return select_top(NearestPatches(**joined), self.k)


def select_top(candidates: NearestPatches, k: int) -> NearestPatches:
    """Keep the k smallest (distance, image index) entries per row; mark empty slots."""
    by_index = torch.argsort(candidates.image_index, dim=1, stable=True)
    distance = candidates.distance.gather(1, by_index)
    by_distance = torch.argsort(distance, dim=1, stable=True)
    order = by_index.gather(1, by_distance)[:, :k]

    def take(tensor: torch.Tensor) -> torch.Tensor:
        shape = order.shape + tensor.shape[2:]
        index = order.reshape(*order.shape, *([1] * (tensor.dim() - 2))).expand(shape)
        return tensor.gather(1, index)

    chosen = NearestPatches(**{name: take(t) for name, t in candidates.tensors().items()})
    empty = torch.isinf(chosen.distance)
    for name in ("image_index", "cell_h", "cell_w"):
        getattr(chosen, name).masked_fill_(empty, -1)
    return chosen


def empty_nearest(
    num_prototypes: int, k: int, latent_size: int | None = None, map_shape: tuple | None = None
) -> NearestPatches:
    """A result with no images yet (all distances ``inf``)."""
    long = torch.full((num_prototypes, k), -1, dtype=torch.long)
    return NearestPatches(
        distance=torch.full((num_prototypes, k), float("inf")),
        image_index=long,
        cell_h=long.clone(),
        cell_w=long.clone(),
        latents=None if latent_size is None else torch.zeros(num_prototypes, k, latent_size),
        maps=None if map_shape is None else torch.zeros(num_prototypes, k, *map_shape),
    )


def _unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images, labels, indices = batch[0], batch[1], batch[2]
    return images, torch.as_tensor(labels), torch.as_tensor(indices)


def batch_candidates(
    model: PrototypeModel,
    images: torch.Tensor,
    labels: torch.Tensor,
    indices: torch.Tensor,
    own_class_only: bool,
    keep_latents: bool = False,
    keep_maps: bool = False,
) -> NearestPatches:
    """Every (prototype, image) pair of one batch: the image's best cell, shape (P, B)."""
    if keep_latents:
        latent = model.latent(images)  # ProtoPNet only (push)
        maps = model.latent_distances(latent).float()
    else:
        maps = nearness_maps(model, images).float()  # (B, P, H', W')
    width = maps.shape[3]
    best, cell = maps.flatten(2).min(dim=2)  # (B, P)
    distance = best.T.contiguous().cpu()
    cell = cell.T.contiguous().cpu()
    if own_class_only:
        own = labels.view(1, -1).cpu() == model.main_class.view(-1, 1).cpu()
        distance = distance.masked_fill(~own, float("inf"))
    num_prototypes = distance.shape[0]
    image_index = indices.view(1, -1).expand(num_prototypes, -1).cpu().long()
    result = NearestPatches(distance, image_index, cell // width, cell % width)
    if keep_latents:
        _, _, proto_h, proto_w = model.prototype_vectors.shape
        patches = F.unfold(latent.float(), (proto_h, proto_w))  # (B, D·h·w, H'·W')
        rows = torch.arange(images.shape[0]).view(1, -1).expand(num_prototypes, -1)
        result.latents = patches.permute(0, 2, 1)[rows, cell.to(patches.device)].cpu()
    if keep_maps:
        result.maps = maps.transpose(0, 1).cpu()
    return result


@torch.inference_mode()
def find_nearest_patches(
    model: PrototypeModel,
    batches: Iterable[Any],
    k: int = 1,
    own_class_only: bool = False,
    *,
    device: str | torch.device | None = None,
    keep_latents: bool = False,
    keep_maps: bool = False,
    progress: bool = False,
) -> NearestPatches:
    """Each prototype's k nearest images with their best patch, over all ``batches``.

    ``batches`` yields ``Batch(images, labels, indices)`` (or equal tuples) of normalised images;
    ``indices`` are the images' dataset indices. With ``own_class_only`` only images of the
    prototype's class count. The model is put in eval mode; tensors are returned on the CPU.
    ``keep_latents`` (push) needs a ProtoPNet.
    """
    model.eval()
    device = torch.device(device) if device is not None else model_device(model)
    latent_size = None
    if keep_latents:
        latent_size = int(model.prototype_vectors[0].numel())
    grid = probe_grid(model, model.input_spec.image_size) if keep_maps else None
    result = empty_nearest(model.num_prototypes, k, latent_size, grid)
    for batch in progress_bar(batches, desc="nearest patches", disable=not progress, leave=False):
        images, labels, indices = _unpack(batch)
        candidates = batch_candidates(
            model, images.to(device), labels, indices, own_class_only, keep_latents, keep_maps
        )
        result = result.merged(candidates)
    return result
