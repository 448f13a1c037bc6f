"""Pipeline commands: ``run`` (everything from one config) and ``demo``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from protoexplain.fileio import atomic_open
from protoexplain.outputs import locked_output
from protoexplain.pipeline import load_pipeline_config, run_pipeline
from protoexplain.pipeline.packaged import packaged_config_names, packaged_config_text
from protoexplain.pipeline.summary import summary_lines

ORDER = 5


def _finish(run_dir: Path, outcomes: list, started: float) -> None:
    from protoexplain.models.checkpoint import read_model_description
    from protoexplain.training.distributed import is_main_process

    if not is_main_process():
        return

    ran = [o.name for o in outcomes if o.status == "ran"]
    skipped = [o.name for o in outcomes if o.status == "skipped"]
    print()
    print(f"pipeline finished in {time.perf_counter() - started:.0f} s "
          f"(ran: {', '.join(ran) or 'nothing'}; already complete: {', '.join(skipped) or '-'})")
    class_names = None
    for model_dir in (run_dir / "pruned", run_dir / "train" / "model"):
        if (model_dir / "model.json").is_file():
            class_names = read_model_description(model_dir)["spec"]["class_names"]
            break
    for line in summary_lines(run_dir, class_names):
        print(line)


def _run(args: argparse.Namespace) -> int:
    config, base = load_pipeline_config(args.config)
    run_dir = args.out or base / "runs" / args.config.stem
    device = args.device or config.device
    started = time.perf_counter()
    with locked_output(run_dir, "run"):
        outcomes = run_pipeline(config, run_dir, device=device)
    _finish(Path(run_dir), outcomes, started)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from protoexplain.device import resolve_device

    device = str(resolve_device(args.device))
    run_dir = args.out
    config_copy = run_dir / "demo.toml"
    run_dir.mkdir(parents=True, exist_ok=True)
    if not config_copy.exists():
        with atomic_open(config_copy, "w", encoding="utf-8") as handle:
            handle.write(packaged_config_text("demo"))
    config, _ = load_pipeline_config(config_copy)
    print(f"protoexplain demo: synthetic '{config.dataset.preset}' birds, "
          f"{config.train.model.backbone} backbone, everything on {device}; "
          f"config: {config_copy}")
    started = time.perf_counter()
    with locked_output(run_dir, "demo"):
        outcomes = run_pipeline(config, run_dir, device=device)
    _finish(run_dir, outcomes, started)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` and ``demo``."""
    parser = subparsers.add_parser(
        "run",
        help="run the whole pipeline (data, training, pruning, explanation, report) from a config",
        description=(
            "Run the whole pipeline from one TOML config: data (synthetic preset, prepared CUB "
            "or any ImageFolder), training with pushes, optional pruning, evaluation, nearest "
            "patches, explanation scores on train and test, statistics and the HTML report. "
            "Finished steps are skipped, so rerunning an interrupted run continues it."
        ),
        epilog="ready-made configs: 'protoexplain config --pipeline NAME --out FILE' writes one "
        f"(NAME: {', '.join(packaged_config_names())}); example: "
        "protoexplain run cub-resnet34.toml --out runs/resnet34",
    )
    parser.add_config("pipeline config (TOML)")
    parser.add_output("run folder (default: runs/<config name> beside the config)")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: the config's)")
    parser.set_defaults(func=_run)

    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on built-in synthetic data in a few minutes on a CPU",
        description=(
            "Generate synthetic bird-like images whose factors are known, train a small "
            "ProtoPNet, explain its prototypes and write an HTML report, in a few minutes on a CPU "
            "(on the GPU when there is one; --device cpu keeps it on the CPU). Rerunning "
            "continues or skips what is finished."
        ),
    )
    parser.add_output("output folder (default: demo-output)", default=Path("demo-output"))
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.set_defaults(func=_demo)


