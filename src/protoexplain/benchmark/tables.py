"""The benchmark's markdown table and the choice of a recommended family."""

from __future__ import annotations

import pandas as pd

#: Presets on which the recommended family must recover the factor.
KEY_PRESETS = ("hue", "shape")


def recommend_family(table: pd.DataFrame) -> str:
    """The family with the highest mean top-1 share on :data:`KEY_PRESETS` (trained models),
    ties broken by the mean top-1 share over every preset."""
    trained = table[table["model"] == "trained"]
    key = trained[trained["preset"].isin(KEY_PRESETS)]
    if key.empty:
        key = trained
    order = pd.DataFrame({
        "key": key.groupby("family")["top1_share"].mean(),
        "all": trained.groupby("family")["top1_share"].mean(),
    }).fillna(0.0)
    return str(order.sort_values(["key", "all"], ascending=False).index[0])


def percent(value: float) -> str:
    """``0.975`` → ``98%`` (the tables' way of writing a share)."""
    return f"{100 * value:.0f}%"


def _with_interval(row: pd.Series) -> str:
    """``98% (87–100)``: the share and its 95 % interval, when the table has one."""
    if pd.isna(row.get("top1_low")) or pd.isna(row.get("top1_high")):
        return percent(row["top1_share"])
    low, high = 100 * row["top1_low"], 100 * row["top1_high"]
    return f"{percent(row['top1_share'])} ({low:.0f}–{high:.0f})"


def _with_p_value(row: pd.Series) -> str:
    """``15% (p < 0.001)``: a control's share and the p-value that the trained share is higher."""
    p_value = row.get("p_trained_greater")
    if pd.isna(p_value):
        return percent(row["top1_share"])
    shown = "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"
    return f"{percent(row['top1_share'])} ({shown})"


#: Controls reported next to the trained model, in table order: (model kind, column label).
CONTROLS = (
    ("control_trunk", "trunk control"),
    ("control_patches", "patch control"),
    ("control_random", "random control"),
)


def markdown_table(table: pd.DataFrame, recommended: str) -> str:
    """One row per (preset, family): top-1 share and mean rank of the trained model and of each
    control (``–`` where a control was not run)."""
    by_model = {kind: rows.set_index(["preset", "family"])
                for kind, rows in table.groupby("model")}
    trained = by_model.get("trained", table.iloc[0:0].set_index(["preset", "family"]))
    header = ["preset", "family", "test acc.", "top-1 true factor", "mean rank"]
    for _, label in CONTROLS:
        header += [f"{label} top-1", f"{label} mean rank"]
    header.append("top characteristics (trained)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in trained.iterrows():
        preset, family = key
        name = f"**{family}**" if family == recommended else family
        cells = [preset, name, percent(row["accuracy"]), _with_interval(row),
                 f"{row['mean_rank']:.2f}"]
        for kind, _ in CONTROLS:
            rows = by_model.get(kind)
            if rows is not None and key in rows.index:
                cells += [_with_p_value(rows.loc[key]), f"{rows.loc[key, 'mean_rank']:.2f}"]
            else:
                cells += ["–", "–"]
        cells.append(str(row["tops"]))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Recommended family: **{recommended}** (best top-1 share on "
                 f"{' and '.join(KEY_PRESETS)}). Ranks are among 6 characteristics (1 = top).")
    if "p_trained_greater" in table.columns:
        lines.append("")
        lines.append("In brackets: after the trained share its 95 % Wilson interval; after a "
                     "control's share the one-sided Fisher exact p-value that the trained model "
                     "ranks the true factor first more often than that control. Both treat the "
                     "prototypes as independent (they share a trunk): indicative only.")
    return "\n".join(lines) + "\n"
