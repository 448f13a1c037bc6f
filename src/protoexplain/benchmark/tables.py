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


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def markdown_table(table: pd.DataFrame, recommended: str) -> str:
    """One row per (preset, family): trained and control top-1 share and mean rank."""
    trained = table[table["model"] == "trained"].set_index(["preset", "family"])
    control = table[table["model"] == "control"].set_index(["preset", "family"])
    lines = [
        "| preset | family | test acc. | top-1 true factor | mean rank | control top-1 "
        "| control mean rank | top characteristics (trained) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, row in trained.iterrows():
        preset, family = key
        ctrl = control.loc[key] if key in control.index else None
        name = f"**{family}**" if family == recommended else family
        ctrl_share = _percent(ctrl["top1_share"]) if ctrl is not None else "–"
        ctrl_rank = f"{ctrl['mean_rank']:.2f}" if ctrl is not None else "–"
        lines.append(
            f"| {preset} | {name} | {_percent(row['accuracy'])} | {_percent(row['top1_share'])} "
            f"| {row['mean_rank']:.2f} | {ctrl_share} | {ctrl_rank} | {row['tops']} |"
        )
    lines.append("")
    lines.append(f"Recommended family: **{recommended}** (best top-1 share on "
                 f"{' and '.join(KEY_PRESETS)}). Ranks are among 6 characteristics (1 = top).")
    return "\n".join(lines) + "\n"
