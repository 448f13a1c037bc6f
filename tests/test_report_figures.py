"""Content of the report's figures: bars, their order, error bars, axes and labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from protoexplain.report import figures


def _bars(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() < 1.0
            and p.get_fill()]


def _bar_ticks(ax) -> list[str]:
    """Tick labels from top to bottom."""
    ticks = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()],
                       strict=True), reverse=True)
    return [label for _, label in ticks]


def test_explanation_panel_orders_bars_and_boxes_patch() -> None:
    importances = {"texture": 0.75, "hue": 2.25, "contrast": 0.06, "shape": 1.01,
                   "saturation": -0.08}
    fig = figures.explanation_panel(
        np.zeros((32, 32, 3), np.uint8), (2, 10, 4, 12), np.ones((8, 8, 3)),
        np.zeros((32, 32, 3)), importances, source_box=(0, 5, 0, 5), title="<b>$x$</b>",
    )
    test_ax, crop_ax, source_ax, bar_ax = fig.axes
    bars = bar_ax.containers[0]
    assert len(bars) == 5
    assert _bar_ticks(bar_ax) == ["hue", "shape", "texture", "contrast", "saturation"]
    by_y = sorted(bars, key=lambda b: -b.get_y())
    assert [b.get_width() for b in by_y] == sorted(importances.values(), reverse=True)
    assert bar_ax.get_xlabel() == figures.LOCAL_LABEL
    box = [p for p in test_ax.patches if not p.get_fill()]
    assert len(box) == 1 and (box[0].get_x(), box[0].get_y()) == (3.5, 1.5)
    assert (box[0].get_width(), box[0].get_height()) == (8, 8)
    assert len([p for p in source_ax.patches if not p.get_fill()]) == 1
    assert not crop_ax.patches
    assert fig._suptitle.get_text() == "<b>$x$</b>"


def _frame(values: dict[str, float], spread: float = 0.1) -> pd.DataFrame:
    return pd.DataFrame(
        {"weighted_delta": values, "ci_low": {k: v - spread for k, v in values.items()},
         "ci_high": {k: v + 2 * spread for k, v in values.items()}}
    )


def test_global_panel_has_grouped_bars_with_intervals() -> None:
    train = _frame({"hue": 0.2, "shape": 0.9, "texture": 0.5})
    test = _frame({"hue": 0.1, "shape": 0.8, "texture": 0.7})
    nearest = [(np.zeros((6, 6, 3)), f"nearest {r}") for r in (1, 2, 3)]
    fig = figures.global_panel(np.ones((5, 5, 3)), np.zeros((20, 20, 3)), (1, 4, 1, 4), nearest,
                               {"train": train, "test": test})
    assert len(fig.axes) == 2 + 3 + 1
    bar_ax = fig.axes[-1]
    assert [len(c) for c in bar_ax.containers if hasattr(c, "patches")] == [3, 3]
    assert _bar_ticks(bar_ax) == ["shape", "texture", "hue"]  # ordered by train
    assert bar_ax.get_xlabel() == figures.GLOBAL_LABEL
    errorbars = [c for c in bar_ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(errorbars) == 2
    segments = errorbars[0].lines[2][0].get_segments()
    widths = sorted(round(seg[1][0] - seg[0][0], 6) for seg in segments)
    assert widths == [0.3, 0.3, 0.3]  # ci_high − ci_low
    assert [t.get_text() for t in bar_ax.get_legend().get_texts()] == ["train", "test"]
    assert [ax.get_title() for ax in fig.axes[2:5]] == ["nearest 1", "nearest 2", "nearest 3"]


def test_dose_response_only_for_several_strengths() -> None:
    rows = pd.DataFrame({
        "modification": ["hue", "hue", "hue", "shape"], "strength": [0.2, 0.05, 0.1, 4.0],
        "weighted_delta": [3.0, 1.0, 2.0, 1.0], "ci_low": [2.5, 0.5, 1.5, 0.5],
        "ci_high": [3.5, 1.5, 2.5, 1.5],
    })
    fig = figures.dose_response(rows)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [0.05, 0.1, 0.2]
    assert list(line.get_ydata()) == [1.0, 2.0, 3.0]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        "hue", "strength", "global importance")
    assert figures.dose_response(rows[rows["modification"] == "shape"]) is None


def test_heatmap_and_scatter() -> None:
    matrix = pd.DataFrame([[1.0, -2.0], [0.5, 0.0], [0.0, 3.0]], index=[4, 7, 9],
                          columns=["hue", "shape"])
    fig = figures.score_heatmap(matrix)
    ax = fig.axes[0]
    image = ax.get_images()[0]
    np.testing.assert_array_equal(image.get_array(), matrix.to_numpy().T)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["hue", "shape"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "7", "9"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("prototype", "characteristic")
    assert image.norm.vmin == -3.0 and image.norm.vmax == 3.0

    fig = figures.train_test_scatter(matrix, matrix + 0.5)
    ax = fig.axes[0]
    assert len(ax.collections) == 2
    offsets = ax.collections[1].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], matrix["shape"])
    np.testing.assert_allclose(offsets[:, 1], matrix["shape"] + 0.5)
    assert ax.get_xlabel() == "global importance on train"
    assert ax.get_ylabel() == "global importance on test"


def test_save_figure_writes_png_and_svg(tmp_path) -> None:
    fig = figures.explanation_panel(None, None, None, None, {"hue": 1.0}, title="a $ b < c")
    paths = figures.save_figure(fig, tmp_path / "panel")
    assert [p.name for p in paths] == ["panel.png", "panel.svg"]
    assert paths[0].read_bytes().startswith(b"\x89PNG")
    assert "<svg" in paths[1].read_text(encoding="utf-8")
