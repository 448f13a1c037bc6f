"""Explanation figures (matplotlib, object-oriented API: no pyplot state, safe in worker processes).

Every function returns a :class:`matplotlib.figure.Figure`; :func:`save_figure` writes it as PNG
and/or SVG. Boxes are ``(h0, h1, w0, w1)`` in pixels, end exclusive. Text that comes from data is
drawn with ``parse_math=False`` so a ``$`` in a class name is shown as it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from protoexplain.fileio import atomic_path

Box = tuple[int, int, int, int]
BOX_COLOUR = "#ffd400"
LOCAL_LABEL = "local importance Δ = s − s_m"
GLOBAL_LABEL = "global importance (similarity-weighted Δ)"
SPLIT_COLOURS = ("#3b6ea8", "#d9822b", "#5a9e5a", "#8c6bb1")


def _show(ax, image: np.ndarray | None, title: str, box: Box | None = None) -> None:
    """An image panel with an optional box; a note when the image is missing."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9, parse_math=False)
    if image is None:
        ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes)
        return
    ax.imshow(np.asarray(image))
    if box is not None:
        h0, h1, w0, w1 = box
        ax.add_patch(
            Rectangle((w0 - 0.5, h0 - 0.5), w1 - w0, h1 - h0, fill=False, lw=2, ec=BOX_COLOUR)
        )


def _ordered(values: Mapping[str, float]) -> list[tuple[str, float]]:
    """Items sorted by value, largest first (NaN last)."""
    return sorted(values.items(), key=lambda kv: (np.isnan(kv[1]), -np.nan_to_num(kv[1])))


def explanation_panel(
    test_image: np.ndarray | None,
    test_box: Box | None,
    prototype_crop: np.ndarray | None,
    prototype_source: np.ndarray | None,
    importances: Mapping[str, float],
    *,
    source_box: Box | None = None,
    title: str = "",
) -> Figure:
    """Paper-style panel: test image with patch, prototype crop and source, ranked importances.

    Bars run from the most important characteristic (top) to the least (bottom).
    """
    fig = Figure(figsize=(11, 2.8), layout="constrained")
    axes = fig.subplots(1, 4, width_ratios=[1, 1, 1, 1.6])
    _show(axes[0], test_image, "test image (patch boxed)", test_box)
    _show(axes[1], prototype_crop, "looks like prototype")
    _show(axes[2], prototype_source, "prototype source", source_box)
    items = _ordered(importances)
    names = [name for name, _ in items]
    values = np.array([value for _, value in items], dtype=float)
    positions = np.arange(len(items))[::-1]
    ax = axes[3]
    ax.barh(positions, values, color=np.where(values >= 0, "#3b6ea8", "#c0504d"))
    ax.set_yticks(positions, names)
    for y, v in zip(positions, values, strict=True):
        ax.text(v, y, f" {v:.3g} ", va="center", ha="left" if v >= 0 else "right", fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(LOCAL_LABEL)
    ax.set_title("because …", fontsize=9)
    ax.margins(x=0.25)
    if title:
        fig.suptitle(title, fontsize=10, parse_math=False)
    return fig


def _errors(frame: pd.DataFrame) -> np.ndarray:
    """Asymmetric error bar lengths from ``ci_low``/``ci_high`` (0 where unknown)."""
    value = frame["weighted_delta"].to_numpy(float)
    low = np.nan_to_num(value - frame["ci_low"].to_numpy(float), nan=0.0)
    high = np.nan_to_num(frame["ci_high"].to_numpy(float) - value, nan=0.0)
    return np.vstack([np.maximum(low, 0), np.maximum(high, 0)])


def global_bars(ax: Axes, scores: Mapping[str, pd.DataFrame]) -> list[str]:
    """Grouped horizontal bars with CI error bars, one group per characteristic, one bar per split.

    ``scores`` maps split → frame indexed by modification (``weighted_delta, ci_low, ci_high``).
    Groups are ordered by the first split's score, largest at the top. Returns the group order.
    """
    splits = list(scores)
    first = scores[splits[0]]["weighted_delta"].astype(float)
    order = [name for name, _ in _ordered(first.to_dict())]
    for frame in list(scores.values())[1:]:
        order += [m for m in frame.index if m not in order]
    height = 0.8 / len(splits)
    base = np.arange(len(order))[::-1].astype(float)
    for k, split in enumerate(splits):
        frame = scores[split].reindex(order)
        offset = (len(splits) - 1) / 2 * height - k * height
        ax.barh(
            base + offset, frame["weighted_delta"].to_numpy(float), height=height,
            xerr=_errors(frame), capsize=2, label=split,
            color=SPLIT_COLOURS[k % len(SPLIT_COLOURS)],
        )
    ax.set_yticks(base, order)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(GLOBAL_LABEL)
    if len(splits) > 1:
        ax.legend(fontsize=8, loc="lower right")
    return order


def global_panel(
    crop: np.ndarray | None,
    source: np.ndarray | None,
    source_box: Box | None,
    nearest: Sequence[tuple[np.ndarray, str]],
    scores: Mapping[str, pd.DataFrame],
    *,
    title: str = "",
) -> Figure:
    """Per-prototype panel: crop, source with box, nearest patches, global bars with CIs."""
    columns = 2 + len(nearest)
    fig = Figure(figsize=(max(7.0, 1.6 * columns), 5.2), layout="constrained")
    grid = fig.add_gridspec(2, columns, height_ratios=[1, 1.5])
    _show(fig.add_subplot(grid[0, 0]), crop, "prototype")
    _show(fig.add_subplot(grid[0, 1]), source, "source (box)", source_box)
    for k, (image, label) in enumerate(nearest):
        _show(fig.add_subplot(grid[0, 2 + k]), image, label)
    if scores:
        global_bars(fig.add_subplot(grid[1, :]), scores)
    if title:
        fig.suptitle(title, fontsize=10, parse_math=False)
    return fig


def dose_response(scores: pd.DataFrame) -> Figure | None:
    """One small plot per characteristic with several strengths: score vs strength with CI band.

    ``scores``: one prototype's rows (``modification, strength, weighted_delta, ci_low, ci_high``,
    optional ``split``). ``None`` when no characteristic has more than one strength.
    """
    counts = scores.groupby("modification")["strength"].nunique()
    names = [m for m in scores["modification"].unique() if counts[m] > 1]
    if not names:
        return None
    fig = Figure(figsize=(2.6 * len(names), 2.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names), squeeze=False)[0])
    splits = scores["split"].unique() if "split" in scores else [None]
    for ax, name in zip(axes, names, strict=True):
        for k, split in enumerate(splits):
            rows = scores[scores["modification"] == name]
            if split is not None:
                rows = rows[rows["split"] == split]
            rows = rows.sort_values("strength")
            colour = SPLIT_COLOURS[k % len(SPLIT_COLOURS)]
            x = rows["strength"].to_numpy(float)
            ax.plot(x, rows["weighted_delta"].to_numpy(float), "o-", color=colour,
                    label=split or None)
            ax.fill_between(x, rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float),
                            color=colour, alpha=0.2, lw=0)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(name, fontsize=9, parse_math=False)
        ax.set_xlabel("strength")
        ax.set_ylabel("global importance")
    if len(splits) > 1:
        axes[0].legend(fontsize=7)
    return fig


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
