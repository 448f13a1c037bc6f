"""Speed and memory of the explanation engine against the original workflow and the floor.

One process, the same images and model for every variant:
(a) the original workflow, re-implemented naively: write the six modified datasets to disk, then
    one image at a time, growing a pandas DataFrame by concatenation;
(b) our engine, faithful mode; (c) our engine, fast mode;
(d) the floor: the forward passes alone plus the modifications alone.
Also: peak memory of ``explain`` on 2,000 vs 200 images (subprocesses, ru_maxrss) and the
agreement of fast with faithful global scores (Spearman per characteristic).
Writes benchmarks/results/explain.json. Usage: python benchmarks/explain.py [--sizes 100 400]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from protoexplain.data import ImageFolderDataset, eval_transform  # noqa: E402
from protoexplain.explain import explain_dataset, resolve_settings  # noqa: E402
from protoexplain.explain.export import setting_folder  # noqa: E402
from protoexplain.fileio import write_json  # noqa: E402
from protoexplain.models import ModelSpec, ProtoPNet, save_model  # noqa: E402

IMAGE_SIZE = 64


def make_images(root: Path, count: int, size: tuple[int, int] = (72, 80)) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        blocks = np.kron(rng.integers(0, 256, (9, 10, 3)), np.ones((8, 8, 1)))[: size[0], : size[1]]
        pixels = np.clip(blocks + rng.normal(0, 8, blocks.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")
    return root


def make_model() -> ProtoPNet:
    torch.manual_seed(0)
    return ProtoPNet(ModelSpec("small_cnn", 2, (20, 32, 1, 1), image_size=IMAGE_SIZE)).eval()


def original_workflow(model, dataset, work: Path) -> pd.DataFrame:
    """(a): modified datasets on disk, one image at a time, DataFrame grown by concatenation."""
    settings = resolve_settings()
    transform = eval_transform(IMAGE_SIZE, model.spec.mean, model.spec.std)
    for index, (path, _) in enumerate(dataset.samples):
        image = dataset.load_image(index)
        relative = Path(path).relative_to(dataset.root)
        for setting in settings:
            target = work / setting_folder(setting) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            setting.apply(image).save(target)
    table = pd.DataFrame()
    with torch.no_grad():
        for path, _ in dataset.samples:
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
    table["ds"] = table.delta * table.orig_similarity
    sums = table.groupby(["prototype", "modification"])[["ds", "orig_similarity"]].sum()
    return (sums.ds / sums.orig_similarity).rename("weighted_delta").reset_index()


def floor(model, dataset, batch_size: int) -> float:
    """(d): seconds for the modifications alone plus the forward passes alone."""
    settings = resolve_settings()
    transform = eval_transform(IMAGE_SIZE, model.spec.mean, model.spec.std)
    images = [dataset.load_image(i) for i in range(len(dataset))]
    start = time.perf_counter()
    for image in images:
        for setting in settings:
            setting.apply(image)
    modifications = time.perf_counter() - start
    batch = torch.stack([transform(images[0])] * (batch_size * (1 + len(settings))))
    batches = int(np.ceil(len(images) / batch_size))
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(batches):
            model.similarity_maps(batch)
    return modifications + time.perf_counter() - start


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def peak_memory(images: int, work: Path) -> float:
    """Peak RSS (MiB) of one ``explain`` run in a fresh process."""
    data = make_images(work / f"mem{images}", images, size=(32, 32))
    model_dir = work / "mem_model"
    if not model_dir.exists():
        save_model(make_model(), model_dir)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--memory-sizes", type=int, nargs=2, default=[200, 2000])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader workers of the engine in (b) and (c) (default: 2, as "
                        "the explain command); (a) and (d) run in one process")
    parser.add_argument("--skip-fast", action="store_true",
                        help="leave out (c): fast mode targets GPUs and is slow on a CPU "
                        "(benchmarks/gpu.py times it on the device)")
    args = parser.parse_args()
    model = make_model()
    results: dict = {"image_size": IMAGE_SIZE, "native_size": [72, 80], "workers": args.workers,
                     "sizes": {}}
    print(f"{'images':>7} {'(a) original':>13} {'(b) faithful':>13} {'(c) fast':>10} "
          f"{'(d) floor':>10} {'b/a':>6} {'b/d':>6}   images/s")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for size in args.sizes:
            dataset = ImageFolderDataset(make_images(work / f"data{size}", size))
            options = {"batch_size": args.batch_size, "device": "cpu", "workers": args.workers}
            t_a, naive = timed(original_workflow, model, dataset, work / f"orig{size}")
            t_b, faithful = timed(explain_dataset, model, dataset, out_dir=work / f"b{size}",
                                  **options)  # fmt: skip
            t_c, fast = math.nan, None
            if not args.skip_fast:
                t_c, fast = timed(explain_dataset, model, dataset, out_dir=work / f"c{size}",
                                  mode="fast", **options)  # fmt: skip
            t_d = floor(model, dataset, args.batch_size)
            merged = naive.merge(faithful.global_scores, on=["prototype", "modification"])
            agreement = {
                name: float(stats.spearmanr(group.weighted_delta_x, group.weighted_delta_y)[0])
                for name, group in merged.groupby("modification")
            }
            spearman = {}
            if fast is not None:
                fast_vs = faithful.global_scores.merge(
                    fast.global_scores, on=["prototype", "modification", "strength"]
                )
                spearman = {
                    name: float(stats.spearmanr(group.weighted_delta_x, group.weighted_delta_y)[0])
                    for name, group in fast_vs.groupby("modification")
                }
            rate = {k: size / t for k, t in zip("abcd", (t_a, t_b, t_c, t_d), strict=True)}
            results["sizes"][str(size)] = {
                "seconds": {"a_original": t_a, "b_faithful": t_b,
                            "c_fast": None if fast is None else t_c, "d_floor": t_d},
                "images_per_second": {"a_original": rate["a"], "b_faithful": rate["b"],
                                      "c_fast": None if fast is None else rate["c"],
                                      "d_floor": rate["d"]},
                "ratio_b_over_a_time": t_b / t_a,
                "ratio_b_over_d_time": t_b / t_d,
                "spearman_original_vs_faithful": agreement,
                "spearman_fast_vs_faithful": spearman,
                "speed_fast_over_faithful": None if fast is None else t_b / t_c,
            }  # fmt: skip
            print(f"{size:>7} {rate['a']:>13.1f} {rate['b']:>13.1f} {rate['c']:>10.1f} "
                  f"{rate['d']:>10.1f} {t_b / t_a:>6.2f} {t_b / t_d:>6.2f}")  # fmt: skip
        small, large = args.memory_sizes
        mem_small, mem_large = peak_memory(small, work), peak_memory(large, work)
        results["peak_memory_mib"] = {str(small): mem_small, str(large): mem_large,
                                      "ratio": mem_large / mem_small}  # fmt: skip
        print(f"peak memory of explain: {small} images {mem_small:.0f} MiB, {large} images "
              f"{mem_large:.0f} MiB (ratio {mem_large / mem_small:.3f})")
    for size, entry in results["sizes"].items():
        if not entry["spearman_fast_vs_faithful"]:
            continue
        rho = {k: round(v, 3) for k, v in entry["spearman_fast_vs_faithful"].items()}
        speed = entry["speed_fast_over_faithful"]
        print(f"fast vs faithful at {size} images: speed x{speed:.2f}, Spearman {rho}")
    out = ROOT / "benchmarks" / "results" / "explain.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, results)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
