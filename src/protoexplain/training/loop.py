"""The training loop: runs the flat step list of :mod:`phases`, checkpointing after every step.

Run folder: ``config.toml`` (resolved), ``run.json``, ``metrics.csv``, ``train.log``,
``checkpoints/last/`` (model + optimisers, scheduler, RNG, progress), ``checkpoints/best/`` (best
validation accuracy among pushed models), ``checkpoints/push-eNNN/`` (with ``prototypes/``) and
``model/`` (final model with the last push's ``prototypes/``). Only rank 0 writes.
"""

from __future__ import annotations

import math
import platform
import random
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from protoexplain import __version__
from protoexplain.data import fingerprint_folder
from protoexplain.errors import UserError
from protoexplain.fileio import atomic_open, read_json, write_json
from protoexplain.models.checkpoint import save_model
from protoexplain.models.ppnet import ModelSpec, ProtoPNet
from protoexplain.numerics import numeric_environment
from protoexplain.tomlconfig import tomllib
from protoexplain.training.artifacts import PROTOTYPES_DIR, save_push_artifacts
from protoexplain.training.config import RunConfig, dump_config
from protoexplain.training.datasets import RunData, build_run_data, eval_loader, train_loader
from protoexplain.training.distributed import (
    DistContext,
    all_gather_objects,
    barrier,
    init_distributed,
    shutdown,
    synchronise_batch_norm,
)
from protoexplain.training.epoch import DetailsForward, Precision, evaluate, run_epoch
from protoexplain.training.folders import recover_folder, staged_folder
from protoexplain.training.losses import LossWeights
from protoexplain.training.phases import (
    Phase,
    Step,
    build_phases,
    build_schedule,
    make_joint_scheduler,
    make_optimizer,
    push_epochs,
    set_trainable,
)
from protoexplain.training.push import push_prototypes
from protoexplain.training.runlog import RunLog
from protoexplain.training.state import (
    load_training_state,
    rng_state,
    save_training_state,
    set_rng_state,
)

DRY_RUN_PUSH_IMAGES = 8


#: the key of run.json that keeps the resolved config a run started with
STARTED_CONFIG = "config_toml"


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy and Python."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def build_model(config: RunConfig, classes: list[str]) -> ProtoPNet:
    """A fresh ProtoPNet for the config and the training classes."""
    m = config.model
    spec = ModelSpec(
        backbone=m.backbone,
        num_classes=len(classes),
        prototype_shape=(m.prototypes_per_class * len(classes), m.prototype_depth, 1, 1),
        class_names=list(classes),
        add_on=m.add_on,
        activation=m.activation,
        epsilon=m.epsilon,
        image_size=m.image_size,
    )
    weights = None if m.weights in ("", "none") else m.weights
    return ProtoPNet(spec, backbone_weights=weights)


def dry_run_steps() -> list[Step]:
    """One step of every phase: warm-up, joint, push, last layer."""
    return [Step("warm", 0), Step("joint", 1), Step("push", 1), Step("last_layer", 1, 0)]


def _one_per_class(labels: list[int], indices: list[int], limit: int) -> list[int]:
    first: dict[int, int] = {}
    for index in indices:
        first.setdefault(labels[index], index)
    return sorted(first.values())[:limit]


class Trainer:
    """State of one run; :meth:`run` executes the remaining steps."""

    def __init__(
        self, config: RunConfig, data: RunData, out_dir: Path, context: DistContext,
        dry_run: bool,
    ) -> None:
        self._start(config, data, out_dir, context, dry_run)
        if dry_run:
            labels = [label for _, label in self.data.push.samples]
            self.data.push_indices = _one_per_class(
                labels, self.data.push_indices, DRY_RUN_PUSH_IMAGES
            )
        seed_everything(config.seed)
        self.model: ProtoPNet = self._placed(build_model(config, self.data.classes))
        self.phases: dict[str, Phase] = build_phases(config)
        self.optimizers = {name: make_optimizer(self.model, p) for name, p in self.phases.items()}
        self.scheduler = make_joint_scheduler(self.optimizers["joint"], config.joint)
        self.steps = dry_run_steps() if dry_run else build_schedule(
            config.schedule, config.model.activation
        )
        self.weights = LossWeights(**vars(config.loss))
        self.train_batches = train_loader(
            self.data.train, config.batch.train, config.data.workers, config.seed, context
        )
        self.log = RunLog(out_dir, context.is_main)

    def _start(
        self, config: RunConfig, data: RunData, out_dir: Path, context: DistContext,
        dry_run: bool,
    ) -> None:
        """The state every architecture's run starts with, before its model is built."""
        self.config, self.out_dir, self.context, self.dry_run = config, out_dir, context, dry_run
        self.data = data
        self.checkpoints = out_dir / "checkpoints"
        self.max_batches = 1 if dry_run else None
        self.precision = Precision.for_device(
            context.device, config.device.bf16, config.device.channels_last
        )
        self.progress: dict[str, Any] = {
            "completed_steps": 0, "metrics": [], "best_val_acc": None, "last_push": None,
        }
        self._forward: nn.Module | None = None
        self._forward_phase: str | None = None

    def _placed(self, model: nn.Module) -> Any:
        """``model`` on this process's device, with global-batch batch norm under torchrun and
        the configured memory format."""
        model = synchronise_batch_norm(model.to(self.context.device), self.context)
        if self.precision.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    # -- resuming -------------------------------------------------------------------------
    def resume(self) -> None:
        """Continue from ``checkpoints/last`` when there is one."""
        last = recover_folder(self.checkpoints / "last")
        if last is None:
            self.log.info("no checkpoint to resume from; starting from the beginning")
            return
        self.progress, states = load_training_state(
            last, self.model, self.optimizers, self.scheduler
        )
        if len(states) == self.context.world_size:
            set_rng_state(states[self.context.rank])
        else:
            warnings.warn(
                f"checkpoint has RNG states of {len(states)} processes, this run has "
                f"{self.context.world_size}; the data order stays exact, augmentation will not",
                stacklevel=2,
            )
            seed_everything(self.config.seed + self.progress["completed_steps"])
        self.log.info("resumed after %d completed steps", self.progress["completed_steps"])

    # -- one step -------------------------------------------------------------------------
    def _training_forward(self, phase: Phase) -> nn.Module:
        """The (DDP-wrapped) forward; rebuilt when the trainable parameters change."""
        if self._forward_phase != phase.name:
            self._forward = None  # release the old DDP hooks before making new ones
            forward: nn.Module = DetailsForward(self.model)
            if self.context.distributed:
                forward = DistributedDataParallel(
                    forward,
                    device_ids=[self.context.device.index] if self.context.device.type == "cuda"
                    else None,
                    broadcast_buffers=False,
                )
            self._forward, self._forward_phase = forward, phase.name
        assert self._forward is not None
        return self._forward

    def _train_step(self, index: int, step: Step) -> dict[str, Any]:
        phase = self.phases[step.kind]
        set_trainable(self.model, phase)
        self.model.train(phase.batch_norm_updates)
        optimizer = self.optimizers[step.kind]
        if step.kind == "joint":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # stepped before the epoch, on purpose
                self.scheduler.step()
        self.train_batches.sampler.set_epoch(index)
        stats = run_epoch(
            self.model, self._training_forward(phase), self.train_batches, optimizer,
            self.weights, self.context, self.precision, description=step.label,
            max_batches=self.max_batches,
        )
        return {**stats, "lr": optimizer.param_groups[0]["lr"]}

    def _push_step(self, step: Step) -> dict[str, Any]:
        result = push_prototypes(
            self.model, self.data.push, batch_size=self.config.batch.push,
            device=self.context.device, workers=self.config.data.workers,
            indices=self.data.push_indices, context=self.context, progress=True,
        )
        name = f"push-e{step.epoch:03d}"
        schedule = self.config.schedule
        images = schedule.push_images == "every" or step.epoch == max(push_epochs(schedule))
        if self.context.is_main:
            with staged_folder(self.checkpoints / name) as folder:
                save_model(self.model, folder, {"epoch": step.epoch, "phase": "push"})
                save_push_artifacts(result, self.model, self.data.push, folder, progress=True,
                                    images=images)
        self.progress["last_push"] = name
        self.log.info("pushed %d of %d prototypes", result.num_pushed, len(result.image_paths))
        return {}

    def _evaluate(self) -> dict[str, float]:
        batch, workers = self.config.batch.test, self.config.data.workers
        scores = {"val_acc": float("nan")}
        if self.data.validation_indices:
            loader = eval_loader(
                self.data.train_eval, self.data.validation_indices, batch, workers, self.context
            )
            scores["val_acc"] = evaluate(
                self.model, loader, self.context, self.precision, description="validation",
                max_batches=self.max_batches,
            )
        loader = eval_loader(
            self.data.test, range(len(self.data.test)), batch, workers, self.context
        )
        scores["test_acc"] = evaluate(
            self.model, loader, self.context, self.precision, description="test",
            max_batches=self.max_batches,
        )
        return scores

    def _finish_step(self, index: int, step: Step, row: dict[str, Any]) -> None:
        row = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        self.progress["metrics"].append(row)
        self.progress["completed_steps"] = index + 1
        val = row["val_acc"]
        best = self.progress["best_val_acc"]
        is_best = (
            self.progress["last_push"] is not None
            and step.kind in ("push", "last_layer")
            and val is not None
            and (best is None or val > best)
        )
        if is_best:
            self.progress["best_val_acc"] = val
        states = all_gather_objects(rng_state(), self.context)
        if self.context.is_main:
            if is_best:
                with staged_folder(self.checkpoints / "best") as folder:
                    save_model(self.model, folder, {k: row[k] for k in ("step", "epoch", "phase",
                                                                          "val_acc", "test_acc")})
            with staged_folder(self.checkpoints / "last") as folder:
                save_training_state(
                    folder, self.model, self.optimizers, self.scheduler, self.progress, states
                )
            self.log.write_metrics(self.progress["metrics"])
        barrier(self.context)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> Path:
        """Execute every remaining step, then write ``model/``; return its path."""
        start = self.progress["completed_steps"]
        for index in range(start, len(self.steps)):
            step = self.steps[index]
            began = time.perf_counter()
            row = self._push_step(step) if step.kind == "push" else self._train_step(index, step)
            row.update(self._evaluate())
            row.update(
                step=index, epoch=step.epoch, phase=step.kind, iteration=step.iteration,
                seconds=round(time.perf_counter() - began, 3),
            )
            self.log.info(
                "%s: %s", step.label,
                ", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)),
            )
            self._finish_step(index, step, row)
        return self._write_final()

    def _write_final(self) -> Path:
        final = self.out_dir / "model"
        if self.context.is_main:
            last = self.progress["metrics"][-1] if self.progress["metrics"] else {}
            metadata = {
                "val_acc": last.get("val_acc"), "test_acc": last.get("test_acc"),
                "steps": self.progress["completed_steps"], "seed": self.config.seed,
                "dry_run": self.dry_run, "best_val_acc": self.progress["best_val_acc"],
            }
            with staged_folder(final) as folder:
                save_model(self.model, folder, metadata)
                if self.progress["last_push"]:
                    source = self.checkpoints / self.progress["last_push"] / PROTOTYPES_DIR
                    shutil.copytree(source, folder / PROTOTYPES_DIR)
            self.log.info("final model written to %s", final)
        barrier(self.context)
        self.log.close()
        return final


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two parsed TOML tables."""
    keys: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


def _parsed(text: str | None) -> dict | None:
    try:
        return None if text is None else tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


def _check_resumed_config(text: str, out_dir: Path) -> None:
    """A resumed run must be given the settings it started with (kept in run.json too)."""
    path, run_file = out_dir / "config.toml", out_dir / "run.json"
    on_disk = path.read_text(encoding="utf-8") if path.is_file() else None
    started = read_json(run_file).get(STARTED_CONFIG) if run_file.is_file() else None
    started = _parsed(started if started is not None else on_disk) or {}
    keys = ", ".join(config_differences(started, tomllib.loads(text)))
    if not keys:
        return
    if _parsed(on_disk) != started:
        raise UserError(
            f"{path} was edited after this run started (it differs in {keys}); a run resumes "
            f"with the settings it started with ({run_file} keeps them): undo the edit, or train "
            "into a new --out folder"
        )
    raise UserError(
        f"the given config differs from {path}, the one this run was started with, in {keys}; "
        f"resume with --config {path}, or train into a new --out folder"
    )


def _write_run_files(config: RunConfig, out_dir: Path, context: DistContext, resume: bool) -> None:
    text = dump_config(config, "resolved configuration of this run")
    if resume and ((out_dir / "config.toml").is_file() or (out_dir / "run.json").is_file()):
        _check_resumed_config(text, out_dir)
        return
    path = out_dir / "config.toml"
    if (out_dir / "checkpoints" / "last").exists() and not resume:
        raise UserError(
            f"{out_dir} already holds a training run; use --resume or choose a new --out folder"
        )
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    write_json(
        out_dir / "run.json",
        {
            "protoexplain": __version__, **numeric_environment(),
            "python": platform.python_version(), "seed": config.seed,
            "world_size": context.world_size, "device": str(context.device),
            STARTED_CONFIG: text,
            "data_fingerprints": {
                key: fingerprint_folder(getattr(config.data, key))
                for key in ("train", "test", "push")
                if getattr(config.data, key)
            },
        },
    )


def train(
    config: RunConfig,
    out_dir: str | Path,
    *,
    device: str | torch.device | None = None,
    resume: bool = False,
    dry_run: bool = False,
) -> Path:
    """Train the model ``config`` says (``[model] architecture``: ProtoPNet or PIP-Net) into the
    run folder ``out_dir``; return ``model/``.

    Under torchrun each process calls this; they share the work (DDP) and rank 0 writes.
    ``resume`` continues after the last completed step with identical results.
    """
    out_dir = Path(out_dir)
    context = init_distributed(device if device is not None else config.device.name)
    try:
        data = build_run_data(config)  # bad data is refused before anything is written
        if context.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_run_files(config, out_dir, context, resume)
        barrier(context)
        trainer_class = Trainer
        if config.model.architecture == "pipnet":
            # imported here: pipnet_train builds on this module's Trainer
            from protoexplain.training.pipnet_train import PIPNetTrainer

            trainer_class = PIPNetTrainer
        trainer = trainer_class(config, data, out_dir, context, dry_run)
        if resume:
            trainer.resume()
        return trainer.run()
    finally:
        shutdown(context)
