"""The benchmark's markdown table and the choice of a recommended family."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from protoexplain.benchmark.significance import share_interval

#: Presets on which the recommended family must recover the factor.
KEY_PRESETS = ("hue", "shape")
#: Below this test accuracy on a key preset the trained model has not learnt it: no recommendation.
MIN_ACCURACY = 0.75


@dataclass(frozen=True)
class Recommendation:
    """The family a run recommends (``None``: none) and why, in one sentence."""

    family: str | None
    reason: str

    def sentence(self) -> str:
        """The markdown line under the table."""
        if self.family is None:
            return f"No family recommended: {self.reason}."
        return f"Recommended family: **{self.family}** ({self.reason})."


def _pooled_interval(rows: pd.DataFrame) -> tuple[float, float]:
    """95 % interval of the top-1 share pooled over ``rows`` (counts summed over presets)."""
    totals = rows["n_prototypes"].astype(int)
    successes = int(np.rint(rows["top1_share"] * totals).sum())
    return share_interval(successes, int(totals.sum()))


def recommend(table: pd.DataFrame, smoke: bool = False) -> Recommendation:
    """The family with the highest mean top-1 share on :data:`KEY_PRESETS` (trained models, ties
    broken by the mean over every preset), or none: for a smoke run, when a key preset is missing
    or was learnt to less than :data:`MIN_ACCURACY`, or when the best family's interval (counts
    pooled over the key presets) overlaps the runner-up's."""
    if smoke:
        return Recommendation(None, "a --quick smoke run only checks that the benchmark works; "
                                    "its models are barely trained")
    trained = table[table["model"] == "trained"]
    missing = [p for p in KEY_PRESETS if p not in set(trained["preset"])]
    if missing:
        return Recommendation(None, f"the choice rests on {' and '.join(KEY_PRESETS)}; this run "
                                    f"lacks {', '.join(missing)}")
    key = trained[trained["preset"].isin(KEY_PRESETS)]
    accuracy = key.groupby("preset")["accuracy"].min()
    weak = [f"{preset} {percent(value)}" for preset, value in accuracy.items()
            if value < MIN_ACCURACY]
    if weak:
        return Recommendation(None, f"test accuracy below {percent(MIN_ACCURACY)} "
                                    f"({', '.join(weak)}): the model has not learnt the preset")
    order = pd.DataFrame({
        "key": key.groupby("family")["top1_share"].mean(),
        "all": trained.groupby("family")["top1_share"].mean(),
    }).fillna(0.0).sort_values(["key", "all"], ascending=False).index.tolist()
    best = str(order[0])
    low, high = _pooled_interval(key[key["family"] == best])
    basis = f"best top-1 share on {' and '.join(KEY_PRESETS)}"
    if len(order) == 1:
        return Recommendation(best, basis)
    second = str(order[1])
    other_low, other_high = _pooled_interval(key[key["family"] == second])
    if low <= other_high:
        return Recommendation(None, (
            f"{best} leads on {' and '.join(KEY_PRESETS)} but its 95 % interval "
            f"({_span(low, high)}) overlaps {second}'s ({_span(other_low, other_high)})"))
    return Recommendation(best, f"{basis}, 95 % interval {_span(low, high)} against "
                                f"{second}'s {_span(other_low, other_high)}")


def _span(low: float, high: float) -> str:
    return f"{100 * low:.0f}–{100 * high:.0f} %"


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


def markdown_table(table: pd.DataFrame, recommendation: Recommendation) -> str:
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
        name = f"**{family}**" if family == recommendation.family else family
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
    lines.append(f"{recommendation.sentence()} Ranks are among 6 characteristics (1 = top).")
    if "p_trained_greater" in table.columns:
        lines.append("")
        lines.append("In brackets: after the trained share its 95 % Wilson interval; after a "
                     "control's share the one-sided Fisher exact p-value that the trained model "
                     "ranks the true factor first more often than that control. Both treat the "
                     "prototypes as independent (they share a trunk): indicative only.")
    return "\n".join(lines) + "\n"
