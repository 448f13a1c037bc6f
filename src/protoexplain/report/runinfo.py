"""Tables about the training run and the evaluation that the report shows: the training curves
(from ``metrics.csv``), the confusion matrix and the misclassified test images."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Above this many classes the confusion matrix is a figure, not a table.
TABLE_CLASSES = 20
CURVE_COLUMNS = ("loss", "ce", "cluster", "separation", "l1", "train_acc", "val_acc", "test_acc")


def _value(value: object) -> float | None:
    number = pd.to_numeric(value, errors="coerce")
    return None if number is None or not math.isfinite(number) else float(number)


def training_rows(log: pd.DataFrame) -> list[dict]:
    """One row per (epoch, phase) in training order: the phase's last logged values."""
    ordered = log.sort_values("step", kind="stable")
    last = ordered.groupby(["epoch", "phase"], sort=False).tail(1)
    return [{"epoch": int(row["epoch"]), "phase": str(row["phase"]),
             **{c: _value(row.get(c)) for c in CURVE_COLUMNS}}
            for _, row in last.iterrows()]


@dataclass
class TrainingSummary:
    """The last logged accuracies and the best validation accuracy with its epoch and phase."""

    epochs: int
    final: dict
    best_val: dict | None


def training_summary(rows: list[dict]) -> TrainingSummary:
    """Summary of :func:`training_rows`."""
    with_val = [r for r in rows if r["val_acc"] is not None]
    best = max(with_val, key=lambda r: r["val_acc"]) if with_val else None
    return TrainingSummary(len({r["epoch"] for r in rows}), rows[-1] if rows else {}, best)


@dataclass
class Confusions:
    """The confusion matrix as the report shows it: every cell when there are few classes, and
    the most frequent mistakes (true class, predicted class, count, share of the true class)."""

    classes: list[str]
    cells: list[list[int]] | None
    top: list[dict]
    errors: int
    total: int


def confusions(matrix: pd.DataFrame, top: int = 10) -> Confusions:
    """Summary of ``confusion.csv`` (rows true class, columns predicted class)."""
    counts = matrix.to_numpy(dtype=np.int64)
    classes = [str(c) for c in matrix.columns]
    off = counts.copy()
    np.fill_diagonal(off, 0)
    rows, cols = np.nonzero(off)
    order = sorted(zip(rows.tolist(), cols.tolist(), strict=True),
                   key=lambda rc: (-off[rc], rc))[:top]
    per_class = counts.sum(axis=1)
    return Confusions(
        classes=classes,
        cells=counts.tolist() if len(classes) <= TABLE_CLASSES else None,
        top=[{"true": classes[r], "predicted": classes[c], "count": int(off[r, c]),
              "share": off[r, c] / per_class[r]} for r, c in order],
        errors=int(off.sum()), total=int(counts.sum()),
    )


def misclassified(predictions: pd.DataFrame, limit: int) -> tuple[pd.DataFrame, int, int]:
    """The ``limit`` most confident mistakes (highest probability of the wrong class first), the
    number of mistakes and of images."""
    correct = predictions["correct"].astype(str).str.lower().isin(("true", "1"))
    wrong = predictions[~correct].sort_values(["probability", "image"],
                                               ascending=[False, True], kind="stable")
    return wrong.head(limit), len(wrong), len(predictions)
