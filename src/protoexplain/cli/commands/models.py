"""Model commands: ``backbones`` and ``import-legacy``."""

from __future__ import annotations

import argparse
from pathlib import Path

from protoexplain.cli.arguments import positive_int
from protoexplain.errors import UserError
from protoexplain.models import list_backbones, save_model
from protoexplain.models.backbones import backbone_info
from protoexplain.models.legacy import import_legacy
from protoexplain.models.pipnet import PIPNET_TRUNKS
from protoexplain.models.pipnet_legacy import import_pipnet_legacy
from protoexplain.outputs import LOCK_NAME, locked_output

ORDER = 10


def _backbones(args: argparse.Namespace) -> int:
    for name in list_backbones():
        info = backbone_info(name)
        print(f"{name:<14} {info.family:<9} {info.out_channels:>5} channels")
    return 0


def _import_legacy(args: argparse.Namespace) -> int:
    pipnet = args.architecture == "pipnet"
    if args.arch not in (PIPNET_TRUNKS if pipnet else list_backbones()):
        known = ", ".join(PIPNET_TRUNKS if pipnet else list_backbones())
        raise UserError(f"--arch {args.arch} is no {args.architecture} backbone; choose one of: "
                        f"{known}")
    load = import_pipnet_legacy if pipnet else import_legacy
    source = "original PIP-Net" if pipnet else "original ProtoPNet"
    with locked_output(args.out, "import-legacy") as out_dir:
        if any(p.name != LOCK_NAME for p in out_dir.iterdir()):
            raise UserError(f"{out_dir} is not empty; import into a new folder so that no model "
                            "or file there is overwritten")
        model = load(args.checkpoint, args.arch, args.classes, args.image_size)
        out = save_model(
            model,
            out_dir,
            metadata={"imported_from": Path(args.checkpoint).name, "source": source},
        )
    print(
        f"imported {model.num_prototypes} prototypes, {model.num_classes} classes, "
        f"backbone {args.arch}, image size {model.input_spec.image_size} -> {out}/"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the model commands."""
    parser = subparsers.add_parser(
        "backbones",
        help="list the backbones a model can be built on",
        description="List every backbone (feature extractor) with its family and output channels.",
    )
    parser.set_defaults(func=_backbones)

    parser = subparsers.add_parser(
        "import-legacy",
        help="convert a checkpoint of the original ProtoPNet or PIP-Net code into a protoexplain "
        "model",
        description=(
            "Convert a checkpoint written by the original ProtoPNet code (a whole pickled PPNet "
            "module saved with torch.save(model), or a plain state dict) into a protoexplain "
            "model folder (model.safetensors + model.json). The pickle is read with an "
            "allow-list: only tensors and the original's module classes are rebuilt, as inert "
            "data; a file referencing anything else is refused without running it. With "
            "--architecture pipnet: a checkpoint of the original PIP-Net code (the dict holding "
            "'model_state_dict')."
        ),
        epilog=(
            "example: protoexplain import-legacy saved_models/vgg19/10push0.7822.pth "
            "--out models/vgg19-cub --arch vgg19 --classes CUB_200_2011/classes.txt"
        ),
    )
    parser.add_argument("checkpoint", type=Path, help="the original .pth file")
    parser.add_output("folder to write the converted model into (required)", required=True,
                      legacy_positional="OUT_DIR")
    parser.add_argument(
        "--arch",
        required=True,
        metavar="NAME",
        help="backbone the checkpoint was trained with (see 'protoexplain backbones'; PIP-Net: "
        f"{', '.join(PIPNET_TRUNKS)})",
    )
    parser.add_argument(
        "--architecture",
        choices=("protopnet", "pipnet"),
        default="protopnet",
        help="which original code wrote the checkpoint (default: protopnet)",
    )
    parser.add_argument(
        "--classes",
        type=Path,
        help="text file with one class name per line in class-index order "
        "(CUB's classes.txt works); default: 0, 1, 2, ...",
    )
    parser.add_argument(
        "--image-size",
        type=positive_int,
        help="input size the model was trained at (default: read from the checkpoint, else 224)",
    )
    parser.set_defaults(func=_import_legacy)
