"""Analysis commands: ``analyze-image``, ``nearest``, ``prune`` and ``evaluate`` (method §5)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from protoexplain.analysis.evaluate import EvaluateConfig
from protoexplain.analysis.nearest import NearestConfig
from protoexplain.analysis.prune import PruneConfig
from protoexplain.cli.arguments import (
    add_setting,
    config_from_args,
    non_negative_int,
    positive_int,
)
from protoexplain.errors import UserError

ORDER = 50


def _analyze_image(args: argparse.Namespace) -> int:
    from protoexplain.analysis.explanations import attach_importances, find_explain_dir
    from protoexplain.analysis.local import analyze_image
    from protoexplain.analysis.local_output import format_analysis, save_image_analysis
    from protoexplain.data import load_rgb
    from protoexplain.device import resolve_device
    from protoexplain.models import load_model

    device = resolve_device(args.device)
    model = load_model(args.model_dir, device=device)
    image = load_rgb(args.image)
    analysis = analyze_image(model, image, top_k=args.top_k, top_classes=args.top_classes)
    analysis.source = str(args.image)
    explain_dir = args.explain_dir or find_explain_dir(args.model_dir, model)
    if explain_dir is not None:
        attach_importances(analysis, model, image, explain_dir)
    out = args.out or Path(f"analysis-{Path(args.image).stem}")
    written = save_image_analysis(analysis, out, Path(args.model_dir) / "prototypes")
    if args.json:
        print(json.dumps(analysis.to_dict(), indent=2))
    else:
        print(format_analysis(analysis), end="")
        source = f"; importances from {explain_dir}" if explain_dir is not None else ""
        print(f"\nwrote {len(written)} files to {out}/ (analysis.json, analysis.png, …){source}")
    return 0


def _nearest(args: argparse.Namespace) -> int:
    from protoexplain.analysis.nearest import open_dataset, write_nearest
    from protoexplain.device import resolve_device
    from protoexplain.models import load_model

    config = config_from_args(NearestConfig, args)
    model = load_model(args.model_dir, device=resolve_device(args.device))
    dataset = open_dataset(model, args.data_dir)
    out = args.out or Path(f"nearest-{Path(args.data_dir).name}")
    table, path = write_nearest(model, dataset, out, config, progress=True)
    own = (table["image_class"] == table["prototype_class"]).mean() if len(table) else 0.0
    pictures = f" and {2 * len(table)} images" if config.images else ""
    print(
        f"{model.num_prototypes} prototypes × {config.k} nearest of {len(dataset)} images; "
        f"{own:.1%} of the neighbours share the prototype's class\nwrote {path}{pictures}"
    )
    return 0


def _prune(args: argparse.Namespace) -> int:
    from protoexplain.analysis.prune import prune_model_folder
    from protoexplain.device import resolve_device
    from protoexplain.outputs import locked_output

    device = resolve_device(args.device)
    config = config_from_args(PruneConfig, args)
    out = args.out or Path(f"{Path(args.model_dir).resolve()}-pruned")
    with locked_output(out, "prune"):
        report = prune_model_folder(
            args.model_dir, args.push_data, out, config, train_data=args.train_data,
            device=device, progress=True,
        )
    removed = report.loc[~report["kept"], "prototype"].tolist()
    shown = ", ".join(str(j) for j in removed[:20]) + (" …" if len(removed) > 20 else "")
    print(
        f"pruned {len(removed)} of {len(report)} prototypes (fewer than τ={args.tau} of the "
        f"k={args.k} nearest images of their class){': ' + shown if removed else ''}\n"
        f"last layer retrained for {args.last_layer_epochs} epochs; wrote the model, "
        f"prototypes/ and prune_report.csv to {out}/"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from protoexplain.analysis.evaluate import evaluate_models, save_evaluation
    from protoexplain.device import resolve_device
    from protoexplain.models import load_model
    from protoexplain.outputs import locked_output

    *model_dirs, data_dir = args.paths
    if not model_dirs:
        raise UserError("evaluate needs MODEL_DIR [MODEL_DIR …] DATA_DIR: give at least one model")
    device = resolve_device(args.device)
    models = [load_model(path, device=device) for path in model_dirs]
    config = config_from_args(EvaluateConfig, args)
    evaluation = evaluate_models(
        models, data_dir, names=[str(p) for p in model_dirs], batch_size=config.batch_size,
        workers=config.workers, progress=True,
    )
    with locked_output(args.out, "evaluate"):
        result = save_evaluation(evaluation, args.out)
    for entry in result["models"]:
        print(f"{entry['model']}: top-1 {entry['top1']:.2%}, top-5 {entry['top5']:.2%}")
    if result["ensemble"] is not None:
        ensemble = result["ensemble"]
        print(f"ensemble (sum of logits): top-1 {ensemble['top1']:.2%}, "
              f"top-5 {ensemble['top5']:.2%}")
    print(f"{result['n_images']} images; wrote metrics.json, per_class.csv, confusion.csv "
          f"to {args.out}/")
    return 0


def _add_common(parser: argparse.ArgumentParser, config_class: type) -> None:
    """``--device`` and the step config's ``--batch-size`` and ``--workers``."""
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    add_setting(parser, config_class, "batch_size", type=positive_int)
    add_setting(parser, config_class, "workers", type=non_negative_int)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the analysis commands."""
    parser = subparsers.add_parser(
        "analyze-image",
        help="explain one prediction: which prototypes fired where, and how much they count",
        description=(
            "Local analysis of one image: the prediction with class probabilities, the top-k most "
            "activated prototypes (similarity, class, weight to the predicted class, "
            "contribution = similarity × weight), and for the top classes their prototypes "
            "sorted by contribution. Writes analysis.json (every number and box), "
            "similarity_maps.npy (raw maps), summary.txt, heatmaps and analysis.png (the image "
            "beside each prototype's crop and source). When 'explain' output for the model is "
            "found, adds per-characteristic local importances (hue, shape, …)."
        ),
        epilog="example: protoexplain analyze-image runs/demo/train/model bird.jpg --top-k 5",
    )
    parser.add_argument("model_dir", type=Path, help="model folder (model.json, model.safetensors)")
    parser.add_argument("image", type=Path, help="image file to analyse")
    parser.add_argument("--top-k", type=positive_int, default=10,
                        help="prototypes to show (default 10)")
    parser.add_argument("--top-classes", type=positive_int, default=3,
                        help="classes whose prototypes are listed (default 3)")
    parser.add_argument("--out", type=Path,
                        help="output folder (default: analysis-<image name> in the current folder)")
    parser.add_argument("--json", action="store_true",
                        help="print the JSON analysis instead of the text summary")
    parser.add_argument(
        "--explain-dir", type=Path,
        help="output folder of 'protoexplain explain' for this model (default: looked for beside "
        "the model: ../explain, ../../explain and their test/ and train/ folders)",
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.set_defaults(func=_analyze_image)

    parser = subparsers.add_parser(
        "nearest",
        help="show each prototype's k nearest images (global analysis)",
        description=(
            "For every prototype, find its k nearest images in DATA_DIR (one best patch per image) "
            "and write nearest.csv (prototype, rank, image, distance, high-activation box) with "
            "p<j>_r<rank>_patch.png and p<j>_r<rank>_heatmap.png."
        ),
        epilog="example: protoexplain nearest runs/demo/train/model data/test --k 5",
    )
    parser.add_argument("model_dir", type=Path, help="model folder")
    parser.add_argument("data_dir", type=Path, help="image folder (root/<class>/<image>)")
    add_setting(parser, NearestConfig, "k", type=positive_int)
    parser.add_argument("--out", type=Path,
                        help="output folder (default: nearest-<data folder name>)")
    parser.add_argument("--no-images", dest="images", action="store_false",
                        help="write nearest.csv only, without each neighbour's patch and heatmap")
    _add_common(parser, NearestConfig)
    parser.set_defaults(func=_nearest)

    parser = subparsers.add_parser(
        "prune",
        help="remove prototypes whose nearest training images are mostly of other classes",
        description=(
            "Prune prototype j when fewer than TAU of its K nearest images in PUSH_DATA belong to "
            "its class, retrain the last layer, and save the new model with its prototypes/ "
            "artefacts renumbered and prune_report.csv (old number, class, own-class neighbours, "
            "kept, new number)."
        ),
        epilog="example: protoexplain prune runs/demo/train/model data/train --out pruned",
    )
    parser.add_argument("model_dir", type=Path, help="model folder")
    parser.add_argument("push_data", type=Path, help="un-augmented training images (push set)")
    add_setting(parser, PruneConfig, "k", type=positive_int)
    add_setting(parser, PruneConfig, "tau", type=non_negative_int)
    add_setting(parser, PruneConfig, "last_layer_epochs", type=non_negative_int)
    add_setting(parser, PruneConfig, "lr", type=float)
    parser.add_argument("--train-data", type=Path,
                        help="images for the last-layer epochs (default: PUSH_DATA)")
    add_setting(parser, PruneConfig, "seed", type=int)
    parser.add_argument("--out", type=Path,
                        help="new model folder (default: <MODEL_DIR>-pruned)")
    _add_common(parser, PruneConfig)
    parser.set_defaults(func=_prune)

    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy of one model or an ensemble (sum of logits)",
        description=(
            "Top-1/top-5 accuracy of each model on DATA_DIR; with several models also of their "
            "ensemble (sum of logits). Writes metrics.json, per_class.csv and confusion.csv (of "
            "the ensemble when several models are given). Models are not changed."
        ),
        epilog="example: protoexplain evaluate models/vgg19 models/resnet34 data/test --out eval",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="MODEL_DIR [MODEL_DIR …] DATA_DIR")
    parser.add_argument("--out", type=Path, default=Path("evaluation"),
                        help="output folder (default: evaluation)")
    _add_common(parser, EvaluateConfig)
    parser.set_defaults(func=_evaluate)
