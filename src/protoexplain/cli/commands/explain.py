"""Explanation commands: ``modify`` (write modified images) and ``explain`` (importance scores)."""

from __future__ import annotations

import argparse
from typing import Any

from protoexplain.choices import EXPLAIN_MODES, MODIFY_AT
from protoexplain.cli.arguments import (
    add_setting,
    config_from_args,
    non_negative_int,
    positive_int,
)
from protoexplain.cli.parser import add_renamed_option
from protoexplain.data.folder import ON_ERROR_POLICIES
from protoexplain.errors import UserError
from protoexplain.explain.config import ExplainConfig

ORDER = 40

#: The options of ``explain`` made from :class:`ExplainConfig` fields, with their argparse extras
#: (the modifications and strengths options are shared with ``modify``).
_EXPLAIN_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("calibrate", {"type": float, "metavar": "DELTA_E"}),
    ("calibration_images", {"type": positive_int, "metavar": "N"}),
    ("mode", {"choices": EXPLAIN_MODES}),
    ("modify_at", {"choices": MODIFY_AT}),
    ("batch_size", {"type": positive_int}),
    ("workers", {"type": non_negative_int}),
    ("device", {}),
    ("local_top_k", {"type": non_negative_int, "metavar": "K"}),
    ("max_images", {"type": non_negative_int, "metavar": "N"}),
    ("bootstrap", {"type": non_negative_int, "metavar": "R"}),
    ("seed", {"type": int}),
    ("chunk_images", {"type": positive_int, "metavar": "N"}),
    ("on_error", {"choices": ON_ERROR_POLICIES}),
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
    add_setting(modify, ExplainConfig, "on_error", choices=ON_ERROR_POLICIES)
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
    for name, extra in _EXPLAIN_OPTIONS:
        add_setting(explain, ExplainConfig, name, **extra)
    explain.add_argument("--compare-with", default=None, metavar="DIR",
                         help="another explain output folder (e.g. the train split): Welch's "
                         "t-test of the global scores per characteristic")
    explain.add_argument("--overwrite", action="store_true",
                         help="replace a finished explanation in --out made with other "
                         "settings (without it such a folder is refused; one made with the same "
                         "settings is reported as already complete)")
    explain.set_defaults(func=_explain)


def _modification_options(parser: argparse.ArgumentParser) -> None:
    add_setting(parser, ExplainConfig, "modifications", nargs="+", metavar="NAME")
    add_setting(parser, ExplainConfig, "family")


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
        args.modifications or None, _parse_strengths(args.strengths), args.family
    )
    dataset = ImageFolderDataset(args.in_dir, on_error=args.on_error)
    written, skipped = write_modified_folder(
        dataset, args.out, settings, args.image_format, args.workers
    )
    names = ", ".join(f"{s.name}={s.strength:g}" for s in settings)
    print(f"modify: {written} images written to {args.out} ({names}); {len(skipped)} skipped")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from protoexplain.explain.folder import explain_folder

    config = config_from_args(ExplainConfig, args, strengths=_parse_strengths(args.strengths))
    result = explain_folder(args.model_dir, args.data_dir, args.out, config,
                            compare_with=args.compare_with, overwrite=args.overwrite)
    if result is not None and result.already_complete:
        print(f"explain: {args.out} is already complete with these settings; nothing to do "
              "(--overwrite recomputes it)")
    elif result is not None:
        print(
            f"explain: {result.n_images} images, {result.global_scores['prototype'].nunique()} "
            f"prototypes, {result.global_scores.groupby(['modification', 'strength']).ngroups} "
            f"settings ({args.mode}) -> {args.out}: local_scores.parquet, global_scores.csv, "
            "stats.json, summary.txt, explain.json"
        )
        print((result.out_dir / "summary.txt").read_text(encoding="utf-8"), end="")
    return 0
