"""``protoexplain report``: a self-contained, browsable HTML report of a run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from protoexplain.cli.arguments import (
    add_setting,
    config_from_args,
    non_negative_int,
    positive_int,
)
from protoexplain.report.options import FIGURE_FORMATS, ReportOptions

ORDER = 60


def _split_dir(text: str) -> tuple[str, str]:
    split, sep, path = text.partition("=")
    if not sep or not split or not path:
        raise argparse.ArgumentTypeError(
            f"expected SPLIT=DIR (e.g. test=runs/x/explain/test), got {text!r}"
        )
    return split, path


def _formats(text: str) -> list[str]:
    formats = [f.strip() for f in text.split(",") if f.strip()]
    if not formats or set(formats) - set(FIGURE_FORMATS):
        raise argparse.ArgumentTypeError(f"{text!r}: use png, svg or png,svg")
    return formats


#: The options of ``report`` made from :class:`ReportOptions` fields, with their argparse extras.
_REPORT_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("max_prototype_pages", {"type": non_negative_int, "metavar": "N"}),
    ("local_images", {"type": non_negative_int, "metavar": "N"}),
    ("local_top_k", {"type": positive_int, "metavar": "K"}),
    ("nearest_k", {"type": positive_int, "metavar": "K"}),
    ("misclassified", {"type": non_negative_int, "metavar": "N"}),
    ("formats", {"type": _formats, "metavar": "png,svg"}),
    ("workers", {"type": non_negative_int}),
    ("latent_ratio", {"type": float}),
    ("explanation_cosine", {"type": float}),
    ("device", {}),
    ("seed", {"type": int}),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report``."""
    parser = subparsers.add_parser(
        "report",
        help="write a browsable HTML report (figures, statistics, flagged prototypes)",
        description=(
            "Write a static HTML report of a run: model summary, a sortable/filterable prototype "
            "table, one page per prototype with its explanation charts, statistics in words and "
            "numbers, misleading candidates, redundant pairs, local explanations of sample "
            "images with the model's prediction, training curves, the confusion matrix and the "
            "misclassified test images. RUN_DIR may be a pipeline run folder, a training run "
            "folder or a model folder; parts that do not exist are left out. Open OUT/index.html "
            "in a browser; it needs no network."
        ),
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="pipeline run, training run or model folder"
    )
    parser.add_output("report folder (default: RUN_DIR/report)")
    parser.add_argument("--model", metavar="DIR", help="model folder (default: found in RUN_DIR)")
    parser.add_argument(
        "--explain", metavar="SPLIT=DIR", type=_split_dir, action="append",
        help="an 'explain' output folder for a split; repeat for train and test "
             "(default: RUN_DIR/explain/<split>)",
    )
    parser.add_argument("--evaluation", metavar="DIR", help="'evaluate' output folder")
    parser.add_argument("--nearest", metavar="DIR", help="'nearest' output folder")
    parser.add_argument(
        "--images", metavar="DIR",
        help="data folder of the explained test split, to show sample images (default: the folder "
             "explain.json names, else RUN_DIR/data/<split>)",
    )
    for name, extra in _REPORT_OPTIONS:
        add_setting(parser, ReportOptions, name, **extra)
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Locate the run's inputs and write the report; the exit status."""
    from protoexplain.outputs import locked_output
    from protoexplain.report.inputs import locate_inputs
    from protoexplain.report.render import build_report

    options = config_from_args(ReportOptions, args)
    options.check()
    inputs = locate_inputs(
        args.run_dir, model_dir=args.model, explain=dict(args.explain) if args.explain else None,
        evaluation_dir=args.evaluation, nearest_dir=args.nearest,
        images_dir=args.images,
    )
    out = args.out or Path(args.run_dir) / "report"
    with locked_output(out, "report"):
        summary = build_report(inputs, out, options)
    print(
        f"report written to {summary.index} ({summary.prototypes} prototypes, {summary.pages} "
        f"prototype pages, {summary.local_panels} local panels, {summary.misleading} misleading "
        f"candidates, {summary.redundant} redundant pairs)"
    )
    return 0
