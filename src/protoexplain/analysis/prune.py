"""Prototype pruning (method §5): drop prototype j when fewer than τ of its k nearest training
images belong to its class, then retrain the last layer.

The pruned model keeps the surviving prototypes in their old order, renumbered 0…P'−1; its
``prototypes/`` folder holds the same push artefacts under the new numbers (``records.csv`` keeps
the old number in ``old_prototype``), and ``prune_report.csv`` maps old to new numbers.
"""

from __future__ import annotations

import re
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from protoexplain.analysis.nearest import Neighbours, find_neighbours, open_dataset
from protoexplain.errors import UserError
from protoexplain.fileio import atomic_open, atomic_path
from protoexplain.models import ProtoPNet, load_model, model_metadata, require_protopnet, save_model
from protoexplain.tomlconfig import setting
from protoexplain.training import train_last_layer

REPORT_COLUMNS = ["prototype", "prototype_class", "kept", "own_class_neighbours", "k", "tau",
                  "new_index"]
_PER_PROTOTYPE = re.compile(r"^p(\d{4,})_(.+)$")


def prune_report(
    neighbours: Neighbours, labels: np.ndarray, prototype_class: np.ndarray, k: int, tau: int
) -> pd.DataFrame:
    """One row per prototype: how many of its k nearest images share its class, kept or not."""
    index = neighbours.image_index[:, :k]
    found = index >= 0
    neighbour_class = np.asarray(labels)[np.where(found, index, 0)]
    own = ((neighbour_class == np.asarray(prototype_class)[:, None]) & found).sum(axis=1)
    kept = own >= tau
    new_index = np.where(kept, np.cumsum(kept) - 1, -1)
    return pd.DataFrame(
        {
            "prototype": np.arange(len(own)),
            "prototype_class": prototype_class,
            "kept": kept,
            "own_class_neighbours": own,
            "k": k,
            "tau": tau,
            "new_index": new_index,
        },
        columns=REPORT_COLUMNS,
    )


def apply_pruning(model: ProtoPNet, report: pd.DataFrame) -> list[int]:
    """Keep the prototypes the report keeps (in place); return their old numbers."""
    keep = report.loc[report["kept"], "prototype"].astype(int).tolist()
    kept_classes = set(report.loc[report["kept"], "prototype_class"].astype(int))
    emptied = sorted(set(report["prototype_class"].astype(int)) - kept_classes)
    if emptied:
        names = ", ".join(model.class_names[c] for c in emptied[:5])
        warnings.warn(f"pruning removes every prototype of class(es) {names}", stacklevel=2)
    model.select_prototypes(keep)
    return keep


def copy_prototype_artifacts(source: Path, target: Path, keep: list[int]) -> int:
    """Copy ``source`` (a ``prototypes/`` folder) to ``target`` renumbered for ``keep``.

    Per-prototype files ``p{old}_*`` become ``p{new}_*``; ``records.csv`` rows and the box arrays
    are selected and renumbered; other files are copied unchanged. Returns the files written.
    """
    new_number = {old: new for new, old in enumerate(keep)}
    target.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in sorted(source.iterdir()):
        if not path.is_file():
            continue
        match = _PER_PROTOTYPE.match(path.name)
        if match:
            old = int(match.group(1))
            if old in new_number:
                shutil.copyfile(path, target / f"p{new_number[old]:04d}_{match.group(2)}")
                written += 1
        elif path.name == "records.csv":
            records = pd.read_csv(path)
            records = records.set_index("prototype", drop=False).loc[keep].reset_index(drop=True)
            records.insert(1, "old_prototype", records["prototype"])
            records["prototype"] = np.arange(len(keep))
            with atomic_open(target / path.name, "w", newline="") as handle:
                records.to_csv(handle, index=False)
            written += 1
        elif path.suffix == ".npy" and path.name.startswith("boxes_"):
            with atomic_path(target / path.name) as tmp, open(tmp, "wb") as handle:
                np.save(handle, np.load(path, allow_pickle=False)[keep])
            written += 1
        else:
            shutil.copyfile(path, target / path.name)
            written += 1
    return written


def save_prune_report(report: pd.DataFrame, out_dir: str | Path) -> Path:
    """Write ``prune_report.csv`` into ``out_dir``."""
    path = Path(out_dir) / "prune_report.csv"
    with atomic_open(path, "w", newline="") as handle:
        report.to_csv(handle, index=False)
    return path


@dataclass(frozen=True)
class PruneConfig:
    """Pruning settings (original: k = 6, τ = 3, 100 last-layer epochs at lr 1e-4)."""

    k: int = setting(6, "nearest images inspected per prototype")
    tau: int = setting(3, "minimum own-class images among them to keep a prototype")
    last_layer_epochs: int = setting(100, "last-layer epochs after pruning (0 skips)")
    lr: float = setting(1e-4, "last-layer learning rate")
    batch_size: int = setting(75, "images per batch")
    seed: int = setting(0, "seed of the last-layer epochs")
    workers: int = setting(0, "data-loading worker processes")

    def __post_init__(self) -> None:
        if self.k < 1:
            raise UserError(f"k must be at least 1, got {self.k}")
        if not 0 <= self.tau <= self.k:
            raise UserError(f"tau (τ = {self.tau}) must be between 0 and k ({self.k}), the "
                            "nearest images it counts among")
        if self.last_layer_epochs < 0:
            raise UserError("last-layer-epochs must be 0 or more")


def prune_model_folder(
    model_dir: str | Path,
    push_data: str | Path,
    out_dir: str | Path,
    config: PruneConfig,
    *,
    train_data: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> pd.DataFrame:
    """Prune the model in ``model_dir`` with the nearest images of ``push_data``, retrain its last
    layer on ``train_data`` (default: the push data) and save it with its artefacts and report."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if out_dir.resolve() == model_dir.resolve():
        raise UserError(f"--out {out_dir} is the input model folder; choose a new folder")
    model = require_protopnet(load_model(model_dir, device=device), "prune")
    dataset = open_dataset(model, push_data)
    neighbours = find_neighbours(
        model, dataset, config.k, batch_size=config.batch_size, workers=config.workers,
        progress=progress,
    )
    report = prune_report(
        neighbours, np.asarray(dataset.targets), model.prototype_class.cpu().numpy(),
        config.k, config.tau,
    )
    keep = apply_pruning(model, report)
    if config.last_layer_epochs > 0:
        train_set = dataset if train_data is None else open_dataset(model, train_data)
        train_last_layer(
            model, train_set, epochs=config.last_layer_epochs, lr=config.lr,
            batch_size=config.batch_size, device=device, seed=config.seed,
        )
    metadata = dict(model_metadata(model_dir))
    metadata["pruning"] = {
        "source_model": str(model_dir),
        "push_data": str(push_data),
        "train_data": str(train_data or push_data),
        **asdict(config),
        "prototypes_before": len(report),
        "prototypes_after": len(keep),
    }
    save_model(model, out_dir, metadata=metadata)
    if (model_dir / "prototypes").is_dir():
        copy_prototype_artifacts(model_dir / "prototypes", out_dir / "prototypes", keep)
    save_prune_report(report, out_dir)
    return report
