"""Analysis commands: ``analyze-image``, ``nearest``, ``prune`` and ``evaluate`` (method §5)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from protoexplain.cli.arguments import non_negative_int, positive_int
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
    from protoexplain.analysis.nearest import (
        find_neighbours,
        nearest_table,
        open_dataset,
        remove_nearest_images,
        save_nearest,
    )
    from protoexplain.device import resolve_device
    from protoexplain.models import load_model
    from protoexplain.outputs import locked_output

    device = resolve_device(args.device)
    model = load_model(args.model_dir, device=device)
    dataset = open_dataset(model, args.data_dir)
    neighbours = find_neighbours(
        model, dataset, args.k, batch_size=args.batch_size, workers=args.workers, progress=True
    )
    out = args.out or Path(f"nearest-{Path(args.data_dir).name}")
    with locked_output(out, "nearest"):
        remove_nearest_images(out)
        table = nearest_table(
            model, dataset, neighbours, None if args.no_images else out, progress=True
        )
        path = save_nearest(table, out)
    own = (table["image_class"] == table["prototype_class"]).mean() if len(table) else 0.0
    pictures = "" if args.no_images else f" and {2 * len(table)} images"
    print(
        f"{model.num_prototypes} prototypes × {args.k} nearest of {len(dataset)} images; "
        f"{own:.1%} of the neighbours share the prototype's class\nwrote {path}{pictures}"
    )
    return 0


def _prune(args: argparse.Namespace) -> int:
    from protoexplain.analysis.prune import PruneConfig, prune_model_folder
    from protoexplain.device import resolve_device
    from protoexplain.outputs import locked_output

    device = resolve_device(args.device)
    config = PruneConfig(
        k=args.k, tau=args.tau, last_layer_epochs=args.last_layer_epochs, lr=args.lr,
        batch_size=args.batch_size, seed=args.seed, workers=args.workers,
    )
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
    evaluation = evaluate_models(
        models, data_dir, names=[str(p) for p in model_dirs], batch_size=args.batch_size,
        workers=args.workers, progress=True,
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


def _add_common(parser: argparse.ArgumentParser, batch_size: int) -> None:
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size,
                        help=f"images per batch (default {batch_size})")
    parser.add_argument("--workers", type=non_negative_int, default=0,
                        help="data-loading worker processes (default 0)")


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
    parser.add_argument("--k", type=positive_int, default=5,
                        help="nearest images per prototype (default 5)")
    parser.add_argument("--out", type=Path,
                        help="output folder (default: nearest-<data folder name>)")
    parser.add_argument("--no-images", action="store_true", help="write nearest.csv only")
    _add_common(parser, 75)
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
    parser.add_argument("--k", type=positive_int, default=6,
                        help="nearest images inspected (default 6)")
    parser.add_argument("--tau", type=non_negative_int, default=3,
                        help="minimum own-class images among them to keep a prototype (default 3)")
    parser.add_argument("--last-layer-epochs", type=non_negative_int, default=100,
                        help="last-layer epochs after pruning (default 100; 0 skips)")
    parser.add_argument("--lr", type=float, default=1e-4, help="last-layer learning rate")
    parser.add_argument("--train-data", type=Path,
                        help="images for the last-layer epochs (default: PUSH_DATA)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the last-layer epochs")
    parser.add_argument("--out", type=Path,
                        help="new model folder (default: <MODEL_DIR>-pruned)")
    _add_common(parser, 75)
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
    _add_common(parser, 100)
    parser.set_defaults(func=_evaluate)
