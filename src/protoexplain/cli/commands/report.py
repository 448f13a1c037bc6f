"""``protoexplain report``: a self-contained, browsable HTML report of a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from protoexplain.cli.arguments import non_negative_int, positive_int
from protoexplain.errors import UserError

ORDER = 60


def _split_dir(text: str) -> tuple[str, str]:
    split, sep, path = text.partition("=")
    if not sep or not split or not path:
        raise argparse.ArgumentTypeError(
            f"expected SPLIT=DIR (e.g. test=runs/x/explain/test), got {text!r}"
        )
    return split, path


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
    parser.add_argument(
        "--max-prototype-pages", type=int, metavar="N",
        help="write pages (and figures) for at most N prototypes, those with the largest dominant "
             "score first (default: every prototype); the table always lists all",
    )
    parser.add_argument("--local-images", type=non_negative_int, default=8, metavar="N",
                        help="sample images with local explanation panels (default 8; 0: none)")
    parser.add_argument("--local-top-k", type=positive_int, default=3, metavar="K",
                        help="most similar prototypes shown per sample image (default 3)")
    parser.add_argument("--misclassified", type=non_negative_int, default=100, metavar="N",
                        help="misclassified test images listed, most confident first (default "
                             "100; needs evaluate's predictions.csv)")
    parser.add_argument("--formats", default="png,svg",
                        help="formats of the overview's figures, comma separated: png, svg "
                             "(default png,svg; prototype pages draw inline SVG)")
    parser.add_argument("--workers", type=non_negative_int, default=0,
                        help="threads making the prototypes' image files (default 0: all in "
                             "this thread)")
    parser.add_argument("--device", default="auto",
                        help="device for locating patches of sample images: auto (default), cpu, "
                        "cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image sample")
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Locate the run's inputs and write the report; the exit status."""
    from protoexplain.device import resolve_device
    from protoexplain.outputs import locked_output
    from protoexplain.report.inputs import locate_inputs
    from protoexplain.report.render import ReportOptions, build_report

    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    if not formats or set(formats) - {"png", "svg"}:
        raise UserError(f"--formats {args.formats!r}: use png, svg or png,svg")
    if args.max_prototype_pages is not None and args.max_prototype_pages < 0:
        raise UserError("--max-prototype-pages must be 0 or more")
    inputs = locate_inputs(
        args.run_dir, model_dir=args.model, explain=dict(args.explain) if args.explain else None,
        evaluation_dir=args.evaluation, nearest_dir=args.nearest,
        images_dir=args.images,
    )
    out = args.out or Path(args.run_dir) / "report"
    options = ReportOptions(
        max_prototype_pages=args.max_prototype_pages, local_images=args.local_images,
        local_top_k=args.local_top_k, misclassified=args.misclassified, formats=formats,
        workers=args.workers,
        seed=args.seed, device=str(resolve_device(args.device)),
    )
    with locked_output(out, "report"):
        summary = build_report(inputs, out, options)
    print(
        f"report written to {summary.index} ({summary.prototypes} prototypes, {summary.pages} "
        f"prototype pages, {summary.local_panels} local panels, {summary.misleading} misleading "
        f"candidates, {summary.redundant} redundant pairs)"
    )
    return 0
