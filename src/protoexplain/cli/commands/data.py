"""Data commands: ``prepare-cub``, ``augment``, ``synth``."""

from __future__ import annotations

import argparse
import warnings

from protoexplain.choices import BACKGROUNDS

ORDER = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the data commands."""
    cub = subparsers.add_parser(
        "prepare-cub",
        help="crop CUB-200-2011 to its bounding boxes and split it into train/test folders",
        description=(
            "Crop every CUB-200-2011 image to its bounding box (img[y:y+h, x:x+w], coordinates "
            "truncated to int), join images.txt, bounding_boxes.txt and train_test_split.txt by "
            "image id, and write DIR/{train,test}/<class>/<file> (DIR given by --out). "
            "Rerunning skips finished images, so an interrupted run resumes."
        ),
    )
    cub.add_argument("cub_root", metavar="CUB_ROOT", help="unpacked CUB_200_2011 folder")
    cub.add_output("output folder (required)", required=True, legacy_positional="OUT_DIR")
    cub.add_argument("--format", dest="image_format", choices=("jpg", "png"), default="jpg",
                     help="output image format (default: jpg)")
    cub.add_argument("--quality", type=int, default=95, help="JPEG quality 1-100 (default: 95)")
    _on_error(cub)
    cub.set_defaults(func=_prepare_cub)

    augment = subparsers.add_parser(
        "augment",
        help="write the original offline augmentation (3 pipelines x 10 copies per image)",
        description=(
            "Offline augmentation of an ImageFolder tree as in the original ProtoPNet: rotation "
            "±15°, perspective skew 0.2 and shear ±10°, each followed by a horizontal flip with "
            "probability 0.5; COPIES per pipeline per image, originals not included. "
            "Deterministic under --seed; rerunning skips finished copies."
        ),
    )
    augment.add_argument("in_dir", metavar="IN_DIR", help="ImageFolder tree, e.g. data/train")
    augment.add_output("output folder (required)", required=True, legacy_positional="OUT_DIR")
    augment.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    augment.add_argument("--copies-per-pipeline", type=int, default=10, metavar="COPIES",
                         help="copies per pipeline and image (default: 10)")
    _on_error(augment)
    augment.set_defaults(func=_augment)

    from protoexplain.data.synth_factors import PRESETS

    presets = "; ".join(f"{name}: {preset.description}" for name, preset in PRESETS.items())
    synth = subparsers.add_parser(
        "synth",
        help="generate synthetic bird-like images whose factors (hue, shape, ...) are known",
        description=(
            "Generate a synthetic data set in ImageFolder layout (train/, test/, PNG) with "
            f"factors.csv and synth.json. Presets: {presets}. Same arguments, same bytes."
        ),
    )
    synth.add_output("output folder, new or empty (required)", required=True,
                     legacy_positional="OUT_DIR")
    synth.add_argument("--preset", default="mixed", choices=list(PRESETS),
                       help="which factors define the classes (default: mixed)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    synth.add_argument("--size", type=int, default=128, help="image side in pixels (default: 128)")
    synth.add_argument("--train-per-class", type=int, default=100,
                       help="training images per class (default: 100)")
    synth.add_argument("--test-per-class", type=int, default=30,
                       help="test images per class (default: 30)")
    synth.add_argument("--masks", action="store_true",
                       help="also write part-label masks under DIR/masks/")
    synth.add_argument("--background", default="plain", choices=BACKGROUNDS,
                       help="plain (default): dull, unpatterned background; like-parts: "
                       "saturation, value and texture pattern drawn like the parts', so that no "
                       "free factor tells the bird from its surroundings")
    synth.set_defaults(func=_synth)


def _on_error(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--on-error", choices=("error", "skip"), default="error",
        help="unreadable images: stop with an error naming the file (default) or skip and count",
    )


def _prepare_cub(args: argparse.Namespace) -> int:
    from protoexplain.data.cub import prepare_cub

    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if args.on_error == "skip" else "default")
        summary = prepare_cub(args.cub_root, args.out, args.image_format, args.quality,
                              args.on_error)
    print(
        f"prepare-cub: {summary.counts['train']} train + {summary.counts['test']} test images, "
        f"{summary.classes} classes in {summary.out_dir} ({summary.written} written, "
        f"{summary.existing} already there, {len(summary.skipped)} skipped)"
    )
    for path in summary.skipped:
        print(f"  skipped unreadable image: {path}")
    return 0


def _augment(args: argparse.Namespace) -> int:
    from protoexplain.data.augment import augment_folder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if args.on_error == "skip" else "default")
        summary = augment_folder(args.in_dir, args.out, args.seed, args.copies_per_pipeline,
                                 args.on_error)
    print(
        f"augment: {summary.images} images -> {summary.written} copies written, "
        f"{summary.existing} already there, {len(summary.skipped)} skipped, in {summary.out_dir}"
    )
    for path in summary.skipped:
        print(f"  skipped unreadable image: {path}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from protoexplain.data.synth import generate_synthetic

    meta = generate_synthetic(args.out, args.preset, args.seed, args.size,
                              args.train_per_class, args.test_per_class, args.masks,
                              background=args.background)
    counts = meta["counts"]
    print(
        f"synth: preset {args.preset}, {len(meta['classes'])} classes, {counts['train']} train + "
        f"{counts['test']} test images of {args.size}px ({args.background} background) in "
        f"{args.out} "
        "(factors.csv, synth.json)"
    )
    return 0
