"""The pipeline's steps: data, train, prune, evaluate, nearest, explain, report.

Each step calls the library function its command calls, with its section of the pipeline config
(which *is* that step's config), and writes the config it resolved (device and data paths filled
in) to ``RUN_DIR/.pipeline/<step>.toml``; the training step's is also ``RUN_DIR/train.toml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from protoexplain.errors import UserError
from protoexplain.fileio import atomic_open
from protoexplain.outputs import locked_output
from protoexplain.pipeline.config import PipelineConfig
from protoexplain.tomlconfig import dump_toml

MARKER_DIR = ".pipeline"


@dataclass
class Context:
    """Where a pipeline run reads and writes."""

    config: PipelineConfig
    run_dir: Path
    device: str
    log: Callable[[str], None] = print
    writes: bool = True  # process 0 writes the resolved configs; the other torchrun ones do not

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

    def record(self, step: str, config: Any, *also: Path) -> None:
        """Write the config ``step`` runs with to ``.pipeline/<step>.toml`` (and to ``also``)."""
        if not self.writes:
            return
        text = dump_toml(config, f"the settings protoexplain run used for its {step} step")
        for path in (self.run_dir / MARKER_DIR / f"{step}.toml", *also):
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(path, "w", encoding="utf-8") as handle:
                handle.write(text)


@dataclass(frozen=True)
class Step:
    """One stage of the pipeline: a name, the settings it depends on, and what it runs."""

    name: str
    settings: Callable[[PipelineConfig], object]
    run: Callable[[Context], None]
    enabled: Callable[[PipelineConfig], bool] = field(default=lambda config: True)
    every_process: bool = False  # runs in every torchrun process (it shards its own work)


def _data(context: Context) -> None:
    dataset = context.config.dataset
    context.record("data", dataset)
    if dataset.source == "synthetic":
        from protoexplain.data.synth import generate_synthetic

        generate_synthetic(context.data_dir, dataset.preset, dataset.seed, dataset.size,
                           dataset.train_per_class, dataset.test_per_class,
                           background=dataset.background)
    elif dataset.source == "cub":
        from protoexplain.data.cub import prepare_cub

        prepare_cub(dataset.root, context.data_dir, dataset.image_format)
    for split in (context.train_dir, context.test_dir):
        if not split.is_dir():
            raise UserError(f"{split} not found: the dataset root must hold train/ and test/")
    context.log(f"  data in {context.data_dir}")


def _train(context: Context) -> None:
    from protoexplain.training import train

    config = context.config.train
    data = replace(config.data, train=config.data.train or str(context.train_dir.resolve()),
                   test=config.data.test or str(context.test_dir.resolve()))
    config = replace(config, data=data)
    context.record("train", config, context.run_dir / "train.toml")
    out = context.run_dir / "train"
    with locked_output(out, "train"):
        model = train(config, out, device=context.device,
                      resume=(out / "checkpoints" / "last").is_dir())
    context.log(f"  trained model in {model}")


def _prune(context: Context) -> None:
    from protoexplain.analysis.prune import prune_model_folder
    from protoexplain.device import resolve_device

    config = context.config.prune
    context.record("prune", config)
    out = context.run_dir / "pruned"
    with locked_output(out, "prune"):
        report = prune_model_folder(context.trained_model, context.train_dir, out, config,
                                    device=resolve_device(context.device), progress=True)
    context.log(f"  kept {int(report['kept'].sum())} of {len(report)} prototypes in {out}")


def _evaluate(context: Context) -> None:
    from protoexplain.analysis.evaluate import evaluate_models, save_evaluation
    from protoexplain.device import resolve_device
    from protoexplain.models import load_model

    config = context.config.evaluate
    context.record("evaluate", config)
    model = load_model(context.model_dir, device=resolve_device(context.device))
    evaluation = evaluate_models([model], context.test_dir, names=[str(context.model_dir)],
                                 batch_size=config.batch_size, workers=config.workers,
                                 progress=True)
    out = context.run_dir / "evaluation"
    with locked_output(out, "evaluate"):
        result = save_evaluation(evaluation, out)
    context.log(f"  top-1 {result['models'][0]['top1']:.2%} on {result['n_images']} test images")


def _nearest(context: Context) -> None:
    from protoexplain.analysis.nearest import open_dataset, write_nearest
    from protoexplain.device import resolve_device
    from protoexplain.models import load_model

    config = context.config.nearest
    context.record("nearest", config)
    model = load_model(context.model_dir, device=resolve_device(context.device))
    _, path = write_nearest(model, open_dataset(model, context.train_dir),
                            context.run_dir / "nearest", config, progress=True)
    context.log(f"  wrote {path}")


def _explain(context: Context) -> None:
    from protoexplain.explain.folder import explain_folder

    config = replace(context.config.explain, device=context.device)
    context.record("explain", config)
    for split in config.splits:
        out = context.run_dir / "explain" / split
        compare = None
        if split == "test" and "train" in config.splits:
            compare = context.run_dir / "explain" / "train"  # Welch's t-test against train
        # the step runs only when unfinished or when [explain] changed: replacing is intended
        explain_folder(context.model_dir, context.split_dir(split), out, config,
                       compare_with=compare, overwrite=True)
        context.log(f"  explained the {split} split into {out}")


def _report(context: Context) -> None:
    from protoexplain.report.inputs import locate_inputs
    from protoexplain.report.render import build_report

    config = replace(context.config.report, device=context.device)
    context.record("report", config)
    out = context.run_dir / "report"
    inputs = locate_inputs(context.run_dir)
    with locked_output(out, "report"):
        summary = build_report(inputs, out, config)
    context.log(f"  report in {summary.index} ({summary.pages} prototype pages)")


STEPS: tuple[Step, ...] = (
    Step("data", lambda c: asdict(c.dataset), _data),
    Step("train", lambda c: asdict(c.train), _train, every_process=True),
    Step("prune", lambda c: asdict(c.prune), _prune, lambda c: c.prune.enabled),
    Step("evaluate", lambda c: asdict(c.evaluate), _evaluate),
    Step("nearest", lambda c: asdict(c.nearest), _nearest, lambda c: c.nearest.enabled),
    Step("explain", lambda c: asdict(c.explain), _explain, lambda c: bool(c.explain.splits),
         every_process=True),
    Step("report", lambda c: asdict(c.report), _report, lambda c: c.report.enabled),
)

