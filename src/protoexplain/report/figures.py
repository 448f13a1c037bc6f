"""The report's summary figures (matplotlib, object-oriented API: no pyplot state): the score
heatmap, train versus test, training curves and a large confusion matrix. Per-prototype charts are
inline SVG (:mod:`protoexplain.report.charts`), not figures.

Every function returns a :class:`matplotlib.figure.Figure`; :func:`save_figure` writes it as PNG
and/or SVG. Text that comes from data is drawn with ``parse_math=False`` so a ``$`` in a class
name is shown as it is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from protoexplain.fileio import atomic_path

LOCAL_LABEL = "local importance Δ = s − s_m"
GLOBAL_LABEL = "global importance (similarity-weighted Δ)"
PHASE_COLOURS = {"warm": "#8c6bb1", "joint": "#3b6ea8", "push": "#c0504d",
                 "last_layer": "#d9822b"}
ACCURACIES = (("train_acc", "train"), ("val_acc", "validation"), ("test_acc", "test"))


def score_heatmap(matrix: pd.DataFrame) -> Figure:
    """Characteristic × prototype heatmap of global scores (diverging colours centred on 0)."""
    values = matrix.to_numpy(float).T
    bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    bound = bound or 1.0
    width = min(16.0, max(5.0, 0.25 * matrix.shape[0] + 2))
    fig = Figure(figsize=(width, 0.45 * matrix.shape[1] + 1.6), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(
        values, aspect="auto", interpolation="nearest", cmap="RdBu_r",
        norm=TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound),
    )
    ax.set_yticks(np.arange(matrix.shape[1]), [str(c) for c in matrix.columns])
    if matrix.shape[0] <= 40:
        ax.set_xticks(np.arange(matrix.shape[0]), [str(p) for p in matrix.index], fontsize=7)
    ax.set_xlabel("prototype")
    ax.set_ylabel("characteristic")
    fig.colorbar(image, ax=ax, label=GLOBAL_LABEL)
    return fig


def train_test_scatter(train: pd.DataFrame, test: pd.DataFrame) -> Figure:
    """Global score on train (x) vs test (y) per prototype, one colour per characteristic."""
    fig = Figure(figsize=(5.2, 4.6), layout="constrained")
    ax = fig.add_subplot()
    names = [c for c in train.columns if c in test.columns]
    joined = train[names].add_suffix("_train").join(test[names].add_suffix("_test"), how="inner")
    for name in names:
        ax.scatter(joined[f"{name}_train"], joined[f"{name}_test"], s=12, alpha=0.7, label=name)
    values = joined.to_numpy(float)
    if np.isfinite(values).any():
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        ax.plot([low, high], [low, high], color="grey", lw=0.8, ls="--", label="train = test")
    ax.set_xlabel("global importance on train")
    ax.set_ylabel("global importance on test")
    ax.legend(fontsize=7)
    return fig


def training_curves(log: pd.DataFrame) -> Figure:
    """Loss (per logged phase, coloured by phase) and accuracies against the logged step."""
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    ordered = log.sort_values("step", kind="stable")
    for phase, rows in ordered.groupby("phase", sort=False):
        rows = rows.dropna(subset=["loss"])
        if len(rows):
            loss_ax.plot(rows["step"], rows["loss"], "o", ms=3, label=str(phase),
                         color=PHASE_COLOURS.get(str(phase)))
    loss_ax.set_xlabel("logged step")
    loss_ax.set_ylabel("training loss")
    if loss_ax.lines:
        loss_ax.set_yscale("log" if (ordered["loss"] > 0).all() else "linear")
        loss_ax.legend(fontsize=7)
    for column, label in ACCURACIES:
        rows = ordered.dropna(subset=[column])
        if len(rows):
            acc_ax.plot(rows["step"], rows[column], "o-", ms=3, label=label)
    acc_ax.set_xlabel("logged step")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_ylim(-0.02, 1.02)
    if acc_ax.lines:
        acc_ax.legend(fontsize=7)
    return fig


def confusion_heatmap(matrix: pd.DataFrame) -> Figure:
    """Row-normalised confusion matrix (rows true class, columns predicted) as an image."""
    counts = matrix.to_numpy(float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    side = min(12.0, max(4.0, 0.05 * len(matrix) + 3))
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(shares, interpolation="nearest", cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, label="share of the true class")
    return fig


def save_figure(
    fig: Figure, stem: str | os.PathLike, formats: Sequence[str] = ("png", "svg"), dpi: int = 80
) -> list[Path]:
    """Write ``fig`` as ``stem.<format>`` for each format (atomically); return the paths."""
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
        paths.append(path)
        # the first save fixed the layout; later formats reuse it instead of solving it again
        fig.set_layout_engine("none")
    return paths
