"""GPU throughput of ``explain`` in one short run (issue 19, item 4), and the device checks.

On one model (default resnet34 @224, 2,000 prototypes, 200 classes, random weights) and one set
of CUB-like JPEGs (default 5,000, ``cub_like.py``), all in the same process:

1. agreement: CPU vs device distances and logits (fp32, TF32 off), bf16 autocast vs fp32 logits;
2. the floor: seven forward passes per image alone (the original and its six modifications),
   on a batch already on the device, in fp32 and in bf16 autocast;
3. ``explain`` faithful (modifications in DataLoader workers, one per host core by default),
   fast (modifications batched on the device) in fp32, and fast under bf16 autocast: images/s,
   ratio to the floor, and the Spearman rank correlation of the global scores per characteristic
   (fast vs faithful, bf16 vs fp32).

Prints a table and writes JSON (default ``benchmarks/results/gpu.json``). ``--smoke`` runs the
same code on the CPU at tiny sizes (a check that the script works, not a measurement; it writes
no JSON unless given ``--out``).
Example: ``python benchmarks/gpu.py`` on a CUDA machine (about 5 minutes on an H200).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from scipy.stats import spearmanr

from cub_like import make_jpegs
from protoexplain.data import ImageFolderDataset
from protoexplain.explain import explain_dataset, resolve_settings
from protoexplain.fileio import write_json
from protoexplain.models import ModelSpec, ProtoPNet

SMOKE = {"device": "cpu", "images": 12, "prototypes": 8, "classes": 2, "backbone": "small_cnn",
         "image_size": 64, "workers": 0, "batch_size": 4}


def _relative_error(reference: torch.Tensor, other: torch.Tensor) -> float:
    return ((reference - other).abs().max() / reference.abs().max().clamp_min(1e-12)).item()


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_agreement(model: ProtoPNet, device: torch.device) -> dict[str, float]:
    """Max relative difference of CPU and device outputs, and of bf16 autocast vs fp32."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    size = model.spec.image_size
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        on_cpu = model.cpu().forward_details(x)
        model.to(device)
        on_device = model.forward_details(x.to(device))
        with _autocast(device, True):
            bf16 = model.forward_details(x.to(device))
    return {
        "cpu_vs_device_logits": _relative_error(on_cpu.logits, on_device.logits.cpu()),
        "cpu_vs_device_distances": _relative_error(
            on_cpu.distance_maps, on_device.distance_maps.cpu()),
        "bf16_vs_fp32_logits": _relative_error(on_device.logits.float(), bf16.logits.float()),
    }


def timed(device: torch.device, function: Callable[[], object]) -> tuple[float, object]:
    """Seconds of ``function()`` (device work finished) and its value."""
    _synchronize(device)
    started = time.perf_counter()
    value = function()
    _synchronize(device)
    return time.perf_counter() - started, value


def forward_floor(model: ProtoPNet, device: torch.device, images: int, batch_size: int,
                  bf16: bool) -> float:
    """Seconds of seven forward passes per image alone, on a batch already on the device."""
    passes = 1 + len(resolve_settings())
    size = model.spec.image_size
    batch = torch.randn(batch_size, 3, size, size, device=device)
    batches = math.ceil(passes * images / batch_size)

    def run(count: int) -> None:
        with torch.inference_mode(), _autocast(device, bf16):
            for _ in range(count):
                model.similarity_maps(batch)

    run(2)  # warm-up (kernel selection)
    seconds, _ = timed(device, lambda: run(batches))
    return seconds


def explain_run(model: ProtoPNet, dataset: ImageFolderDataset, device: torch.device, mode: str,
                bf16: bool, workers: int, batch_size: int) -> tuple[float, object]:
    """Seconds and result of one ``explain`` over ``dataset`` (after a one-batch warm-up)."""
    options = {"mode": mode, "device": str(device), "workers": workers,
               "batch_size": batch_size}
    with _autocast(device, bf16):
        explain_dataset(model, dataset, max_images=batch_size, bootstrap=0, **options)
        return timed(device, lambda: explain_dataset(model, dataset, **options))


def rank_agreement(reference, other) -> dict[str, float]:
    """Spearman correlation of the global scores of two runs, per characteristic."""
    a = reference.global_scores.set_index(["prototype", "modification"])["weighted_delta"]
    b = other.global_scores.set_index(["prototype", "modification"])["weighted_delta"]
    return {
        name: round(float(spearmanr(a.xs(name, level=1),
                                    b.xs(name, level=1).reindex(a.xs(name, level=1).index))
                          .statistic), 4)
        for name in sorted(a.index.get_level_values(1).unique())
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--prototypes", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--backbone", default="resnet34")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="DataLoader workers (default: one per host core)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes on the CPU: checks that the script runs")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default benchmarks/results/gpu.json; none with --smoke)")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    elif args.out is None:
        args.out = Path("benchmarks/results/gpu.json")
    return args


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    spec = ModelSpec(args.backbone, args.classes, (args.prototypes, 128, 1, 1),
                     image_size=args.image_size,
                     class_names=[f"c{c:03d}" for c in range(args.classes)])
    model = ProtoPNet(spec).eval()
    agreement = device_agreement(model, device)
    floors = {precision: forward_floor(model, device, args.images, args.batch_size,
                                       precision == "bf16")
              for precision in ("fp32", "bf16")}
    runs, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        dataset = ImageFolderDataset(make_jpegs(Path(tmp), args.images, args.classes),
                                     classes=spec.class_names)
        for name, mode, precision in (("faithful", "faithful", "fp32"), ("fast", "fast", "fp32"),
                                      ("fast bf16", "fast", "bf16")):
            seconds, results[name] = explain_run(model, dataset, device, mode,
                                                 precision == "bf16", args.workers,
                                                 args.batch_size)
            runs.append({"run": name, "images": len(dataset), "seconds": round(seconds, 2),
                         "images_per_s": round(len(dataset) / seconds, 1),
                         "over_floor": round(seconds / floors[precision], 2)})
    spearman = {"fast_vs_faithful": rank_agreement(results["faithful"], results["fast"]),
                "bf16_vs_fp32_fast": rank_agreement(results["fast"], results["fast bf16"])}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    print(f"device: {name}; torch {torch.__version__}; {args.backbone} @{args.image_size}, "
          f"{args.prototypes} prototypes, {args.images} images, {args.workers} workers, "
          f"{os.cpu_count()} host cores{' (smoke: not a measurement)' if args.smoke else ''}")
    for key, value in agreement.items():
        print(f"  {key:<26} max relative difference {value:.2e}")
    for precision, seconds in floors.items():
        print(f"  floor {precision}: {seconds:.2f} s, {args.images / seconds:.1f} images/s "
              "(seven forward passes per image)")
    print(f"  {'run':<10} {'images':>7} {'seconds':>8} {'images/s':>9} {'× floor':>8}")
    for row in runs:
        print(f"  {row['run']:<10} {row['images']:>7} {row['seconds']:>8} "
              f"{row['images_per_s']:>9} {row['over_floor']:>8}")
    for key, values in spearman.items():
        print(f"  Spearman {key}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    if args.out is None:
        return
    write_json(args.out, {
        "device": name, "torch": torch.__version__, "backbone": args.backbone,
        "image_size": args.image_size, "prototypes": args.prototypes, "images": args.images,
        "workers": args.workers, "host_cores": os.cpu_count(), "smoke": args.smoke,
        "agreement": agreement,
        "floor_s": floors, "floor_images_per_s": {k: args.images / v for k, v in floors.items()},
        "explain": runs, "spearman": spearman,
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
