"""Explanation commands: ``modify`` (write modified images) and ``explain`` (importance scores)."""

from __future__ import annotations

import argparse
from pathlib import Path

from protoexplain.choices import EXPLAIN_MODES, MODIFY_AT
from protoexplain.cli.arguments import non_negative_int, positive_int
from protoexplain.cli.parser import add_renamed_option
from protoexplain.errors import UserError

ORDER = 40

_MODES_HELP = (
    "faithful (default): modifications at each image's native resolution in DataLoader "
    "workers, exactly as the original; fast: batched on the device after resizing"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``modify`` and ``explain``."""
    modify = subparsers.add_parser(
        "modify",
        help="write modified copies of an image folder (contrast, hue, shape, texture, ...)",
        description=(
            "Apply each modification to every image of an ImageFolder tree at its native "
            "resolution and write DIR/<name>_<strength>/<class>/<file> (DIR given by --out), "
            "as the original workflow did. For looking at the changes: 'explain' computes them "
            "in memory."
        ),
    )
    modify.add_argument("in_dir", metavar="IN_DIR", help="ImageFolder tree (IN_DIR/<class>/...)")
    modify.add_output("output folder (required)", required=True, legacy_positional="OUT_DIR")
    _modification_options(modify)
    _strengths_option(modify, "e.g. hue=0.1,0.2 for one folder per strength")
    modify.add_argument("--format", dest="image_format", choices=("png", "jpg"), default="png",
                        help="png (lossless, default) or jpg (quality 95)")
    modify.add_argument("--workers", type=non_negative_int, default=0,
                        help="worker processes (default: 0)")
    modify.add_argument("--on-error", choices=("error", "skip"), default="error",
                        help="unreadable images: stop (default) or skip and count")
    modify.set_defaults(func=_modify)

    explain = subparsers.add_parser(
        "explain",
        help="score how much each prototype relies on hue, shape, texture, contrast, ...",
        description=(
            "Nauta et al.'s explanation: for every image and prototype, the similarity s at the "
            "prototype's nearest latent cell and, per modification, the drop Δ = s − s_m at the "
            "same cell. Writes DIR/local_scores.parquet (DIR given by --out), global_scores.csv "
            "(Σ Δ·s / Σ s with bootstrap 95% intervals and per-prototype significance), "
            "stats.json, summary.txt and explain.json. A killed run resumes when rerun with the "
            "same arguments. Launch with torchrun to share the images over several processes."
        ),
    )
    explain.add_argument("model_dir", metavar="MODEL_DIR", help="model folder (model.json)")
    explain.add_argument("data_dir", metavar="DATA_DIR", help="ImageFolder tree to explain")
    explain.add_output("output folder (required)", required=True, legacy_positional="OUT_DIR")
    _modification_options(explain)
    _strengths_option(explain, "e.g. hue=0.05,0.1,0.2 for a dose-response")
    explain.add_argument("--calibrate", type=float, default=None, metavar="DELTA_E",
                         help="choose each modification's strength so that its mean CIEDE2000 "
                         "change on a sample of DATA_DIR equals DELTA_E (e.g. 5); the chosen "
                         "strengths are recorded in explain.json")
    explain.add_argument("--calibration-images", type=int, default=32, metavar="N",
                         help="images sampled for --calibrate (default: 32)")
    explain.add_argument("--mode", choices=EXPLAIN_MODES, default="faithful",
                         help=_MODES_HELP)
    explain.add_argument("--modify-at", choices=MODIFY_AT, default="native",
                         help="faithful mode: modify each image at its native resolution, then "
                         "resize (default, the paper's order), or resize to the model's input "
                         "size first, so that size-dependent modifications (the sine warp's "
                         "pixel amplitude, texture filters) act alike on every image; fast mode "
                         "always modifies at the model's size")
    explain.add_argument("--batch-size", type=positive_int, default=32,
                         help="images per batch; each brings 1 + K forward passes (default: 32)")
    explain.add_argument("--workers", type=non_negative_int, default=0,
                         help="DataLoader worker processes (default: 0)")
    explain.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    explain.add_argument("--local-top-k", type=positive_int, default=None, metavar="K",
                         help="keep only each image's K most similar prototypes in the local "
                         "table (global scores always use all)")
    explain.add_argument("--compare-with", default=None, metavar="DIR",
                         help="another explain output folder (e.g. the train split): Welch's "
                         "t-test of the global scores per characteristic")
    explain.add_argument("--max-images", type=int, default=None, metavar="N",
                         help="explain only N images spread evenly over the folder")
    explain.add_argument("--bootstrap", type=int, default=200, metavar="R",
                         help="Poisson bootstrap replicates for the 95%% intervals (default: 200)")
    explain.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    explain.add_argument("--chunk-images", type=int, default=512, metavar="N",
                         help="images per resumable chunk (default: 512)")
    explain.add_argument("--on-error", choices=("error", "skip"), default="error",
                         help="unreadable images: stop (default) or skip and count")
    explain.add_argument("--overwrite", action="store_true",
                         help="replace a finished explanation in --out made with other "
                         "settings (without it such a folder is refused; one made with the same "
                         "settings is reported as already complete)")
    explain.set_defaults(func=_explain)


def _modification_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--modifications", nargs="+", default=None, metavar="NAME",
                        help="modifications to use (default: all of the family)")
    parser.add_argument("--family", default="paper",
                        help="modification family (default: paper, Nauta et al.)")


def _strengths_option(parser: argparse.ArgumentParser, example: str) -> None:
    """``--strengths NAME=V1,V2,...`` (repeatable); the old ``--strength`` still works."""
    action = parser.add_argument(
        "--strengths", action="append", default=[], metavar="NAME=V1,V2,...",
        help=f"one or more strengths of a modification (repeatable), {example}",
    )
    add_renamed_option(parser, "--strength", action)


def _parse_strengths(items: list[str]) -> dict[str, list[float]]:
    parsed: dict[str, list[float]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        try:
            numbers = [float(v) for v in values.split(",")] if sep else []
        except ValueError:
            numbers = []
        if not name or not numbers:
            raise UserError(f"cannot read strength {item!r}; write NAME=V1,V2,..., e.g. hue=0.1")
        parsed.setdefault(name, []).extend(numbers)
    return parsed


def _modify(args: argparse.Namespace) -> int:
    from protoexplain.data import ImageFolderDataset
    from protoexplain.explain.export import write_modified_folder
    from protoexplain.explain.modifications import resolve_settings

    settings = resolve_settings(
        args.modifications, _parse_strengths(args.strengths), args.family
    )
    dataset = ImageFolderDataset(args.in_dir, on_error=args.on_error)
    written, skipped = write_modified_folder(
        dataset, args.out, settings, args.image_format, args.workers
    )
    names = ", ".join(f"{s.name}={s.strength:g}" for s in settings)
    print(f"modify: {written} images written to {args.out} ({names}); {len(skipped)} skipped")
    return 0


def _calibrate(args: argparse.Namespace, dataset, config, image_size: int) -> dict:
    """Set ``config.strengths`` to equal-ΔE strengths, measured on the images the modifications
    will receive (see ``--modify-at``); return the calibration record."""
    from protoexplain.explain.families.calibration import calibrate_strengths, sample_images
    from protoexplain.explain.inputs import modification_input

    if args.strengths:
        raise UserError("give either --strengths or --calibrate, not both")
    prepare = modification_input(config.modify_at, image_size)
    sample = sample_images(dataset, args.calibration_images, args.seed)
    calibration = calibrate_strengths(
        [prepare(image) for image in sample], args.family, args.calibrate,
        names=args.modifications,
    )
    config.strengths = calibration.strengths()
    return calibration.to_dict()


def _explain(args: argparse.Namespace) -> int:
    from protoexplain.analysis.evaluate import check_classes
    from protoexplain.data import ImageFolderDataset
    from protoexplain.explain.engine import GLOBAL_FILE, ExplainConfig, run_explain
    from protoexplain.models import load_model
    from protoexplain.training.distributed import init_distributed, is_main_process, shutdown

    config = ExplainConfig(
        modifications=args.modifications,
        strengths=_parse_strengths(args.strengths),
        family=args.family,
        mode=args.mode,
        modify_at=args.modify_at,
        batch_size=args.batch_size,
        workers=args.workers,
        local_top_k=args.local_top_k,
        max_images=args.max_images,
        bootstrap=args.bootstrap,
        seed=args.seed,
        chunk_images=args.chunk_images,
    )
    config.check()
    if (args.compare_with is not None and is_main_process()
            and not (Path(args.compare_with) / GLOBAL_FILE).is_file()):
        raise UserError(f"--compare-with {args.compare_with}: {GLOBAL_FILE} not found there")
    context = init_distributed(args.device)
    try:
        config.device = str(context.device)
        model = load_model(args.model_dir, device=context.device)
        dataset = ImageFolderDataset(args.data_dir, on_error=args.on_error)
        check_classes(model, dataset.classes, str(args.model_dir), dataset.root)
        describe = {"model": str(args.model_dir), "data": str(args.data_dir)}
        if args.calibrate is not None:
            describe["calibration"] = _calibrate(args, dataset, config, model.input_spec.image_size)
        result = run_explain(model, dataset, args.out, config, compare_with=args.compare_with,
                             describe=describe, overwrite=args.overwrite)
    finally:
        shutdown(context)
    if result is not None and result.already_complete:
        print(f"explain: {args.out} is already complete with these settings; nothing to do "
              "(--overwrite recomputes it)")
    elif result is not None:
        print(
            f"explain: {result.n_images} images, {model.num_prototypes} prototypes, "
            f"{result.global_scores.groupby(['modification', 'strength']).ngroups} settings "
            f"({args.mode}) -> {args.out}: local_scores.parquet, global_scores.csv, "
            "stats.json, summary.txt, explain.json"
        )
        print((result.out_dir / "summary.txt").read_text(encoding="utf-8"), end="")
    return 0
