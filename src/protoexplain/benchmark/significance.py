"""How sure are the benchmark's top-1 shares? Intervals and a trained-versus-control test.

Each share counts prototypes whose most important characteristic is the true factor. The interval
is Wilson's score interval; the comparison is a one-sided Fisher exact test of "the trained model
ranks the factor first more often than this control". Both treat a model's prototypes as
independent draws. They share one trunk, so read the numbers as indicative, not exact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest, fisher_exact

CONFIDENCE = 0.95


def share_interval(
    successes: int, total: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Wilson score interval of ``successes / total``."""
    interval = binomtest(successes, total).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def share_greater_p(successes: int, total: int, other_successes: int, other_total: int) -> float:
    """One-sided Fisher exact p-value that the first share exceeds the second."""
    table = [[successes, total - successes], [other_successes, other_total - other_successes]]
    return float(fisher_exact(table, alternative="greater").pvalue)


def _successes(row: pd.Series) -> int:
    return int(np.rint(row["top1_share"] * row["n_prototypes"]))


def add_significance(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one row per preset, family and model) with ``top1_low`` and ``top1_high`` (95 %
    interval of every share) and ``p_trained_greater`` (control rows: the trained model's share is
    higher than the control's; empty for trained rows and where no trained row exists)."""
    out = table.copy()
    intervals = [share_interval(_successes(row), int(row["n_prototypes"]))
                 for _, row in out.iterrows()]
    out["top1_low"] = [low for low, _ in intervals]
    out["top1_high"] = [high for _, high in intervals]
    trained = out[out["model"] == "trained"].set_index(["preset", "family"])
    p_values = []
    for _, row in out.iterrows():
        key = (row["preset"], row["family"])
        if row["model"] == "trained" or key not in trained.index:
            p_values.append(np.nan)
            continue
        reference = trained.loc[key]
        p_values.append(share_greater_p(_successes(reference), int(reference["n_prototypes"]),
                                        _successes(row), int(row["n_prototypes"])))
    out["p_trained_greater"] = p_values
    return out
