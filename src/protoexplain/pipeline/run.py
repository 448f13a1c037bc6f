"""``protoexplain run``: data → training → pruning → evaluation → nearest → explanation → report.

Each step (:mod:`protoexplain.pipeline.steps`) calls the library function its command calls, with
the same config, so the run folder holds nothing that a single command could not have written.
A step is complete when its marker ``RUN_DIR/.pipeline/<step>.json`` exists with the same
settings digest; complete steps are skipped, so an interrupted run continues where it stopped
(training and explanation resume their own work).
Changing a step's settings redoes that step and every step after it.

Under ``torchrun`` the steps that shard their work (training, explanation) run in every process;
the others run in process 0 while the rest wait for the step's marker (the run folder must be on
a file system all processes share).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from protoexplain.errors import UserError
from protoexplain.fileio import read_json_if_intact, write_json
from protoexplain.numerics import cpu_threads, numeric_environment
from protoexplain.pipeline.config import PipelineConfig
from protoexplain.pipeline.steps import MARKER_DIR, STEPS, Context
from protoexplain.training.distributed import init_distributed, is_main_process, shutdown


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class StepOutcome:
    """What happened to one step in this invocation."""

    name: str
    status: str  # ran | skipped | disabled
    seconds: float = 0.0


def _is_complete(marker: Path, digest: str) -> bool:
    saved = read_json_if_intact(marker)
    return isinstance(saved, dict) and saved.get("digest") == digest


def _wait_for_process_zero(marker: Path, digest: str, step: str, since: float) -> None:
    """Other torchrun processes wait while process 0 runs a single-process step."""
    failed = marker.with_suffix(".failed")
    while not _is_complete(marker, digest):
        if failed.is_file() and failed.stat().st_mtime >= since:
            raise UserError(f"step {step} failed in process 0; see its output")
        time.sleep(1.0)


def run_pipeline(
    config: PipelineConfig, run_dir: str | os.PathLike, *, device: str = "auto",
    log: Callable[[str], None] = print,
) -> list[StepOutcome]:
    """Run every enabled step not yet complete; returns what ran and what was skipped.

    Torch uses ``config.threads`` CPU threads meanwhile (when set); each step's marker records the
    numeric environment it ran in (:func:`~protoexplain.numerics.numeric_environment`).
    """
    run_dir = Path(run_dir)
    rank = 0 if is_main_process() else int(os.environ["RANK"])
    if rank != 0:
        log = _silent
    started_at = time.time()
    group = init_distributed(device) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None
    try:
        with cpu_threads(config.threads):
            return _run_steps(config, run_dir, device, log, rank, started_at)
    finally:
        if group is not None:
            shutdown(group)


def _run_steps(
    config: PipelineConfig, run_dir: Path, device: str, log: Callable[[str], None], rank: int,
    started_at: float,
) -> list[StepOutcome]:
    markers = run_dir / MARKER_DIR
    _refuse_changed_foundations(config, markers)
    run_dir.mkdir(parents=True, exist_ok=True)
    context = Context(config, run_dir, device, log, writes=rank == 0)
    outcomes: list[StepOutcome] = []
    upstream = ""
    for step in STEPS:
        if not step.enabled(config):
            outcomes.append(StepOutcome(step.name, "disabled"))
            continue
        upstream = _digest([upstream, step.name, step.settings(config)])
        marker = markers / f"{step.name}.json"
        if _is_complete(marker, upstream):
            log(f"[{step.name}] complete, skipped")
            outcomes.append(StepOutcome(step.name, "skipped"))
            continue
        if rank != 0 and not step.every_process:
            _wait_for_process_zero(marker, upstream, step.name, started_at)
            outcomes.append(StepOutcome(step.name, "ran"))
            continue
        log(f"[{step.name}] running")
        started = time.perf_counter()
        try:
            step.run(context)
        except BaseException:
            if rank == 0 and not step.every_process:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.with_suffix(".failed").touch()
            raise
        seconds = time.perf_counter() - started
        if rank == 0:
            marker.with_suffix(".failed").unlink(missing_ok=True)
            write_json(marker, {"step": step.name, "digest": upstream,
                                "seconds": round(seconds, 2), **numeric_environment()})
        outcomes.append(StepOutcome(step.name, "ran", seconds))
    return outcomes


# steps whose finished output later steps are built on: a change to them is refused, not redone
FOUNDATIONS = {"data": "[dataset]", "train": "[train]"}


def _refuse_changed_foundations(config: PipelineConfig, markers: Path) -> None:
    """Refuse, before anything is written, a run folder whose data or training was finished with
    other settings."""
    upstream = ""
    for step in STEPS:
        if not step.enabled(config):
            continue
        upstream = _digest([upstream, step.name, step.settings(config)])
        if step.name not in FOUNDATIONS:
            continue
        saved = read_json_if_intact(markers / f"{step.name}.json")
        if isinstance(saved, dict) and saved.get("digest") != upstream:
            raise UserError(
                f"{markers.parent} holds a finished '{step.name}' step made with other "
                f"{FOUNDATIONS[step.name]} settings (or an earlier step's); nothing was written: "
                "choose another --out, or restore the settings that made it"
            )


def _silent(line: str) -> None:
    """Processes other than 0 print nothing of the pipeline's own."""
