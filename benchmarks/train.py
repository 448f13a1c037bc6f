"""Training throughput and push speed, next to a naive per-prototype push, on this machine.

Prints a table and writes ``benchmarks/results/train.json``. Usage:
    python benchmarks/train.py [--device auto] [--prototypes 2000] [--images 300]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from protoexplain.device import resolve_device
from protoexplain.fileio import write_json
from protoexplain.models import ModelSpec, ProtoPNet
from protoexplain.training.config import RunConfig
from protoexplain.training.epoch import DetailsForward, Precision
from protoexplain.training.losses import LossWeights, protopnet_loss
from protoexplain.training.nearest import find_nearest_patches
from protoexplain.training.phases import build_phases, make_optimizer, set_trainable

RESULTS = Path(__file__).resolve().parent / "results" / "train.json"


def synthetic_batches(count: int, batch: int, size: int, classes: int, device: torch.device):
    generator = torch.Generator().manual_seed(0)
    batches = []
    for start in range(0, count, batch):
        n = min(batch, count - start)
        images = torch.randn(n, 3, size, size, generator=generator).to(device)
        labels = torch.randint(0, classes, (n,), generator=generator)
        batches.append((images, labels, torch.arange(start, start + n)))
    return batches


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step_rate(model, device, batch, size, steps, precision) -> float:
    """Images per second of joint-phase training steps (forward, loss, backward, Adam)."""
    phase = build_phases(RunConfig())["joint"]
    set_trainable(model, phase)
    model.train()
    optimizer = make_optimizer(model, phase)
    forward = DetailsForward(model)
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.randint(0, model.num_classes, (batch,), device=device)
    if precision.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)

    def step():
        with precision.autocast(device):
            logits, distances = forward(images)[:2]
        loss, _ = protopnet_loss(logits, distances, labels, model.prototype_class,
                                 model.last_layer.weight, LossWeights())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    sync(device)
    began = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - began)


@torch.inference_mode()
def naive_push_search(model, batches):
    """The original's structure: for every batch, a Python loop over prototypes."""
    model.eval()
    count = model.num_prototypes
    best = torch.full((count,), float("inf"))
    where = torch.full((count, 3), -1, dtype=torch.long)
    for images, labels, indices in batches:
        maps = model.distance_maps(images).float().cpu()
        for j in range(count):
            own = labels == int(model.prototype_class[j])
            if not own.any():
                continue
            own_maps = maps[own, j]
            value = own_maps.min()
            if value < best[j]:
                best[j] = value
                flat = int(own_maps.flatten().argmin())
                b, rest = divmod(flat, own_maps.shape[1] * own_maps.shape[2])
                h, w = divmod(rest, own_maps.shape[2])
                where[j] = torch.tensor([int(indices[own][b]), h, w])
    return best, where


def timed(function, device):
    sync(device)
    began = time.perf_counter()
    value = function()
    sync(device)
    return time.perf_counter() - began, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--prototypes", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--batch", type=int, default=75)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    spec = ModelSpec(args.backbone, num_classes=args.classes,
                     prototype_shape=(args.prototypes, 128, 1, 1), image_size=args.image_size)
    model = ProtoPNet(spec).to(device)
    precision = Precision.for_device(device, bf16=True, channels_last=True)
    rate = train_step_rate(model, device, args.train_batch, args.image_size, args.steps,
                           precision)
    batches = synthetic_batches(args.images, args.batch, args.image_size, args.classes, device)
    find_nearest_patches(model, batches[:1], k=1, own_class_only=True)  # warm-up
    vector_s, found = timed(
        lambda: find_nearest_patches(model, batches, k=1, own_class_only=True), device
    )
    naive_s, (_, where) = timed(lambda: naive_push_search(model, batches), device)
    same = torch.equal(found.image_index[:, 0], where[:, 0])
    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
        platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "backbone": args.backbone,
        "image_size": args.image_size,
        "prototypes": args.prototypes,
        "push_images": args.images,
        "train_batch": args.train_batch,
        "bf16": precision.bf16,
        "train_images_per_s": round(rate, 2),
        "push_vectorised_s": round(vector_s, 3),
        "push_naive_loop_s": round(naive_s, 3),
        "push_speedup": round(naive_s / vector_s, 2),
        "same_choices": bool(same),
    }
    print(f"{'measure':<28}{'value':>14}")
    for key, value in result.items():
        print(f"{key:<28}{value!s:>14}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS, result)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
