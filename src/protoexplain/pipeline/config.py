"""The pipeline config: one TOML file from data to report.

``[dataset]`` says where images come from, ``[train]`` is a whole training config (the same
sections as ``protoexplain config --print-default``; data paths are filled in by the pipeline when
left empty), and ``[prune]``, ``[nearest]``, ``[explain]``, ``[report]`` configure the later steps.
Top-level keys: ``device`` and ``threads`` (the CPU threads torch uses; the numbers depend on it,
see :mod:`protoexplain.numerics`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protoexplain.choices import BACKGROUNDS, EXPLAIN_MODES, MODIFY_AT
from protoexplain.errors import UserError
from protoexplain.explain.modifications import resolve_settings
from protoexplain.tomlconfig import from_dict, read_toml
from protoexplain.training.config import config_from_dict

SOURCES = ("synthetic", "folder", "cub")


@dataclass
class DatasetSection:
    """Where the images come from."""

    source: str = "synthetic"  # synthetic | folder (root/train, root/test) | cub (unpacked CUB)
    root: str = ""
    preset: str = "mixed"
    background: str = "plain"  # plain | like-parts (docs/data.md)
    size: int = 128
    train_per_class: int = 60
    test_per_class: int = 20
    seed: int = 0
    image_format: str = "jpg"


@dataclass
class PruneSection:
    """Optional pruning after training (original: k 6, τ 3, 100 last-layer epochs)."""

    enabled: bool = False
    k: int = 6
    tau: int = 3
    last_layer_epochs: int = 100


@dataclass
class NearestSection:
    """Nearest training patches per prototype."""

    enabled: bool = True
    k: int = 5


@dataclass
class ExplainSection:
    """Explanation scores (Nauta et al.) on each split."""

    splits: list[str] = field(default_factory=lambda: ["train", "test"])
    family: str = "paper"
    mode: str = "faithful"
    modify_at: str = "native"
    modifications: list[str] = field(default_factory=list)
    strengths: dict[str, list[float]] = field(default_factory=dict)
    batch_size: int = 64
    workers: int = 0
    local_top_k: int = 0
    max_images: int = 0


@dataclass
class ReportSection:
    """The HTML report."""

    enabled: bool = True
    max_prototype_pages: int = 0
    workers: int = 1


@dataclass
class PipelineConfig:
    """Everything ``protoexplain run`` does."""

    dataset: DatasetSection = field(default_factory=DatasetSection)
    prune: PruneSection = field(default_factory=PruneSection)
    nearest: NearestSection = field(default_factory=NearestSection)
    explain: ExplainSection = field(default_factory=ExplainSection)
    report: ReportSection = field(default_factory=ReportSection)
    train: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    threads: int = 0  # CPU threads for torch during the run (0: torch's default, one per core)


#: Settings with a fixed set of values: (section, key, allowed values).
CHOICES = (
    ("dataset", "background", BACKGROUNDS),
    ("explain", "mode", EXPLAIN_MODES),
    ("explain", "modify_at", MODIFY_AT),
)

#: Numeric settings and their smallest allowed value: (section, key, minimum).
MINIMUMS = (
    ("dataset", "train_per_class", 1), ("dataset", "test_per_class", 1),
    ("prune", "k", 1), ("prune", "tau", 0), ("prune", "last_layer_epochs", 0),
    ("nearest", "k", 1),
    ("explain", "batch_size", 1), ("explain", "workers", 0), ("explain", "local_top_k", 0),
    ("explain", "max_images", 0),
    ("report", "max_prototype_pages", 0), ("report", "workers", 0),
)


def load_pipeline_config(path: str | os.PathLike) -> tuple[PipelineConfig, Path]:
    """Read and check a pipeline config; returns it with the folder relative paths start from."""
    path = Path(path)
    config = from_dict(PipelineConfig, read_toml(path), str(path))
    base = path.resolve().parent
    if config.dataset.source not in SOURCES:
        raise UserError(f"{path}: dataset.source must be one of {SOURCES}")
    if config.dataset.source != "synthetic":
        if not config.dataset.root:
            raise UserError(f"{path}: dataset.root is needed for source '{config.dataset.source}'")
        config.dataset.root = str((base / config.dataset.root).resolve())
    for split in config.explain.splits:
        if split not in ("train", "test"):
            raise UserError(f"{path}: explain.splits may hold 'train' and 'test', not {split!r}")
    for section, key, allowed in CHOICES:
        if getattr(getattr(config, section), key) not in allowed:
            raise UserError(f"{path}: {section}.{key} must be one of {allowed}")
    for section, key, minimum in MINIMUMS:
        value = getattr(getattr(config, section), key)
        if value < minimum:
            raise UserError(f"{path}: {section}.{key} must be at least {minimum}, got {value}")
    if config.threads < 0:
        raise UserError(f"{path}: threads must be at least 0 (0: one per core), "
                        f"got {config.threads}")
    if config.prune.tau > config.prune.k:
        raise UserError(f"{path}: prune.tau ({config.prune.tau}) cannot exceed prune.k "
                        f"({config.prune.k}), the nearest images it counts among")
    explain = config.explain
    try:
        resolve_settings(explain.modifications or None, explain.strengths, explain.family)
    except UserError as error:
        raise UserError(f"{path} [explain]: {error}") from None
    config_from_dict(config.train, f"{path} [train]")
    return config, base
