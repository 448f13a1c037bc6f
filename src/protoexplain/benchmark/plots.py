"""Dose–response figures: mean importance of each characteristic against its mean ΔE2000."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from protoexplain.fileio import atomic_path

#: Line style and marker per model kind (anything else: solid, no marker).
STYLES = {
    "trained": ("-", "o"),
    "control_trunk": (":", "."),
    "control_patches": ("-.", "+"),
    "control_random": ("--", "x"),
}

#: How the legend explains the line styles.
LEGEND_TITLE = "dotted: trunk control\ndash-dot: patch control\ndashed: random control"


def plot_dose_response(dose: pd.DataFrame, preset: str, path: Path) -> Path:
    """One panel per calibrated family (trained model solid, trunk control dotted, patch control
    dash-dotted, random control dashed); saved as PNG."""
    rows = dose[dose["preset"] == preset]
    families = sorted(rows["family"].unique()) or ["(none)"]
    fig = Figure(figsize=(5.2 * len(families), 3.8))
    axes = fig.subplots(1, len(families), squeeze=False)
    names = sorted(rows["modification"].unique())
    colours = {name: f"C{i}" for i, name in enumerate(names)}
    for ax, family in zip(axes[0], families, strict=True):
        subset = rows[rows["family"] == family]
        for (name, kind), group in subset.groupby(["modification", "model"]):
            group = group.sort_values("delta_e")
            style, marker = STYLES.get(kind, ("-", "none"))
            ax.plot(group["delta_e"], group["importance"], style, marker=marker,
                    color=colours[name], label=name if kind == "trained" else None)
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.set_title(f"{preset}: {family}")
        ax.set_xlabel("mean ΔE2000 of the modification")
        ax.set_ylabel("mean global importance")
        if not subset.empty:
            ax.legend(fontsize=7, title=LEGEND_TITLE, title_fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path
