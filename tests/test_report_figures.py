"""Content of the report's charts (inline SVG layouts) and summary figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from protoexplain.report import charts, figures


def test_bar_chart_orders_groups_scales_bars_and_draws_intervals() -> None:
    series = {"train": {"hue": (0.2, 0.1, 0.4), "shape": (0.9, 0.8, 1.1),
                        "texture": (-0.5, -0.6, -0.3)},
              "test": {"hue": (0.1, None, None), "shape": (0.8, 0.7, 1.0)}}
    order = charts.ordered_groups({m: v[0] for m, v in series["train"].items()})
    assert order == ["shape", "hue", "texture"]
    chart = charts.bar_chart(order, series, figures.GLOBAL_LABEL)
    assert [name for name, _ in chart.rows] == order
    ys = [y for _, y in chart.rows]
    assert ys == sorted(ys)  # drawn top to bottom in the given order
    assert len(chart.bars) == 5  # test has no texture
    # one pixel scale for every bar: length / value is the same, bars start at zero
    ticks = chart.ticks
    scale = (ticks[-1].position - ticks[0].position) / (float(ticks[-1].text)
                                                        - float(ticks[0].text))
    for bar in chart.bars:  # coordinates are rounded to 0.1 px
        assert bar.x1 - bar.x0 == pytest.approx(abs(bar.value) * scale, abs=0.15)
        assert (bar.x1 if bar.value < 0 else bar.x0) == chart.zero
    shape_train = next(b for b in chart.bars if b.series == "train" and b.value == 0.9)
    low, high = shape_train.interval
    assert high - low == pytest.approx(0.3 * scale, abs=0.15)
    assert next(b for b in chart.bars if b.value == 0.1).interval is None
    assert [name for name, _ in chart.legend] == ["train", "test"]
    ticks = [t.position for t in chart.ticks]
    assert chart.plot_left <= min(ticks) and max(ticks) <= chart.plot_right


def test_bar_chart_sign_colours_and_nice_ticks() -> None:
    values = {"local": {"a": (2.0, None, None), "b": (-1.0, None, None)}}
    chart = charts.bar_chart(["a", "b"], values, figures.LOCAL_LABEL, sign_colours=True)
    assert [b.colour for b in chart.bars] == [charts.POSITIVE, charts.NEGATIVE]
    assert chart.legend == []
    # a range of 3 in about 4 intervals: 0.75 apart, rounded up to the nice step 1
    assert charts.nice_ticks(-1.0, 2.0) == [-1.0, 0.0, 1.0, 2.0]
    assert charts.nice_ticks(0.0, 0.03) == pytest.approx([0.0, 0.01, 0.02, 0.03])


def test_line_chart_draws_points_by_strength_with_a_band() -> None:
    rows = {"train": [(0.2, 3.0, 2.5, 3.5), (0.05, 1.0, 0.5, 1.5), (0.1, 2.0, 1.5, 2.5)]}
    chart = charts.line_chart("hue", rows)
    line = chart.lines[0]
    assert [(s, v) for _, _, s, v in line.points] == [(0.05, 1.0), (0.1, 2.0), (0.2, 3.0)]
    xs = [x for x, _, _, _ in line.points]
    ys = [y for _, y, _, _ in line.points]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)  # larger values drawn higher
    assert len(line.band) == 6 and [t.text for t in chart.x_ticks] == ["0.05", "0.1", "0.2"]
    assert chart.zero is not None and chart.zero >= max(ys)


def test_training_curves_and_confusion_heatmap() -> None:
    log = pd.DataFrame({"step": [0, 1, 2], "epoch": [0, 0, 1], "phase": ["joint", "push", "joint"],
                        "loss": [2.0, None, 1.0], "train_acc": [0.3, None, 0.6],
                        "val_acc": [0.2, 0.25, 0.5], "test_acc": [None, 0.3, 0.55]})
    loss_ax, acc_ax = figures.training_curves(log).axes
    joint = loss_ax.get_lines()[0]
    assert list(joint.get_xdata()) == [0, 2] and list(joint.get_ydata()) == [2.0, 1.0]
    assert [t.get_text() for t in acc_ax.get_legend().get_texts()] == [
        "train", "validation", "test"]
    assert list(acc_ax.get_lines()[1].get_ydata()) == [0.2, 0.25, 0.5]
    matrix = pd.DataFrame([[3, 1], [0, 0]], index=["a", "b"], columns=["a", "b"])
    image = figures.confusion_heatmap(matrix).axes[0].get_images()[0]
    np.testing.assert_allclose(image.get_array(), [[0.75, 0.25], [0.0, 0.0]])


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
    fig = figures.score_heatmap(pd.DataFrame({"a $ b < c": [1.0, -1.0]}))
    paths = figures.save_figure(fig, tmp_path / "panel")
    assert [p.name for p in paths] == ["panel.png", "panel.svg"]
    assert paths[0].read_bytes().startswith(b"\x89PNG")
    assert "<svg" in paths[1].read_text(encoding="utf-8")
