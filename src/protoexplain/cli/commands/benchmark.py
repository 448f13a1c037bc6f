"""Benchmark commands: ``benchmark faithfulness``, ``benchmark correctness`` and
``benchmark combine``."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from protoexplain.choices import BACKGROUNDS
from protoexplain.cli.arguments import positive_int
from protoexplain.errors import UserError
from protoexplain.outputs import locked_output

ORDER = 80


def _faithfulness(args: argparse.Namespace) -> int:
    from protoexplain.benchmark import FaithfulnessConfig, quick_config, run_faithfulness
    from protoexplain.benchmark.ranking import TRUE_FACTOR

    config = quick_config() if args.quick else FaithfulnessConfig()
    if args.presets:
        presets = tuple(p.strip() for p in args.presets.split(",") if p.strip())
        unknown = sorted(set(presets) - set(TRUE_FACTOR))
        if unknown or not presets:
            raise UserError(
                f"--presets {args.presets!r}: unknown {unknown}; use names from "
                f"{sorted(TRUE_FACTOR)}, separated by commas"
            )
        config = replace(config, presets=presets)
    if args.workers < 0:
        raise UserError(f"--workers {args.workers}: use 0 (no worker processes) or more")
    config = replace(config, seed=args.seed, background=args.background, workers=args.workers)
    if args.train_per_class is not None:
        config = replace(config, train_per_class=args.train_per_class)
    if args.epochs is not None:
        if args.epochs < 2:
            raise UserError(f"--epochs {args.epochs}: use at least 2 (one push at the middle)")
        config = replace(config, epochs=args.epochs)
    presets = _count(config.presets, "preset")
    if args.seeds:
        from protoexplain.benchmark.seeds import run_seeds

        with locked_output(args.out, "benchmark faithfulness"):
            summary = run_seeds(config, _seed_list(args.seeds), args.out, device=args.device)
        seeds = ", ".join(map(str, summary["seeds"]))
        return _report(args.out, (
            f"faithfulness benchmark: {presets} × seeds {seeds}; {_recommended(summary)}; "
            f"wrote one run per seed to {args.out}/seed-N/ and "
            f"the pooled {', '.join(summary['files'])}, benchmark.json to {args.out}/"
        ))
    with locked_output(args.out, "benchmark faithfulness"):
        summary = run_faithfulness(config, args.out, device=args.device)
    return _report(args.out, (
        f"faithfulness benchmark: {presets} in {summary['wall_seconds']:.0f} s "
        f"on {summary['device']}; {_recommended(summary)}; "
        f"wrote {', '.join(summary['files'])}, benchmark.json, data/ and runs/ to {args.out}/"
    ))


def _recommended(summary: dict) -> str:
    """``recommended family perceptual`` or ``no family recommended``."""
    family = summary["recommended_family"]
    return f"recommended family {family}" if family else "no family recommended"


def _count(items: tuple, noun: str) -> str:
    """``1 preset``, ``2 presets``."""
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _report(out: Path, closing: str, table: str = "faithfulness.md") -> int:
    """Print the markdown ``table`` written to ``out`` and a closing line; exit status 0."""
    print((out / table).read_text(encoding="utf-8"))
    print(closing)
    return 0


def _correctness(args: argparse.Namespace) -> int:
    from protoexplain.benchmark.correctness import PRESETS, CorrectnessConfig, quick_correctness
    from protoexplain.benchmark.correctness_run import run_correctness

    config = quick_correctness() if args.quick else CorrectnessConfig()
    if args.presets:
        named = tuple(p.strip() for p in args.presets.split(",") if p.strip())
        config = replace(config, presets=tuple(p for p in named if p != "mixed"))
    if args.parts_size is not None:
        config = replace(config, parts_size=args.parts_size)
    if args.seeds:
        config = replace(config, seeds=_seed_list(args.seeds))
    if args.workers < 0:
        raise UserError(f"--workers {args.workers}: use 0 (no worker processes) or more")
    config = replace(config, workers=args.workers, contrast=config.contrast and not args.no_mixed)
    config.check()
    with locked_output(args.out, "benchmark correctness"):
        summary = run_correctness(config, args.out, device=args.device)
    names = [*(p for p in PRESETS if p in config.presets),
             *([f"mixed at {config.parts_size} px (M3, M4)"] if config.contrast else [])]
    return _report(args.out, (
        f"correctness benchmark: presets {', '.join(names)} × seeds "
        f"{', '.join(map(str, summary['seeds']))} in {summary['wall_seconds']:.0f} s on "
        f"{summary['device']}; wrote {', '.join(summary['files'])} to {args.out}/ and the "
        f"data, models and saved measurements to {args.out}/seed-N/"
    ), "correctness.md")


def _seed_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(
            f"--seeds {text!r}: give whole numbers separated by commas, e.g. 0,1,2"
        ) from None


def _combine(args: argparse.Namespace) -> int:
    from protoexplain.benchmark.correctness_run import combine_correctness
    from protoexplain.benchmark.seeds import combine_runs

    correctness = all((run / "correctness.json").is_file() for run in args.runs)
    with locked_output(args.out, "benchmark combine"):
        if correctness:
            summary = combine_correctness(args.runs, args.out)
        else:
            summary = combine_runs(args.runs, args.out)
    seeds = ", ".join(map(str, summary["seeds"]))
    if correctness:
        return _report(args.out, (
            f"combined {len(args.runs)} correctness runs (seeds {seeds}); wrote "
            f"{', '.join(summary['files'])} to {args.out}/"
        ), "correctness.md")
    return _report(args.out, (
        f"combined {len(summary['runs'])} runs (seeds {seeds}; presets "
        f"{', '.join(summary['presets_done'])}); wrote {', '.join(summary['files'])}, "
        f"benchmark.json to {args.out}/"
    ))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the benchmark commands."""
    parser = subparsers.add_parser(
        "benchmark",
        help="check the explanation method against synthetic data with known factors",
        description="Benchmarks of the explanation method.",
    )
    commands = parser.add_subparsers(dest="benchmark_command", metavar="BENCHMARK")
    commands.required = True
    sub = commands.add_parser(
        "faithfulness",
        help="does each prototype's top characteristic match the factor that defines the classes?",
        description=(
            "For each isolated synthetic preset (classes differ only in hue, shape, texture, "
            "contrast or saturation) train a small ProtoPNet (small_cnn from scratch, 64 px, 400 "
            "images and 10 prototypes per class, no warm-up, pushes after the middle and the "
            "last epoch), "
            "explain it with the paper, paper+calibrated, perceptual and perceptual+calibrated "
            "families, and report per preset and family the share of prototypes whose most "
            "important characteristic is the true factor and its mean rank, for the trained "
            "model and three controls: the trained trunk with re-initialised prototypes and last "
            "layer, the trained trunk with prototypes set to random training-image patches, and "
            "a fully re-initialised model, with a 95% interval for every share and a p-value "
            "for trained versus each control. Calibrated families use strengths with "
            "equal mean CIEDE2000 colour difference; dose-response curves are drawn per preset."
        ),
        epilog="example: protoexplain benchmark faithfulness --quick --out bench/faithfulness",
    )
    _out_and_quick(sub, "benchmark-faithfulness",
                   "tiny data and few epochs: a smoke run of about 2 minutes on 2 CPU cores")
    sub.add_argument("--presets", default="",
                     help="comma-separated subset of presets (default: all five isolated presets)")
    sub.add_argument("--train-per-class", type=int, default=None, metavar="N",
                     help="training images per class (default: 400, quick: 16)")
    sub.add_argument("--epochs", type=int, default=None, metavar="N",
                     help="training epochs, with pushes after N/2 and N (default: 30, quick: 4)")
    sub.add_argument("--background", default="plain", choices=BACKGROUNDS,
                     help="background of the synthetic images (default: plain; like-parts: no "
                     "free factor separates bird and background, see docs/faithfulness.md)")
    seeding = sub.add_mutually_exclusive_group()
    seeding.add_argument("--seed", type=int, default=0,
                         help="seed of data, training and controls (default: 0)")
    seeding.add_argument("--seeds", default="", metavar="S1,S2,...",
                         help="run once per seed into OUT/seed-N and pool the runs in OUT "
                         "(a finished seed is not run again)")
    _device_and_workers(sub)
    sub.set_defaults(func=_faithfulness)
    _register_correctness(commands)
    combine = commands.add_parser(
        "combine",
        help="pool finished faithfulness (or correctness) runs that differ only in their seed",
        description=(
            "Pool the prototypes of finished 'benchmark faithfulness' runs whose settings differ "
            "only in the seed: shares, 95% intervals and trained-versus-control p-values over all "
            "runs, and each run's own share (seed_shares) beside them. Presets that not every run "
            "finished are left out. Folders of 'benchmark correctness' runs are pooled the same "
            "way: M1-M4 recomputed from all their per-prototype rows."
        ),
        epilog="example: protoexplain benchmark combine bench/s0 bench/s1 bench/s2 --out bench/all",
    )
    combine.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                         help="output folders of 'benchmark faithfulness' (or all of "
                         "'benchmark correctness')")
    combine.add_argument("--out", type=Path, required=True, help="folder for the pooled tables")
    combine.set_defaults(func=_combine)


def _register_correctness(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "correctness",
        help="do the explanations describe the model? (against re-rendered interventions)",
        description=(
            "For the hue, shape and texture presets train the faithfulness benchmark's small "
            "ProtoPNet and build its three controls, per seed. For every prototype and "
            "characteristic compare the method's importance (paper, perceptual and paper-lightness "
            "families) with "
            "the interventional reference: the model's own similarity change when the generator "
            "re-renders the test images with one factor changed. Doses and strengths are matched "
            "at mean CIEDE2000 2.5, 5 and 10. Reports M1 (per characteristic, Spearman across "
            "prototypes after a centred log-ratio), M2 (per prototype, top-1 agreement against "
            "two baselines), and on the mixed preset M3 (hue model vs shape model, AUC) and M4 "
            "(head hue vs body shape), each with a 95% bootstrap interval clustered by model. "
            "Run again into the same folder to resume after an interruption."
        ),
        epilog="example: protoexplain benchmark correctness --quick --out bench/correctness",
    )
    _out_and_quick(sub, "benchmark-correctness",
                   "tiny data and models, one seed: a smoke run of under a minute on 2 CPU "
                   "cores (numbers not meaningful)")
    sub.add_argument("--presets", default="",
                     help="comma-separated subset of hue, shape, texture (default: all three); "
                     "the mixed models run unless --no-mixed, and 'mixed' alone runs only them")
    sub.add_argument("--seeds", default="", metavar="S1,S2,...",
                     help="seeds of data, training and controls (default: 0,1,2; quick: 0)")
    sub.add_argument("--no-mixed", action="store_true",
                     help="skip the two mixed-preset models (M3 and M4 are not measured)")
    sub.add_argument("--parts-size", type=positive_int, default=None, metavar="PX",
                     help="image size of the mixed-preset models (default 64; quick: 32)")
    _device_and_workers(sub)
    sub.set_defaults(func=_correctness)


def _out_and_quick(sub: argparse.ArgumentParser, folder: str, quick_help: str) -> None:
    sub.add_argument("--out", type=Path, default=Path(folder),
                     help=f"output folder (default: ./{folder})")
    sub.add_argument("--quick", action="store_true", help=quick_help)


def _device_and_workers(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    sub.add_argument("--workers", type=int, default=0, metavar="N",
                     help="data-loader processes for training and the image modifications "
                     "(default 0; results do not depend on it)")
