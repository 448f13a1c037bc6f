"""Find and read what a report shows: the model, explanation scores, evaluation and nearest patches.

A report can be built from a pipeline run folder (``train/model``, ``pruned/``, ``evaluation/``,
``nearest/``, ``explain/<split>/``), a training run folder (``model/``) or a model folder; any part
may be missing. Readers check the documented columns and name the file when one is absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from protoexplain.errors import UserError
from protoexplain.fileio import read_json
from protoexplain.models.checkpoint import check_weights

MODEL_FILE = "model.json"
GLOBAL_COLUMNS = (
    "prototype", "prototype_class", "modification", "strength", "weighted_delta", "n_images",
    "ci_low", "ci_high",
)
NEAREST_COLUMNS = ("prototype", "rank", "image", "distance")
SPLIT_ORDER = ("train", "test")


@dataclass
class RunInputs:
    """Where each part of a run lives (``None`` / empty when absent)."""

    root: Path
    model_dir: Path
    explain: dict[str, Path] = field(default_factory=dict)
    evaluation_dir: Path | None = None
    nearest_dir: Path | None = None
    images_dir: Path | None = None


def _is_model(path: Path) -> bool:
    return (path / MODEL_FILE).is_file()


def _model_named_by_explain(explain: dict[str, Path], root: Path) -> Path | None:
    """The model folder an ``explain.json`` names, when it still exists."""
    for directory in explain.values():
        path = directory / "explain.json"
        if not path.is_file():
            continue
        named = read_json(path).get("model")
        if isinstance(named, str):
            for candidate in (Path(named), root / named):
                if _is_model(candidate):
                    return candidate
    return None


def _find_explain(root: Path) -> dict[str, Path]:
    base = root / "explain"
    if not base.is_dir():
        return {}
    found = {p.name: p for p in base.iterdir() if (p / "global_scores.csv").is_file()}
    order = {name: i for i, name in enumerate(SPLIT_ORDER)}
    return {k: found[k] for k in sorted(found, key=lambda n: (order.get(n, len(order)), n))}


def _check_explanations_match(model: Path, explain: dict[str, Path]) -> None:
    """Refuse explanations made with a model of another prototype count than ``model``."""
    spec = read_json(model / MODEL_FILE).get("spec", {})
    shape = spec.get("prototype_shape") if isinstance(spec, dict) else None
    if not isinstance(shape, list) or not shape:
        return
    for split, directory in explain.items():
        path = directory / "explain.json"
        recorded = read_json(path).get("n_prototypes") if path.is_file() else None
        if isinstance(recorded, int) and recorded != shape[0]:
            raise UserError(
                f"{directory} ({split}) explains a model with {recorded} prototypes but {model} "
                f"has {shape[0]}; pass the model it was made with (--model) or its own explanation"
            )


def locate_inputs(
    run_dir: str | os.PathLike,
    *,
    model_dir: str | os.PathLike | None = None,
    explain: dict[str, str | os.PathLike] | None = None,
    evaluation_dir: str | os.PathLike | None = None,
    nearest_dir: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
) -> RunInputs:
    """Resolve the parts of ``run_dir``; explicit arguments override what is found there."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(
            f"{root} is not a folder; pass a run folder, training folder or model folder"
        )
    found_explain = (
        {k: Path(v) for k, v in explain.items()} if explain else _find_explain(root)
    )
    for split, path in found_explain.items():
        if not (path / "global_scores.csv").is_file():
            raise UserError(
                f"{path} has no global_scores.csv; pass an 'explain' output folder for {split}"
            )
    if model_dir is not None:
        model = Path(model_dir)
    elif _is_model(root):
        model = root
    else:
        candidates = [root / "pruned", root / "pruned" / "model", root / "train" / "model",
                      root / "model"]
        model = _model_named_by_explain(found_explain, root) or next(
            (c for c in candidates if _is_model(c)), None
        )
    if model is None or not _is_model(model):
        raise UserError(
            f"no model found in {root}: pass a pipeline run folder, a training run folder "
            f"(with model/) or a model folder (with {MODEL_FILE}), or name one with --model"
        )
    check_weights(model)
    _check_explanations_match(model, found_explain)
    evaluation = Path(evaluation_dir) if evaluation_dir else root / "evaluation"
    nearest = Path(nearest_dir) if nearest_dir else root / "nearest"
    given = ((evaluation_dir, evaluation / "metrics.json", "an 'evaluate'"),
             (nearest_dir, nearest / "nearest.csv", "a 'nearest'"))
    for named, needed, kind in given:
        if named and not needed.is_file():
            raise UserError(f"{named} has no {needed.name}; pass {kind} output folder")
    if images_dir and not Path(images_dir).is_dir():
        raise UserError(f"image folder {images_dir} does not exist")
    return RunInputs(
        root=root,
        model_dir=model,
        explain=found_explain,
        evaluation_dir=evaluation if (evaluation / "metrics.json").is_file() else None,
        nearest_dir=nearest if (nearest / "nearest.csv").is_file() else None,
        images_dir=Path(images_dir) if images_dir else None,
    )


def read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """A CSV with the ``required`` columns; a clear error naming the file otherwise."""
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise UserError(f"cannot read {path}: {error}") from error
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise UserError(
            f"{path} lacks the columns {', '.join(missing)}; rerun the step that wrote it"
        )
    return table


def read_records(model_dir: Path) -> pd.DataFrame | None:
    """``prototypes/records.csv`` of a model folder (push artefacts), when present."""
    path = model_dir / "prototypes" / "records.csv"
    return read_table(path, ("prototype",)) if path.is_file() else None


def read_global_scores(explain_dir: Path) -> pd.DataFrame:
    """``global_scores.csv`` of one explanation split."""
    return read_table(explain_dir / "global_scores.csv", GLOBAL_COLUMNS)


def read_optional_json(path: Path) -> dict[str, Any]:
    """A JSON object, or ``{}`` when the file is absent."""
    return read_json(path) if path.is_file() else {}


def read_nearest(nearest_dir: Path | None) -> pd.DataFrame | None:
    """``nearest.csv`` when a nearest-patch folder exists."""
    if nearest_dir is None:
        return None
    return read_table(nearest_dir / "nearest.csv", NEAREST_COLUMNS)
