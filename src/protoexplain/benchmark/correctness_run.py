"""Running the correctness benchmark: every seed and preset, outputs rewritten after each; and
pooling finished runs of other seeds (run side by side, e.g. one process per seed)."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd
import torch

from protoexplain import __version__
from protoexplain.benchmark.correctness import (
    COLUMNS,
    MIXED_VIEWS,
    NEUTRAL_SETTINGS,
    CorrectnessConfig,
    mixed_job,
    preset_job,
)
from protoexplain.benchmark.correctness_output import write_outputs
from protoexplain.device import resolve_device
from protoexplain.errors import UserError
from protoexplain.fileio import read_json
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


def saved_config(saved: dict) -> CorrectnessConfig:
    """The :class:`CorrectnessConfig` a ``correctness.json`` was written with."""
    kept = {f.name: saved[f.name] for f in fields(CorrectnessConfig) if f.name in saved}
    return CorrectnessConfig(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in kept.items()})


def combine_correctness(folders: list[str | os.PathLike], out_dir: str | os.PathLike) -> dict:
    """Pool finished runs (folders with ``correctness.json`` and ``per_prototype.csv``) of
    different seeds and otherwise equal settings into ``out_dir``; return the pooled JSON.

    The metrics are recomputed from the pooled per-prototype rows, as one run over all the seeds
    computes them; ``wall_seconds`` is the runs' sum (their device time)."""
    if not folders:
        raise UserError("give one or more finished 'benchmark correctness' folders")
    saved = []
    for folder in folders:
        path = Path(folder) / "correctness.json"
        if not path.is_file() or not (Path(folder) / "per_prototype.csv").is_file():
            raise UserError(f"{folder} holds no finished correctness benchmark run")
        saved.append(read_json(path))
    configs = [saved_config(run["config"]) for run in saved]

    def comparable(config: CorrectnessConfig) -> str:
        return json.dumps({k: v for k, v in vars(config).items() if k not in NEUTRAL_SETTINGS},
                          default=list, sort_keys=True)

    if len({comparable(c) for c in configs}) != 1:
        raise UserError("these runs differ in more than their seeds and cannot be pooled")
    seeds = [seed for run in saved for seed in run["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise UserError(f"seeds {sorted(seeds)}: a seed is in more than one run")
    table = pd.concat([pd.read_csv(Path(f) / "per_prototype.csv") for f in folders],
                      ignore_index=True).sort_values(["seed", "preset", "model"], kind="stable")
    config = replace(configs[0], seeds=tuple(sorted(seeds)), presets=configs[0].presets)
    run = {
        "wall_seconds": round(sum(r["wall_seconds"] for r in saved), 1),
        "device": ", ".join(sorted({r["device"] for r in saved})),
        "accuracy": {k: v for r in saved for k, v in r["accuracy"].items()},
        "calibration": {k: v for r in saved for k, v in r["calibration"].items()},
        "versions": saved[0]["versions"],
        "combined_from": [os.path.relpath(Path(f), out_dir) for f in folders],
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_outputs(table.reset_index(drop=True), config, run, out)
