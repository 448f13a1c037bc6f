"""CUDA checks and timings in one short run.

1. The same model on CPU and on the device gives the same distances and logits (fp32, TF32 off).
2. bf16 autocast changes logits only slightly (relative error).
3. ``explain`` faithful (modifications in DataLoader workers) vs fast (on the device): images/s
   and the Spearman rank correlation of their global scores per characteristic.

Prints a table and writes JSON (default ``benchmarks/results/gpu.json``).
Example: ``python benchmarks/gpu.py --device cuda --images 256 --prototypes 2000``.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from protoexplain.data import ImageFolderDataset, generate_synthetic
from protoexplain.explain import explain_dataset
from protoexplain.fileio import write_json
from protoexplain.models import ModelSpec, ProtoPNet


def _relative_error(reference: torch.Tensor, other: torch.Tensor) -> float:
    return ((reference - other).abs().max() / reference.abs().max().clamp_min(1e-12)).item()


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
        result = {
            "cpu_vs_device_logits": _relative_error(on_cpu.logits, on_device.logits.cpu()),
            "cpu_vs_device_distances": _relative_error(
                on_cpu.distance_maps, on_device.distance_maps.cpu()
            ),
        }
        if device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                bf16 = model.forward_details(x.to(device))
            result["bf16_vs_fp32_logits"] = _relative_error(
                on_device.logits.float(), bf16.logits.float()
            )
    return result


def explain_timings(model: ProtoPNet, data: Path, device: str, workers: int,
                    batch_size: int) -> tuple[list[dict], dict[str, float]]:
    """Images/s of both modes and the rank agreement of their global scores."""
    dataset = ImageFolderDataset(data)
    rows, scores = [], {}
    for mode in ("faithful", "fast"):
        explain_dataset(model, dataset, mode=mode, device=device, workers=workers,
                        batch_size=batch_size, max_images=batch_size, bootstrap=0)  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        result = explain_dataset(model, dataset, mode=mode, device=device, workers=workers,
                                 batch_size=batch_size)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        rows.append({"mode": mode, "images": len(dataset), "seconds": round(seconds, 2),
                     "images_per_s": round(len(dataset) / seconds, 1)})
        scores[mode] = result.global_scores.set_index(["prototype", "modification"])
    agreement = {}
    for modification in sorted(scores["faithful"].index.get_level_values(1).unique()):
        a = scores["faithful"].xs(modification, level=1)["weighted_delta"]
        b = scores["fast"].xs(modification, level=1)["weighted_delta"].reindex(a.index)
        agreement[modification] = round(float(spearmanr(a, b).statistic), 3)
    return rows, agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--prototypes", type=int, default=2000)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu.json"))
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    spec = ModelSpec(args.backbone, 4, (args.prototypes, 128, 1, 1), image_size=args.image_size)
    model = ProtoPNet(spec).eval()
    agreement = device_agreement(model, device)
    with tempfile.TemporaryDirectory() as tmp:
        generate_synthetic(Path(tmp) / "data", "mixed", seed=0, size=128,
                           train_per_class=max(1, args.images // 8), test_per_class=1,
                           progress=False)
        rows, rank_agreement = explain_timings(
            model, Path(tmp) / "data" / "train", args.device, args.workers, args.batch_size
        )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"device: {name}; torch {torch.__version__}; {args.backbone}, "
          f"{args.prototypes} prototypes, {args.image_size} px")
    for key, value in agreement.items():
        print(f"  {key:<26} max relative difference {value:.2e}")
    print(f"  {'mode':<10} {'images':>7} {'seconds':>8} {'images/s':>9}")
    for row in rows:
        print(f"  {row['mode']:<10} {row['images']:>7} {row['seconds']:>8} "
              f"{row['images_per_s']:>9}")
    print("  Spearman(faithful, fast) of global scores: "
          + ", ".join(f"{k} {v}" for k, v in rank_agreement.items()))
    write_json(args.out, {
        "device": name, "torch": torch.__version__, "backbone": args.backbone,
        "prototypes": args.prototypes, "agreement": agreement, "explain": rows,
        "spearman_faithful_fast": rank_agreement,
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
