"""How long the HTML report takes for a model with many prototypes.

Builds a real run with the pipeline (synthetic data, small_cnn with P prototypes, one short
training epoch, push, evaluation, nearest patches, explanation of the test split), then times
``protoexplain report`` alone, twice: a first report into an empty folder and a rerun that reuses
the unchanged figures. Prints a table and writes JSON (default ``benchmarks/results/report.json``).
``--run-dir`` keeps the run (and reuses it when it is there already) for profiling.
Example: ``python benchmarks/report.py --prototypes 2000``.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def _build_run(run_dir: Path, prototypes: int, device: str) -> None:
    """The pipeline run that the report is made from (steps already done are skipped)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir.parent / f"{run_dir.name}.toml"
    with atomic_open(config_path, "w", encoding="utf-8") as handle:
        handle.write(CONFIG.format(per_class=prototypes // 8))
    config, _ = load_pipeline_config(config_path)
    run_pipeline(config, run_dir, device=device, log=lambda line: None)


def _time_report(run_dir: Path, workers: int) -> float:
    """Seconds of one ``protoexplain report`` of ``run_dir``."""
    started = time.perf_counter()
    status = protoexplain(["report", str(run_dir), "--workers", str(workers)])
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(status)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prototypes", type=int, default=2000, help="a multiple of 8")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/report.json"))
    parser.add_argument("--device", default="cpu",
                        help="device that trains and explains the run (untimed; default: cpu)")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="keep the run here (reused when present; default: a temporary "
                        "folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir or Path(tmp) / "run"
        _build_run(run_dir, args.prototypes, args.device)
        shutil.rmtree(run_dir / "report", ignore_errors=True)
        first = _time_report(run_dir, args.workers)
        rerun = _time_report(run_dir, args.workers)
        pages = len(list((run_dir / "report" / "prototypes").glob("*.html")))
    result = {"prototypes": args.prototypes, "workers": args.workers, "cpus": os.cpu_count(),
              "prototype_pages": pages, "seconds": round(first, 1),
              "seconds_per_prototype": round(first / args.prototypes, 4),
              "rerun_seconds": round(rerun, 1)}
    print(f"{'prototypes':>10} {'workers':>8} {'pages':>6} {'seconds':>8} {'s/prototype':>12} "
          f"{'rerun s':>8}")
    print(f"{args.prototypes:>10} {args.workers:>8} {pages:>6} {first:>8.1f} "
          f"{first / args.prototypes:>12.4f} {rerun:>8.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
