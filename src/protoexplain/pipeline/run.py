"""``protoexplain run``: data → training → pruning → evaluation → nearest → explanation → report.

Each step runs the same command a user would run by hand, so the run folder holds nothing that a
single command could not have written. A step is complete when its marker
``RUN_DIR/.pipeline/<step>.json`` exists with the same settings digest; complete steps are skipped,
so an interrupted run continues where it stopped (the commands themselves resume their own work).
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from protoexplain.errors import UserError
from protoexplain.fileio import atomic_open, read_json_if_intact, write_json
from protoexplain.numerics import cpu_threads, numeric_environment
from protoexplain.pipeline.config import PipelineConfig
from protoexplain.training.config import config_from_dict, dump_config
from protoexplain.training.distributed import init_distributed, is_main_process, shutdown

MARKER_DIR = ".pipeline"


@dataclass
class Context:
    """Where a pipeline run reads and writes."""

    config: PipelineConfig
    run_dir: Path
    device: str
    log: Callable[[str], None] = print

    @property
    def data_dir(self) -> Path:
        if self.config.dataset.source == "folder":
            return Path(self.config.dataset.root)
        return self.run_dir / "data"

    @property
    def train_dir(self) -> Path:
        return self.data_dir / "train"

    @property
    def test_dir(self) -> Path:
        return self.data_dir / "test"

    @property
    def trained_model(self) -> Path:
        return self.run_dir / "train" / "model"

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "pruned" if self.config.prune.enabled else self.trained_model

    def split_dir(self, split: str) -> Path:
        return self.train_dir if split == "train" else self.test_dir


@dataclass(frozen=True)
class Step:
    """One stage of the pipeline: a name, the settings it depends on, and what it runs."""

    name: str
    settings: Callable[[PipelineConfig], object]
    run: Callable[[Context], None]
    enabled: Callable[[PipelineConfig], bool] = field(default=lambda config: True)
    every_process: bool = False  # runs in every torchrun process (it shards its own work)


def _command(context: Context, *args: str | os.PathLike) -> None:
    """Run one protoexplain command in this process; a failure stops the pipeline."""
    from protoexplain.cli import main

    argv = [str(a) for a in args]
    context.log(f"$ protoexplain {' '.join(argv)}")
    status = main(argv)
    if status != 0:
        raise UserError(f"step command 'protoexplain {argv[0]}' failed (exit {status}); "
                        "fix the problem above and rerun to continue")


def _data(context: Context) -> None:
    dataset = context.config.dataset
    if dataset.source == "synthetic":
        _command(context, "synth", "--out", context.data_dir, "--preset", dataset.preset,
                 "--background", dataset.background, "--seed", dataset.seed, "--size", dataset.size,
                 "--train-per-class", dataset.train_per_class,
                 "--test-per-class", dataset.test_per_class)
    elif dataset.source == "cub":
        _command(context, "prepare-cub", dataset.root, "--out", context.data_dir,
                 "--format", dataset.image_format)
    for split in (context.train_dir, context.test_dir):
        if not split.is_dir():
            raise UserError(f"{split} not found: the dataset root must hold train/ and test/")


def _train(context: Context) -> None:
    train_config = config_from_dict(context.config.train, "[train]")
    data = train_config.data
    data.train = data.train or str(context.train_dir.resolve())
    data.test = data.test or str(context.test_dir.resolve())
    config_path = context.run_dir / "train.toml"
    with atomic_open(config_path, "w", encoding="utf-8") as handle:
        handle.write(dump_config(train_config, "training config written by 'protoexplain run'"))
    out = context.run_dir / "train"
    resume = ["--resume"] if (out / "checkpoints" / "last").is_dir() else []
    _command(context, "train", config_path, "--out", out,
             "--device", context.device, *resume)


def _prune(context: Context) -> None:
    prune = context.config.prune
    _command(context, "prune", context.trained_model, context.train_dir,
             "--k", prune.k, "--tau", prune.tau,
             "--last-layer-epochs", prune.last_layer_epochs,
             "--out", context.run_dir / "pruned", "--device", context.device)


def _evaluate(context: Context) -> None:
    _command(context, "evaluate", context.model_dir, context.test_dir,
             "--out", context.run_dir / "evaluation", "--device", context.device)


def _nearest(context: Context) -> None:
    _command(context, "nearest", context.model_dir, context.train_dir,
             "--k", context.config.nearest.k, "--out", context.run_dir / "nearest",
             "--device", context.device)


def _explain_args(context: Context) -> list[str]:
    explain = context.config.explain
    args = ["--family", explain.family, "--mode", explain.mode, "--modify-at", explain.modify_at,
            "--batch-size", str(explain.batch_size), "--workers", str(explain.workers),
            "--device", context.device]
    if explain.modifications:
        args += ["--modifications", *explain.modifications]
    if explain.strengths:
        for name, values in explain.strengths.items():
            args += ["--strengths", f"{name}={','.join(str(v) for v in values)}"]
    if explain.local_top_k:
        args += ["--local-top-k", str(explain.local_top_k)]
    if explain.max_images:
        args += ["--max-images", str(explain.max_images)]
    return args


def _explain(context: Context) -> None:
    splits = context.config.explain.splits
    for split in splits:
        compare = []
        if split == "test" and "train" in splits:
            compare = ["--compare-with", str(context.run_dir / "explain" / "train")]
        # the step runs only when unfinished or when [explain] changed: replacing is intended
        _command(context, "explain", context.model_dir, context.split_dir(split),
                 "--out", context.run_dir / "explain" / split, *_explain_args(context), *compare,
                 "--overwrite")


def _report(context: Context) -> None:
    report = context.config.report
    args = ["--out", context.run_dir / "report", "--workers", report.workers]
    if report.max_prototype_pages:
        args += ["--max-prototype-pages", report.max_prototype_pages]
    _command(context, "report", context.run_dir, *args)


STEPS: tuple[Step, ...] = (
    Step("data", lambda c: asdict(c.dataset), _data),
    Step("train", lambda c: c.train, _train, every_process=True),
    Step("prune", lambda c: asdict(c.prune), _prune, lambda c: c.prune.enabled),
    Step("evaluate", lambda c: None, _evaluate),
    Step("nearest", lambda c: asdict(c.nearest), _nearest, lambda c: c.nearest.enabled),
    Step("explain", lambda c: asdict(c.explain), _explain, lambda c: bool(c.explain.splits),
         every_process=True),
    Step("report", lambda c: asdict(c.report), _report, lambda c: c.report.enabled),
)


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
    context = Context(config, run_dir, device, log)
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
