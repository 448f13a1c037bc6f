"""The pipeline config: one TOML file from data to report.

Each step's section *is* that step's config, owned by the step's package, so that a setting has
one definition, one default and one description: ``[train]`` is a
:class:`~protoexplain.training.RunConfig` (data paths left empty are filled in by the pipeline),
``[prune]`` a :class:`~protoexplain.analysis.prune.PruneConfig`, ``[evaluate]`` an
:class:`~protoexplain.analysis.evaluate.EvaluateConfig`, ``[nearest]`` a
:class:`~protoexplain.analysis.nearest.NearestConfig`, ``[explain]`` an
:class:`~protoexplain.explain.config.ExplainConfig` and ``[report]``
:class:`~protoexplain.report.options.ReportOptions`; a section adds only what the pipeline itself
needs (``enabled``, explain's ``splits``). ``[dataset]`` says where images come from. Top-level
keys: ``device`` (every step's) and ``threads`` (the CPU threads torch uses; the numbers depend
on it, see :mod:`protoexplain.numerics`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protoexplain.analysis.evaluate import EvaluateConfig
from protoexplain.analysis.nearest import NearestConfig
from protoexplain.analysis.prune import PruneConfig
from protoexplain.choices import BACKGROUNDS
from protoexplain.errors import UserError
from protoexplain.explain.config import ExplainConfig
from protoexplain.explain.modifications import resolve_settings
from protoexplain.report.options import ReportOptions
from protoexplain.tomlconfig import from_dict, read_toml, setting
from protoexplain.training.config import RunConfig, resolve_paths, validate

SOURCES = ("synthetic", "folder", "cub")
SPLITS = ("train", "test")


@dataclass
class DatasetSection:
    """Where the images come from."""

    source: str = setting("synthetic", "synthetic | folder (root/train, root/test) | cub "
                          "(unpacked CUB)")
    root: str = setting("", "the folder or CUB root, relative to the config file")
    preset: str = setting("mixed", "synthetic preset (docs/data.md)")
    background: str = setting("plain", "synthetic background: plain | like-parts (docs/data.md)")
    size: int = setting(128, "synthetic image side in pixels")
    train_per_class: int = setting(60, "synthetic training images per class")
    test_per_class: int = setting(20, "synthetic test images per class")
    seed: int = setting(0, "seed of the synthetic images")
    image_format: str = setting("jpg", "cub: jpg (quality 95) | png")


@dataclass(frozen=True)
class PruneStep(PruneConfig):
    """Pruning after training (ProtoPNet only), when enabled."""

    enabled: bool = setting(False, "prune the trained model")


@dataclass
class NearestStep(NearestConfig):
    """Each prototype's nearest training patches, when enabled."""

    enabled: bool = setting(True, "find each prototype's nearest training patches")


@dataclass
class ExplainStep(ExplainConfig):
    """Explanation scores (Nauta et al.) on each split."""

    splits: list[str] = field(default_factory=lambda: list(SPLITS), metadata={
        "doc": "splits to explain: train and/or test (the test split is compared with train)"})


@dataclass
class ReportStep(ReportOptions):
    """The HTML report, when enabled."""

    enabled: bool = setting(True, "write the HTML report")


@dataclass
class PipelineConfig:
    """Everything ``protoexplain run`` does."""

    dataset: DatasetSection = field(default_factory=DatasetSection)
    train: RunConfig = field(default_factory=RunConfig)
    prune: PruneStep = field(default_factory=PruneStep)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    nearest: NearestStep = field(default_factory=NearestStep)
    explain: ExplainStep = field(default_factory=ExplainStep)
    report: ReportStep = field(default_factory=ReportStep)
    device: str = setting("auto", "auto | cpu | cuda | cuda:N (the --device option overrides it)")
    threads: int = setting(0, "CPU threads for torch during the run (0: torch's default, one "
                           "per core)")


#: Settings that belong to the whole run, set once at the top level, not in a step's section.
RUN_WIDE = {"device": "the top-level 'device'", "progress": "always on in a pipeline run"}


def load_pipeline_config(path: str | os.PathLike) -> tuple[PipelineConfig, Path]:
    """Read and check a pipeline config; returns it with the folder relative paths start from."""
    path = Path(path)
    data = read_toml(path)
    _refuse_run_wide_keys(data, path)
    config = from_dict(PipelineConfig, data, str(path))
    base = path.resolve().parent
    _check_dataset(config.dataset, path, base)
    for split in config.explain.splits:
        if split not in SPLITS:
            raise UserError(f"{path}: explain.splits may hold 'train' and 'test', not {split!r}")
    for name in ("evaluate", "nearest", "explain", "report"):
        try:
            getattr(config, name).check()
        except UserError as error:
            raise UserError(f"{path} [{name}]: {error}") from None
    if config.threads < 0:
        raise UserError(f"{path}: threads must be at least 0 (0: one per core), "
                        f"got {config.threads}")
    explain = config.explain
    try:
        resolve_settings(explain.modifications or None, explain.strengths, explain.family)
    except UserError as error:
        raise UserError(f"{path} [explain]: {error}") from None
    resolve_paths(validate(config.train, f"{path} [train]"), base)
    return config, base


def _refuse_run_wide_keys(data: dict[str, Any], path: Path) -> None:
    for section, table in data.items():
        if section in ("dataset", "train") or not isinstance(table, dict):
            continue
        for key, where in RUN_WIDE.items():
            if key in table:
                raise UserError(f"{path}: {section}.{key} is set for the whole run ({where}); "
                                f"remove it from [{section}]")


def _check_dataset(dataset: DatasetSection, path: Path, base: Path) -> None:
    if dataset.source not in SOURCES:
        raise UserError(f"{path}: dataset.source must be one of {SOURCES}")
    if dataset.background not in BACKGROUNDS:
        raise UserError(f"{path}: dataset.background must be one of {BACKGROUNDS}")
    for key in ("train_per_class", "test_per_class"):
        if getattr(dataset, key) < 1:
            raise UserError(f"{path}: dataset.{key} must be at least 1, "
                            f"got {getattr(dataset, key)}")
    if dataset.source != "synthetic":
        if not dataset.root:
            raise UserError(f"{path}: dataset.root is needed for source '{dataset.source}'")
        dataset.root = str((base / dataset.root).resolve())
