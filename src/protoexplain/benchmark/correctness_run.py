"""Running the correctness benchmark: every seed and preset, outputs rewritten after each."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from protoexplain import __version__
from protoexplain.benchmark.correctness import (
    COLUMNS,
    MIXED_VIEWS,
    CorrectnessConfig,
    mixed_job,
    preset_job,
)
from protoexplain.benchmark.correctness_output import write_outputs
from protoexplain.device import resolve_device
from protoexplain.progress import progress_bar


def run_correctness(
    config: CorrectnessConfig, out_dir: str | os.PathLike, device: str = "auto",
    progress: bool = True,
) -> dict:
    """Run the benchmark into ``out_dir``; return the content of ``correctness.json``.

    The outputs are rewritten after each seed and preset. Run again into the same folder after an
    interruption, it reuses every calibration, reference and model's result saved with the same
    settings and resumes an interrupted training.
    """
    config.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    started = time.perf_counter()
    per_model = 4 * len(config.presets) + (len(MIXED_VIEWS) if config.contrast else 0)
    bar = progress_bar(total=per_model * len(config.seeds), desc="correctness", unit="model",
               disable=not progress)
    rows: list[dict] = []
    accuracy: dict[str, dict[str, float]] = {}
    calibration: dict[str, dict[str, dict]] = {}
    summary: dict = {}
    for seed in config.seeds:
        names = [*config.presets, *(["mixed"] if config.contrast else [])]
        for name in names:
            if name == "mixed":
                found, accuracies, calibrated = mixed_job(seed, config, out, torch_device, bar)
            else:
                found, accuracies, calibrated = preset_job(name, seed, config, out,
                                                           torch_device, bar)
            rows += found
            accuracy.setdefault(str(seed), {}).update(accuracies)
            calibration.setdefault(str(seed), {})[name] = {
                "doses": calibrated["doses"], "strengths": calibrated["strengths"]}
            run = {
                "wall_seconds": round(time.perf_counter() - started, 1),
                "device": str(torch_device), "accuracy": accuracy, "calibration": calibration,
                "versions": {"protoexplain": __version__, "torch": torch.__version__,
                             "python": platform.python_version()},
            }
            summary = write_outputs(pd.DataFrame(rows, columns=list(COLUMNS)), config, run, out)
    bar.close()
    return summary
