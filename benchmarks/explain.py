"""Explain against the original workflow and the floor, at several dataset sizes in one run.

One process, the same CUB-like JPEGs (``cub_like.py``, 150–420 px) and the same model for every
variant (default resnet18 @224 with random weights, 2,000 prototypes, 200 classes):
(a) the original workflow, re-implemented naively: write the six modified datasets to disk, then
    one image at a time, growing a pandas DataFrame by concatenation;
(b) our engine, faithful mode (the explain command's defaults); (c) our engine, fast mode
    (optional: it targets GPUs, ``benchmarks/gpu.py``);
(d) the floor: NL-means (the texture modification) alone on every image plus seven forward passes
    per image alone (the original and its six modifications).
Also (optional): peak memory of ``explain`` on two sizes (subprocesses, ru_maxrss, a small CNN)
and the agreement of (a) and (c) with (b) (Spearman of the global scores per characteristic).
Writes JSON (default benchmarks/results/explain.json).
Usage: python benchmarks/explain.py [--images 200 2000] [--memory-sizes 200 2000]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from scipy import stats

from cub_like import make_jpegs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from protoexplain.data import ImageFolderDataset, eval_transform  # noqa: E402
from protoexplain.explain import explain_dataset, resolve_settings  # noqa: E402
from protoexplain.explain.export import setting_folder  # noqa: E402
from protoexplain.fileio import write_json  # noqa: E402
from protoexplain.models import ModelSpec, ProtoPNet, save_model  # noqa: E402

FLOOR_MODIFICATION = "texture"  # NL-means: the one modification that costs as much as a pass


def make_model(backbone: str, image_size: int, prototypes: int, classes: int) -> ProtoPNet:
    """A ProtoPNet with random weights (seed 0) and classes ``c000``…"""
    torch.manual_seed(0)
    spec = ModelSpec(backbone, classes, (prototypes, 128, 1, 1), image_size=image_size,
                     class_names=[f"c{c:03d}" for c in range(classes)])
    return ProtoPNet(spec).eval()


def original_workflow(model, dataset, work: Path, budget: float = math.inf) -> dict:
    """(a): modified datasets on disk, one image at a time, DataFrame grown by concatenation.

    The scoring loop stops (after at least one image) once ``budget`` seconds have passed since
    the start; the entry then gives a lower bound on the whole run's time (the images left at the
    mean per-image time so far: each image costs more than the one before, as the table grows)
    and a projection (a straight line fitted to the per-image times, summed over the images left).
    """
    start = time.perf_counter()
    settings = resolve_settings()
    transform = eval_transform(model.spec.image_size, model.spec.mean, model.spec.std)
    for index, (path, _) in enumerate(dataset.samples):
        image = dataset.load_image(index)
        relative = Path(path).relative_to(dataset.root)
        for setting in settings:
            target = work / setting_folder(setting) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            setting.apply(image).save(target)
    table = pd.DataFrame()
    per_image: list[float] = []
    with torch.no_grad():
        for path, _ in dataset.samples:
            if per_image and time.perf_counter() - start > budget:
                break
            image_start = time.perf_counter()
            relative = Path(path).relative_to(dataset.root)
            x = transform(Image.open(path).convert("RGB"))[None]
            distances = model.distance_maps(x)[0].flatten(1)
            cell = distances.argmin(dim=1)
            sim = model.distance_to_similarity(distances)
            s = sim[torch.arange(len(cell)), cell]
            for setting in settings:
                modified = Image.open(work / setting_folder(setting) / relative).convert("RGB")
                sim_m = model.similarity_maps(transform(modified)[None])[0].flatten(1)
                s_m = sim_m[torch.arange(len(cell)), cell]
                rows = pd.DataFrame({
                    "image": str(relative), "prototype": np.arange(len(cell)),
                    "modification": setting.name, "delta": (s - s_m).numpy(),
                    "orig_similarity": s.numpy(),
                })  # fmt: skip
                table = pd.concat([table, rows], ignore_index=True)
            per_image.append(time.perf_counter() - image_start)
    elapsed = time.perf_counter() - start
    left = len(dataset) - len(per_image)
    entry = {"seconds": elapsed, "images_scored": len(per_image), "finished": left == 0,
             "lower_bound_seconds": elapsed + left * float(np.mean(per_image)),
             "projected_seconds": elapsed + projected_rest(per_image, left)}
    if left == 0:
        table["ds"] = table.delta * table.orig_similarity
        sums = table.groupby(["prototype", "modification"])[["ds", "orig_similarity"]].sum()
        entry["scores"] = (sums.ds / sums.orig_similarity).rename("weighted_delta").reset_index()
    return entry


def projected_rest(per_image: list[float], left: int) -> float:
    """Seconds for ``left`` more images on a straight line fitted to the per-image times."""
    if left == 0:
        return 0.0
    if len(per_image) == 1:
        return left * per_image[0]
    slope, intercept = np.polyfit(np.arange(len(per_image)), per_image, 1)
    rest = np.arange(len(per_image), len(per_image) + left)
    return float(np.sum(intercept + slope * rest))


def floor(model: ProtoPNet, dataset: ImageFolderDataset, batch_size: int) -> dict[str, float]:
    """(d): seconds of NL-means alone on every image and of seven forward passes per image."""
    settings = resolve_settings()
    (texture,) = [s for s in settings if s.name == FLOOR_MODIFICATION]
    images = [dataset.load_image(i) for i in range(len(dataset))]
    start = time.perf_counter()
    for image in images:
        texture.apply(image)
    nlmeans = time.perf_counter() - start
    size = model.spec.image_size
    batch = torch.randn(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0))
    batches = math.ceil((1 + len(settings)) * len(images) / batch_size)
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(batches):
            model.similarity_maps(batch)
    forward = time.perf_counter() - start
    return {"nlmeans": nlmeans, "forward": forward, "total": nlmeans + forward}


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def peak_memory(images: int, work: Path) -> float:
    """Peak RSS (MiB) of one ``explain`` run in a fresh process."""
    data = make_jpegs(work / f"mem{images}", images, classes=2)
    model_dir = work / "mem_model"
    if not model_dir.exists():
        save_model(make_model("small_cnn", 64, 20, 2), model_dir)
    code = (
        "import resource, sys; from protoexplain.cli import main; "
        f"main(['explain', r'{model_dir}', r'{data}', '--out', r'{work / f'memout{images}'}', "
        "'--device', 'cpu', '--workers', '0', '--batch-size', '32', '--chunk-images', '256']); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    output = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    return int(output.strip().splitlines()[-1]) / 1024


def spearman(reference: pd.DataFrame, other: pd.DataFrame, keys: list[str]) -> dict[str, float]:
    """Per characteristic, Spearman of two runs' ``weighted_delta`` (merged on ``keys``)."""
    merged = reference.merge(other, on=keys)
    return {name: float(stats.spearmanr(group.weighted_delta_x, group.weighted_delta_y)[0])
            for name, group in merged.groupby("modification")}


def measure(model: ProtoPNet, size: int, work: Path, args: argparse.Namespace) -> dict:
    """Every variant on ``size`` images; the entry of the JSON for that size."""
    data = make_jpegs(work / f"data{size}", size, model.spec.num_classes)
    dataset = ImageFolderDataset(data, classes=model.spec.class_names)
    options = {"batch_size": args.batch_size, "device": "cpu", "workers": args.workers}
    original = original_workflow(model, dataset, work / f"orig{size}", args.original_budget)
    t_a = original["seconds"] if original["finished"] else original["lower_bound_seconds"]
    t_b, faithful = timed(explain_dataset, model, dataset, out_dir=work / f"b{size}", **options)
    t_c, fast = math.nan, None
    if args.fast:
        t_c, fast = timed(explain_dataset, model, dataset, out_dir=work / f"c{size}",
                          mode="fast", **options)
    floors = floor(model, dataset, args.batch_size)
    t_d = floors["total"]
    return {
        "original_finished": original["finished"],
        "original_images_scored": original["images_scored"],
        "original_projected_seconds": original["projected_seconds"],
        "seconds": {"a_original": t_a, "b_faithful": t_b, "c_fast": None if fast is None else t_c,
                    "d_floor": t_d, "d_floor_nlmeans": floors["nlmeans"],
                    "d_floor_forward": floors["forward"]},
        "images_per_second": {"a_original": size / t_a, "b_faithful": size / t_b,
                              "c_fast": None if fast is None else size / t_c,
                              "d_floor": size / t_d},
        "speed_up_over_original": t_a / t_b,
        "speed_up_over_original_projected": original["projected_seconds"] / t_b,
        "ratio_b_over_d_time": t_b / t_d,
        "spearman_original_vs_faithful": spearman(
            original["scores"], faithful.global_scores, ["prototype", "modification"])
        if original["finished"] else {},
        "spearman_fast_vs_faithful": {} if fast is None else spearman(
            faithful.global_scores, fast.global_scores, ["prototype", "modification", "strength"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[200, 2000],
                        help="dataset sizes, each measured with every variant (200 2000)")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--prototypes", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader workers of the engine in (b) and (c) (default 0, as the "
                        "explain command); (a) and (d) run in one process")
    parser.add_argument("--original-budget", type=float, default=math.inf,
                        help="seconds after which (a) stops scoring; its time is then a lower "
                        "bound (the images left at its mean per-image time) and the speed-up "
                        "is marked as at least (default: no limit)")
    parser.add_argument("--fast", action="store_true",
                        help="also (c), fast mode (it targets GPUs and is slow on a CPU)")
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[],
                        help="two sizes for the peak-memory check (default: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/explain.json")
    args = parser.parse_args()
    model = make_model(args.backbone, args.image_size, args.prototypes, args.classes)
    results: dict = {"backbone": args.backbone, "image_size": args.image_size,
                     "prototypes": args.prototypes, "classes": args.classes,
                     "images": "CUB-like JPEGs, 150-420 px (cub_like.py)",
                     "workers": args.workers, "batch_size": args.batch_size,
                     "threads": torch.get_num_threads(), "sizes": {}}
    print(f"{args.backbone} @{args.image_size}, {args.prototypes} prototypes, "
          f"{torch.get_num_threads()} threads; images/s and time ratios")
    print(f"{'images':>7} {'(a) original':>13} {'(b) faithful':>13} {'(c) fast':>10} "
          f"{'(d) floor':>10} {'a/b':>8} {'b/d':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for size in args.images:
            entry = measure(model, size, work, args)
            results["sizes"][str(size)] = entry
            rate = entry["images_per_second"]
            bound = "" if entry["original_finished"] else ">="
            print(f"{size:>7} {rate['a_original']:>13.2f} {rate['b_faithful']:>13.2f} "
                  f"{rate['c_fast'] or math.nan:>10.2f} {rate['d_floor']:>10.2f} "
                  f"{bound + format(entry['speed_up_over_original'], '.2f'):>8} "
                  f"{entry['ratio_b_over_d_time']:>6.2f}")
            if not entry["original_finished"]:
                print(f"        (a) stopped after {entry['original_images_scored']} of {size} "
                      f"images; projected a/b {entry['speed_up_over_original_projected']:.2f}")
            write_json(args.out, results)  # each size as soon as it is measured
        if args.memory_sizes:
            small, large = args.memory_sizes
            mem_small, mem_large = peak_memory(small, work), peak_memory(large, work)
            results["peak_memory_mib"] = {str(small): mem_small, str(large): mem_large,
                                          "ratio": mem_large / mem_small}
            print(f"peak memory of explain: {small} images {mem_small:.0f} MiB, {large} images "
                  f"{mem_large:.0f} MiB (ratio {mem_large / mem_small:.3f})")
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
