"""Is the trunk control a null model when the trunk is general and pretrained? Table + JSON.

Usage: python benchmarks/pretrained_trunk.py [OUT_DIR] [--background like-parts] [--device auto]
[--factors hue,saturation,value,contrast,shape,texture] [--presets hue,shape]
(default OUT_DIR: ./pretrained-trunk; 9.5 to 40 minutes on two CPU cores).

On isolated presets a trunk trained from scratch becomes a detector of the one class factor, so
the faithfulness benchmark's trunk control ranks that factor first as often as the trained model.
Real ProtoPNets start from an ImageNet trunk that responds to many visual factors. This study
imitates that: it first trains ``small_cnn`` to predict *every* factor of every part of synthetic
birds (binned hue, saturation, value, contrast; shape; texture — linear heads on the pooled
trunk), on images drawn from all presets with their own seed, then trains the benchmark's
ProtoPNet on each isolated preset from that trunk with the paper's recipe for pretrained trunks
(5 warm-up epochs, trunk learning rate 1e-4), and ranks characteristics as the benchmark does, for
the trained model and four controls: the benchmark's three and ``control_backbone`` (trained trunk
only; add-on layers, prototypes and last layer drawn anew). ``--factors`` chooses what the trunk
learns to predict; without hue and shape it has never seen the factors that define the classes,
as an ImageNet trunk has never seen the classes of CUB.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from safetensors.torch import save_file
from torch import nn
from tqdm.std import tqdm

from protoexplain.benchmark import factor_ranks
from protoexplain.benchmark.faithfulness import (
    FaithfulnessConfig,
    benchmark_models,
    control_model,
    result_row,
    train_preset,
)
from protoexplain.benchmark.ranking import TRUE_FACTOR
from protoexplain.benchmark.significance import add_significance
from protoexplain.choices import BACKGROUNDS
from protoexplain.data import ImageFolderDataset
from protoexplain.data.synth import render_sample
from protoexplain.data.synth_factors import PARTS, PRESETS, SHAPES, TEXTURES
from protoexplain.device import resolve_device
from protoexplain.errors import UserError
from protoexplain.explain import explain_dataset
from protoexplain.fileio import atomic_path, write_json
from protoexplain.models import ProtoPNet
from protoexplain.models.backbones import SmallCNN, backbone_info
from protoexplain.models.ppnet import IMAGENET_MEAN, IMAGENET_STD, build_add_on_layers
from protoexplain.progress import progress_bar

#: Continuous factors and the (low, high, bins) of their classes; hue bins are centred on k/8.
BINNED = {"saturation": (0.05, 0.95, 4), "value": (0.3, 1.0, 4), "contrast": (0.05, 0.9, 4)}
HEAD_SIZES = {"hue": 8, **{name: bins for name, (_, _, bins) in BINNED.items()},
              "shape": len(SHAPES), "texture": len(TEXTURES)}
PRETRAIN_SEED_OFFSET = 1000
FAMILIES = ("perceptual", "paper")


def factor_target(factors: dict, part: str, name: str) -> int:
    """Class index of one factor of one part: hue in eighths, continuous factors binned."""
    if name == "hue":
        return int(np.floor(factors[f"{part}_hue"] * 8 + 0.5)) % 8
    if name in BINNED:
        low, high, bins = BINNED[name]
        position = (factors[f"{part}_{name}"] - low) / (high - low) * bins
        return int(np.clip(np.floor(position), 0, bins - 1))
    return (SHAPES if name == "shape" else TEXTURES).index(factors[f"{part}_{name}"])


def factor_targets(factors: dict, names: list[str]) -> list[int]:
    """Class targets of one image: for every part, each factor of ``names``."""
    return [factor_target(factors, part, name) for part in PARTS for name in names]


def render_pretraining_set(
    count: int, seed: int, size: int, background: str, names: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` images (uint8, B×3×H×W) drawn from every preset and class, and their targets
    for the factors ``names``."""
    rng = np.random.default_rng(seed)
    presets = list(PRESETS)
    images, targets = [], []
    for index in progress_bar(range(count), desc="render pretraining images", unit="img",
                              leave=False):
        preset = presets[int(rng.integers(len(presets)))]
        class_index = int(rng.integers(len(PRESETS[preset].classes)))
        factors, drawn = render_sample(preset, class_index, "train", index, seed, size, background)
        images.append(drawn.image)
        targets.append(factor_targets(factors, names))
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return pixels, torch.tensor(targets)


def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 batch → the ProtoPNet's input scale (ImageNet mean and std, as its ``ModelSpec``)."""
    return TF.normalize(pixels.float() / 255, IMAGENET_MEAN, IMAGENET_STD)


def pretrain_trunk(
    out: Path, args: argparse.Namespace, device: torch.device
) -> dict[str, float]:
    """Train ``small_cnn`` + linear factor heads; save the trunk; return validation accuracies."""
    seed = args.seed + PRETRAIN_SEED_OFFSET
    torch.manual_seed(seed)
    names = args.factors
    train_x, train_y = render_pretraining_set(args.images, seed, args.size, args.background, names)
    val_x, val_y = render_pretraining_set(args.images // 16, seed + 1, args.size, args.background,
                                          names)
    sizes = [HEAD_SIZES[name] for name in names] * len(PARTS)
    trunk, heads = SmallCNN().to(device), nn.Linear(128, sum(sizes)).to(device)
    optimiser = torch.optim.Adam([*trunk.parameters(), *heads.parameters()], lr=3e-3)

    def logits(pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return heads(trunk(_normalise(pixels.to(device))).mean(dim=(2, 3))).split(sizes, dim=1)

    for _ in progress_bar(range(args.pretrain_epochs), desc="pretrain trunk", unit="epoch"):
        trunk.train()
        for batch in torch.randperm(len(train_x)).split(64):
            outputs, target = logits(train_x[batch]), train_y[batch].to(device)
            loss = sum(F.cross_entropy(o, target[:, k]) for k, o in enumerate(outputs))
            optimiser.zero_grad()
            (loss / len(sizes)).backward()
            optimiser.step()
    trunk.eval()
    with torch.no_grad():
        correct = torch.stack([
            (o.argmax(1).cpu() == val_y[:, k]) for k, o in enumerate(logits(val_x))
        ], dim=1).float().mean(0).view(len(PARTS), len(names)).mean(0)
    with atomic_path(out / "trunk.safetensors") as path:
        save_file({k: v.detach().cpu().contiguous() for k, v in trunk.state_dict().items()},
                  str(path))
    return {name: round(float(v), 3) for name, v in zip(names, correct, strict=True)}


def backbone_control(model: ProtoPNet, seed: int) -> ProtoPNet:
    """The trained trunk alone: add-on layers, prototypes and last layer drawn anew."""
    control = control_model(model, seed)
    _, depth, _, _ = model.spec.prototype_shape
    channels = backbone_info(model.spec.backbone).out_channels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        add_on = build_add_on_layers(model.spec.add_on, channels, depth)
    control.add_on_layers = add_on.to(model.prototype_vectors.device)
    return control.eval()


def study_preset(
    preset: str, out: Path, config: FaithfulnessConfig, device: torch.device, bar: tqdm
) -> list[dict]:
    """Train ``preset`` from the pretrained trunk; rank characteristics for every model."""
    model, accuracy, data = train_preset(preset, config, out, device,
                                         weights=str(out / "trunk.safetensors"))
    models = {**benchmark_models(model, data / "train", config.seed),
              "control_backbone": backbone_control(model, config.seed + 4)}
    test = ImageFolderDataset(data / "test")
    rows = []
    for family in FAMILIES:
        for kind, explained in models.items():
            result = explain_dataset(
                explained, test, family=family, mode="faithful", bootstrap=0, device=str(device),
                batch_size=config.batch_size, seed=config.seed,
            )
            ranks = factor_ranks(result.global_scores, TRUE_FACTOR[preset])
            rows.append(result_row(preset, family, kind, accuracy, ranks))
            bar.update()
    return rows


def main() -> None:
    try:
        run()
    except UserError as error:
        raise SystemExit(f"pretrained_trunk: {error}") from None


def run() -> None:
    """Parse the command line, pretrain, study every preset, print the table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="pretrained-trunk",
                        help="output folder (default: ./pretrained-trunk)")
    parser.add_argument("--background", choices=BACKGROUNDS, default="like-parts",
                        help="background of pretraining and preset images (default: like-parts)")
    parser.add_argument("--presets", default="hue,shape",
                        help="comma-separated isolated presets (default: hue,shape)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--images", type=int, default=16000,
                        help="pretraining images (default: 16000)")
    parser.add_argument("--pretrain-epochs", type=int, default=12,
                        help="pretraining epochs (default: 12)")
    parser.add_argument("--factors", default=",".join(HEAD_SIZES),
                        help="factors the trunk is pretrained to predict (default: all, "
                        f"{','.join(HEAD_SIZES)})")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels (default: 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and training")
    args = parser.parse_args()
    out, device = Path(args.out), resolve_device(args.device)
    args.factors = [name for name in args.factors.split(",") if name]
    if not args.factors or not set(args.factors) <= set(HEAD_SIZES):
        parser.exit(2, f"pretrained_trunk: --factors takes a comma-separated subset of "
                    f"{','.join(HEAD_SIZES)}\n")
    presets = [p for p in args.presets.split(",") if p]
    unknown = [p for p in presets if p not in TRUE_FACTOR]
    if unknown or not presets:
        parser.exit(2, f"pretrained_trunk: unknown isolated presets {unknown}; choose from "
                    f"{sorted(TRUE_FACTOR)}\n")
    if args.images < 16 or args.pretrain_epochs < 1 or not 32 <= args.size <= 1024:
        parser.exit(2, "pretrained_trunk: use --images 16 or more, --pretrain-epochs 1 or more "
                    "and --size between 32 and 1024\n")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pretrain_accuracy = pretrain_trunk(out, args, device)
    config = replace(FaithfulnessConfig(), background=args.background, image_size=args.size,
                     seed=args.seed, warm_epochs=5, features_lr=1e-4)
    bar = progress_bar(total=len(presets) * len(FAMILIES) * 5, desc="explain", unit="model")
    table = add_significance(pd.DataFrame(
        [row for preset in presets for row in study_preset(preset, out, config, device, bar)]))
    bar.close()
    print(f"pretraining validation accuracy per factor: {pretrain_accuracy}")
    print(f"{'preset':<8}{'family':<12}{'model':<18}{'acc.':>6}{'top-1':>7}{'p':>8}{'rank':>6}"
          "  tops   (p: one-sided Fisher test, trained share > control share)")
    for _, row in table.iterrows():
        p_value = "" if pd.isna(row["p_trained_greater"]) else f"{row['p_trained_greater']:.3f}"
        print(f"{row['preset']:<8}{row['family']:<12}{row['model']:<18}{row['accuracy']:>6.0%}"
              f"{row['top1_share']:>7.0%}{p_value:>8}{row['mean_rank']:>6.2f}  {row['tops']}")
    rows = table.astype(object).where(table.notna(), None).to_dict(orient="records")
    seconds = round(time.perf_counter() - started, 1)
    write_json(out / "pretrained_trunk.json", {
        "background": args.background, "factors": args.factors, "images": args.images,
        "pretrain_epochs": args.pretrain_epochs, "size": args.size, "seed": args.seed,
        "device": str(device), "wall_seconds": seconds,
        "pretrain_accuracy": pretrain_accuracy, "rows": rows,
    })
    print(f"wrote {out / 'pretrained_trunk.json'} (trunk.safetensors, data/, runs/ beside it) "
          f"in {seconds} s")


if __name__ == "__main__":
    main()
