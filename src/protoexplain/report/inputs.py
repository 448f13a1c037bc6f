"""Find and read what a report shows: the model, explanation scores, evaluation, nearest patches
and the training log.

A report can be built from a pipeline run folder (``train/model``, ``train/metrics.csv``,
``pruned/``, ``evaluation/``, ``nearest/``, ``explain/<split>/``), a training run folder
(``model/``, ``metrics.csv``) or a model folder; any part may be missing. Readers check the
documented columns and name the file when one is absent.
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
TRAINING_COLUMNS = ("step", "epoch", "phase", "loss", "train_acc", "val_acc", "test_acc")
PREDICTION_COLUMNS = ("image", "true", "predicted", "correct", "probability")
TRAINING_LOG = "metrics.csv"
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
    training_log: Path | None = None


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
    description = read_json(model / MODEL_FILE)
    spec = description.get("spec", {})
    shape = spec.get("prototype_shape") if isinstance(spec, dict) else None
    count = description.get("num_prototypes", shape[0] if isinstance(shape, list) else None)
    if not isinstance(count, int):
        return
    for split, directory in explain.items():
        path = directory / "explain.json"
        recorded = read_json(path).get("n_prototypes") if path.is_file() else None
        if isinstance(recorded, int) and recorded != count:
            raise UserError(
                f"{directory} ({split}) explains a model with {recorded} prototypes but {model} "
                f"has {count}; pass the model it was made with (--model) or its own explanation"
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
    logs = (root / "train" / TRAINING_LOG, root / TRAINING_LOG, model.parent / TRAINING_LOG)
    return RunInputs(
        root=root,
        model_dir=model,
        training_log=next((log for log in logs if log.is_file()), None),
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


def read_training_log(path: Path | None) -> pd.DataFrame | None:
    """A training run's ``metrics.csv`` (one row per phase of an epoch), when there is one."""
    return None if path is None else read_table(path, TRAINING_COLUMNS)


def read_confusion(evaluation_dir: Path | None) -> pd.DataFrame | None:
    """``confusion.csv`` of an evaluation (rows true class, columns predicted), when present."""
    path = evaluation_dir / "confusion.csv" if evaluation_dir else None
    if path is None or not path.is_file():
        return None
    table = read_table(path, ("true",)).set_index("true")
    if list(table.index.astype(str)) != list(table.columns):
        raise UserError(f"{path} is not square with the same classes in rows and columns; "
                        "rerun 'evaluate'")
    return table


def read_predictions(evaluation_dir: Path | None) -> pd.DataFrame | None:
    """``predictions.csv`` of an evaluation (one row per image), when present."""
    path = evaluation_dir / "predictions.csv" if evaluation_dir else None
    return read_table(path, PREDICTION_COLUMNS) if path is not None and path.is_file() else None
