"""Does the shape score depend on the images' native resolution? Prints a table, writes JSON.

Usage: python benchmarks/shape_resolution.py BENCHMARK_DIR [OUT_DIR] [--device cpu]
(default OUT_DIR: ./shape-resolution; the documented timings are on the CPU, the default)

BENCHMARK_DIR is the output of ``protoexplain benchmark faithfulness`` (with the ``shape``
preset). Its trained shape model and a random control are explained (``perceptual`` family, faithful
mode) on the *same* test images rendered at several native resolutions; the model always sees them
resized to its input size, as the paper's CUB crops were resized to 224 after being modified. The
sine warp shifts pixels by a fixed number of pixels (A = 4), so the larger the native image, the
smaller the warp relative to the object. Rows with a scaled amplitude keep the warp's size
relative to the image constant; rows with ``modify_at = model`` resize each image to the model's
input before modifying it (``protoexplain explain --modify-at model``).
"""

from __future__ import annotations

import time

from protoexplain.benchmark import factor_ranks, summarise_ranks
from protoexplain.benchmark.faithfulness import random_model
from protoexplain.benchmark.studies import load_preset_run, study_arguments
from protoexplain.data import ImageFolderDataset, generate_synthetic
from protoexplain.explain import explain_dataset
from protoexplain.fileio import write_json
from protoexplain.progress import progress_bar

#: (native size in pixels, sine-warp amplitude in pixels, where the modifications run).
SETTINGS = (
    (64, 4.0, "native"), (128, 4.0, "native"), (256, 4.0, "native"),
    (128, 8.0, "native"), (256, 16.0, "native"),
    (128, 4.0, "model"), (256, 4.0, "model"),
)


def main() -> None:
    args = study_arguments(__doc__.splitlines()[0], "shape-resolution", "output folder")
    out, device = args.out, args.device
    config, model, _ = load_preset_run(args.benchmark_dir, "shape", "shape_resolution")
    models = {"trained": model, "control_random": random_model(model, config["seed"] + 2)}
    rows = []
    bar = progress_bar(total=len(SETTINGS) * len(models), desc="shape resolution", unit="run")
    bar.write(f"{'native px':>9}{'A px':>6}{'A/side':>8}{'modify at':>10}  {'model':<15}"
              f"{'shape first':>12}{'mean rank':>10}{'shape':>8}{'hue':>8}{'satur.':>8}"
              f"{'seconds':>8}")
    for size, amplitude, modify_at in SETTINGS:
        data = out / f"data{size}"
        generate_synthetic(data, "shape", seed=config["seed"], size=size, train_per_class=1,
                           test_per_class=config["test_per_class"], progress=False)
        test = ImageFolderDataset(data / "test")
        for kind, candidate in models.items():
            started = time.perf_counter()
            scores = explain_dataset(
                candidate, test, family="perceptual", strengths={"shape": [amplitude]},
                mode="faithful", modify_at=modify_at, bootstrap=0, device=device,
                seed=config["seed"],
            ).global_scores
            means = scores.groupby("modification")["weighted_delta"].mean()
            summary = summarise_ranks(factor_ranks(scores, "shape"))
            row = {"native_size": size, "amplitude": amplitude, "modify_at": modify_at,
                   "model": kind, **summary,
                   "mean_importance": {k: round(float(v), 4) for k, v in means.items()},
                   "seconds": round(time.perf_counter() - started, 1)}
            rows.append(row)
            relative = amplitude / (size if modify_at == "native" else model.input_spec.image_size)
            bar.write(f"{size:>9}{amplitude:>6.0f}{relative:>8.3f}{modify_at:>10}  {kind:<15}"
                      f"{summary['top1_share']:>12.0%}{summary['mean_rank']:>10.2f}"
                      f"{means['shape']:>8.3f}{means['hue']:>8.3f}{means['saturation']:>8.3f}"
                      f"{row['seconds']:>8.1f}")
            bar.update()
    bar.close()
    write_json(out / "shape_resolution.json", rows)
    print(f"shape_resolution: {len(rows)} runs; wrote {out / 'shape_resolution.json'} and the "
          f"rendered test sets under {out}/")


if __name__ == "__main__":
    main()
