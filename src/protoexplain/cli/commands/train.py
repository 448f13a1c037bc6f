"""Commands ``train``, ``push`` and ``config``: training (ProtoPNet, PIP-Net) and ProtoPNet's
prototype projection."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from protoexplain.cli.arguments import non_negative_int, positive_int

if TYPE_CHECKING:
    import torch

ORDER = 30


def _train(args: argparse.Namespace) -> int:
    from protoexplain.models import model_metadata
    from protoexplain.outputs import locked_output
    from protoexplain.training import load_config, train
    from protoexplain.training.distributed import is_main_process

    config = load_config(args.config)
    out = args.out or Path("runs") / args.config.stem
    with locked_output(out, "train"):
        final = train(config, out, device=args.device, resume=args.resume, dry_run=args.dry_run)
    if final.exists() and is_main_process():
        meta = model_metadata(final)
        pushed = final / "prototypes"
        where = f"prototypes in {pushed}; " if pushed.is_dir() else ""
        print(
            f"trained model: {final} (test accuracy {meta.get('test_acc')}, validation "
            f"{meta.get('val_acc')}); {where}metrics in "
            f"{out / 'metrics.csv'}; checkpoints in {out / 'checkpoints'}"
        )
    return 0


def _push(args: argparse.Namespace) -> int:
    from protoexplain.device import resolve_device
    from protoexplain.outputs import locked_output

    out = Path(args.out) if args.out else Path(args.model_dir)
    with locked_output(out, "push"):
        return _push_into(args, out, resolve_device(args.device))


def _push_into(args: argparse.Namespace, out: Path, device: torch.device) -> int:
    from protoexplain.data import ImageFolderDataset, eval_transform
    from protoexplain.models import load_model, require_protopnet, save_model
    from protoexplain.training import push_prototypes, save_push_artifacts, train_last_layer

    model = require_protopnet(load_model(args.model_dir, device=device), "push")
    spec = model.spec
    dataset = ImageFolderDataset(
        args.push_data, eval_transform(spec.image_size, spec.mean, spec.std),
        classes=model.class_names,
    )
    result = push_prototypes(
        model, dataset, batch_size=args.batch_size, device=device, workers=args.workers,
        progress=True,
    )
    if args.last_layer_epochs:
        train_last_layer(
            model, dataset, epochs=args.last_layer_epochs, device=device, workers=args.workers
        )
    save_model(model, out, {"pushed_on": str(Path(args.push_data).resolve())})
    folder = save_push_artifacts(
        result, model, dataset, out, progress=True, images=not args.no_images
    )
    written = "records" if args.no_images else "prototype images and records"
    print(f"pushed {result.num_pushed} of {len(result.image_paths)} prototypes; model in {out}, "
          f"{written} in {folder}")
    return 0


def _config(args: argparse.Namespace) -> int:
    from protoexplain.errors import UserError
    from protoexplain.fileio import atomic_open
    from protoexplain.pipeline.packaged import packaged_config_text
    from protoexplain.training import default_config_text

    if args.pipeline:
        text, what = packaged_config_text(args.pipeline), f"pipeline config {args.pipeline!r}"
    else:
        text, what = default_config_text(), "default training config"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    if args.out.exists() and not args.overwrite:
        raise UserError(f"{args.out} exists; choose another --out, or add --overwrite to "
                        "replace it")
    with atomic_open(args.out, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"{what} written to {args.out}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``push`` and ``config``."""
    train = subparsers.add_parser(
        "train",
        help="train a ProtoPNet (warm-up, joint, push, last layer) or a PIP-Net (pre-training, "
        "training) from a TOML config",
        description=(
            "Train the model the config says ([model] architecture = protopnet | pipnet). Launch "
            "with torchrun for several GPUs or processes (DDP). The run folder gets "
            "config.toml, metrics.csv, train.log, checkpoints/ and model/ (the final model; "
            "ProtoPNet's with its prototype images)."
        ),
    )
    train.add_config("training config, TOML ('protoexplain config' writes the default)")
    train.add_output("run folder (default: runs/<config name>)")
    train.add_argument("--resume", action="store_true", help="continue after the last checkpoint")
    train.add_argument(
        "--dry-run", action="store_true",
        help="one batch of every phase and a push on a handful of images, to check a set-up",
    )
    train.add_argument("--device", help="auto, cpu, cuda or cuda:N (overrides the config)")
    train.set_defaults(func=_train)

    push = subparsers.add_parser(
        "push",
        help="project a model's prototypes onto their closest training patches",
        description=(
            "Replace every prototype by its closest latent patch among images of its class in "
            "PUSH_DATA (ImageFolder layout) and write the prototype images and records."
        ),
    )
    push.add_argument("model_dir", help="model folder (model.json + model.safetensors)")
    push.add_argument("push_data", help="un-augmented training images, root/<class>/<image>")
    push.add_argument("--out", help="where to write the pushed model (default: in place)")
    push.add_argument("--batch-size", type=positive_int, default=75, help="images per batch (75)")
    push.add_argument("--last-layer-epochs", type=non_negative_int, default=0,
                      help="last-layer epochs on PUSH_DATA after the push (default 0)")
    push.add_argument("--workers", type=non_negative_int, default=0, help="data-loader workers")
    push.add_argument("--no-images", action="store_true",
                      help="write only the records and boxes, no prototype PNGs (faster)")
    push.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    push.set_defaults(func=_push)

    from protoexplain.pipeline.packaged import packaged_config_names

    config = subparsers.add_parser(
        "config",
        help="write the default training config or a packaged pipeline config (commented TOML)",
        description=(
            "Print the default training config with a comment for every key, or with --pipeline "
            "one of the pipeline configs shipped with protoexplain (for 'protoexplain run')."
        ),
        epilog="example: protoexplain config --pipeline cub-resnet34 --out cub.toml",
    )
    config.add_argument("--print-default", action="store_true",
                        help="print the default training config (the default action)")
    config.add_argument("--pipeline", metavar="NAME",
                        help=f"a packaged pipeline config: {', '.join(packaged_config_names())}")
    config.add_argument("--out", type=Path, metavar="FILE",
                        help="write it to this file instead of standard output")
    config.add_argument("--overwrite", action="store_true",
                        help="replace FILE when it exists (without it an existing file is refused)")
    config.set_defaults(func=_config)
