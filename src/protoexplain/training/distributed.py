"""torch.distributed helpers: set-up under torchrun, sharding, gathering, synchronised batch norm.

Without torchrun everything degrades to a single process (world size 1) and the helpers are no-ops.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn
from torch.utils.data import Sampler

from protoexplain.device import resolve_device
from protoexplain.errors import UserError

CPU = torch.device("cpu")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank, the world size and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = CPU
    owns_group: bool = False  # this call created the process group (and tears it down)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_main_process() -> bool:
    """True unless this is a torchrun process other than rank 0 (usable before set-up)."""
    return int(os.environ.get("RANK", "0")) == 0


def init_distributed(device: str | torch.device | None = "auto") -> DistContext:
    """Join the process group when launched by torchrun (nccl on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(device=resolve_device(device))
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), resolved, owns_group)


def shutdown(context: DistContext) -> None:
    """Leave the process group if this context created it (a pipeline keeps one for all steps)."""
    if context.distributed and context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistContext) -> None:
    """Wait for every process."""
    if context.distributed:
        dist.barrier()


def per_rank_batch(global_batch: int, context: DistContext, name: str) -> int:
    """Split a global batch size evenly over the processes."""
    if global_batch % context.world_size:
        raise UserError(
            f"batch size {name} = {global_batch} is not divisible by the {context.world_size} "
            "processes; choose a multiple of the process count"
        )
    return global_batch // context.world_size


class ShardSampler(Sampler[int]):
    """Every ``world_size``-th index from ``rank`` of a fixed index list, without padding."""

    def __init__(self, indices: Sequence[int], context: DistContext) -> None:
        self.indices = list(indices)[context.rank :: context.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def all_reduce_sum(tensor: torch.Tensor, context: DistContext) -> torch.Tensor:
    """Sum of ``tensor`` over processes (returned; the input is left unchanged)."""
    if not context.distributed:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total


def differentiable_sum(tensor: torch.Tensor, context: DistContext) -> torch.Tensor:
    """Sum of ``tensor`` over processes that gradients flow back through (a loss term over the
    global batch); under DDP's gradient averaging each process then gets the single-process
    gradient of that term."""
    if not context.distributed:
        return tensor
    return dist_fn.all_reduce(tensor)


def all_gather_cat(tensor: torch.Tensor, context: DistContext, dim: int) -> torch.Tensor:
    """Concatenate equally shaped tensors of all processes along ``dim`` (rank order)."""
    if not context.distributed:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(context.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=dim)


def all_gather_objects(value: object, context: DistContext) -> list[object]:
    """One JSON-like object from every process (rank order)."""
    if not context.distributed:
        return [value]
    values: list[object] = [None] * context.world_size
    dist.all_gather_object(values, value)
    return values


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose training statistics cover the global batch of all processes.

    ``nn.SyncBatchNorm`` is CUDA-only; this one works on any device with autograd-aware
    all-reduces, two passes (mean, then centred variance) like the single-process computation.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        channels = x.shape[1]
        count = torch.tensor([x.numel() / channels], dtype=x.dtype, device=x.device)
        sums = dist_fn.all_reduce(torch.cat([x.sum(dim=(0, 2, 3)), count]))
        total = sums[-1]
        mean = sums[:channels] / total
        centred = x - mean.view(1, -1, 1, 1)
        var = dist_fn.all_reduce((centred * centred).sum(dim=(0, 2, 3))) / total
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum or 1.0 / float(self.num_batches_tracked)
                unbiased = var * total / (total - 1).clamp(min=1)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), momentum)
        out = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out


def synchronise_batch_norm(model: nn.Module, context: DistContext) -> nn.Module:
    """Make every BatchNorm2d use global-batch statistics (SyncBatchNorm on CUDA)."""
    if not context.distributed:
        return model
    if context.device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child) is nn.BatchNorm2d:
                replacement = GlobalBatchNorm2d(
                    child.num_features, child.eps, child.momentum, child.affine,
                    child.track_running_stats,
                ).to(child.weight.device if child.affine else "cpu")
                replacement.load_state_dict(child.state_dict())
                setattr(module, name, replacement)
    return model
