"""How long the HTML report takes for a model with many prototypes.

Builds a real run with the pipeline (synthetic data, small_cnn with P prototypes, one short
training epoch, push, evaluation, nearest patches, explanation of the test split), then times
``protoexplain report`` alone. Prints a table and writes JSON (default
``benchmarks/results/report.json``). Example: ``python benchmarks/report.py --prototypes 2000``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from protoexplain.cli import main as protoexplain
from protoexplain.fileio import atomic_open, write_json
from protoexplain.pipeline import load_pipeline_config, run_pipeline

CONFIG = """
[dataset]
source = "synthetic"
preset = "mixed"
size = 64
train_per_class = 20
test_per_class = 10

[train.data]
augmentation = "none"
validation_fraction = 0.1
[train.model]
backbone = "small_cnn"
weights = "none"
image_size = 64
prototypes_per_class = {per_class}
prototype_depth = 32
[train.schedule]
epochs = 1
warm_epochs = 0
push_start = 0
push_every = 10
last_layer_epochs = 1

[explain]
splits = ["test"]
batch_size = 64
workers = 2

[report]
enabled = false
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prototypes", type=int, default=2000, help="a multiple of 8")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/report.json"))
    parser.add_argument("--device", default="cpu",
                        help="device that trains and explains the run (untimed; default: cpu)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "run.toml"
        with atomic_open(config_path, "w", encoding="utf-8") as handle:
            handle.write(CONFIG.format(per_class=args.prototypes // 8))
        config, _ = load_pipeline_config(config_path)
        run_dir = Path(tmp) / "run"
        run_pipeline(config, run_dir, device=args.device, log=lambda line: None)
        started = time.perf_counter()
        status = protoexplain(["report", str(run_dir), "--workers", str(args.workers)])
        seconds = time.perf_counter() - started
        pages = len(list((run_dir / "report" / "prototypes").glob("*.html")))
    if status != 0:
        raise SystemExit(status)
    result = {"prototypes": args.prototypes, "workers": args.workers, "cpus": os.cpu_count(),
              "prototype_pages": pages, "seconds": round(seconds, 1),
              "seconds_per_prototype": round(seconds / args.prototypes, 3)}
    print(f"{'prototypes':>10} {'workers':>8} {'pages':>6} {'seconds':>8} {'s/prototype':>12}")
    print(f"{args.prototypes:>10} {args.workers:>8} {pages:>6} {seconds:>8.1f} "
          f"{seconds / args.prototypes:>12.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
