"""Synthetic-data generation speed on one core: images per second per preset and size.

Prints a table and writes benchmarks/results/synth.json. Run from the repository root:
``PYTHONPATH=src python benchmarks/synth.py [--images N]``.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import cv2

from protoexplain.data.synth import generate_synthetic
from protoexplain.data.synth_factors import PRESETS
from protoexplain.fileio import write_json

RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"


def measure(preset: str, size: int, images: int, masks: bool) -> tuple[float, float]:
    """Images per second of wall time and of process CPU time for one ``generate_synthetic``
    call (files written to disk). CPU time is the fairer number on a shared machine."""
    per_class = max(images // len(PRESETS[preset].classes), 1)
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu_start = time.perf_counter(), time.process_time()
        generate_synthetic(Path(tmp) / "out", preset, seed=0, size=size,
                           train_per_class=per_class, test_per_class=1, masks=masks,
                           progress=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    count = (per_class + 1) * len(PRESETS[preset].classes)
    return count / seconds, count / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=400, help="images per measurement")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one core
    rows = []
    for preset in PRESETS:
        for size in (64, 128, 224):
            for masks in (False, True) if size == 128 else (False,):
                wall, cpu = measure(preset, size, args.images, masks)
                rows.append({"preset": preset, "size": size, "masks": masks,
                             "images_per_s_wall": round(wall, 1),
                             "images_per_s_cpu": round(cpu, 1)})
    print(f"{'preset':<12}{'size':>6}{'masks':>7}{'img/s wall':>12}{'img/s cpu':>11}")
    for row in rows:
        print(f"{row['preset']:<12}{row['size']:>6}{row['masks']!s:>7}"
              f"{row['images_per_s_wall']:>12}{row['images_per_s_cpu']:>11}")
    write_json(RESULTS, {
        "benchmark": "synthetic data generation, one core (cv2.setNumThreads(1))",
        "machine": platform.platform(), "python": platform.python_version(),
        "images_per_measurement": args.images, "results": rows,
    })
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
