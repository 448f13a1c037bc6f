"""Tables the report derives from explanation scores: one score per (prototype, characteristic),
the dominant characteristic, per-prototype significance and the split statistics.

When several strengths were computed, the report's single-strength views use each characteristic's
*primary strength*: the median of its strengths (the lower middle one when their number is even).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy import stats

from protoexplain.explain.stats import merge_moments

ALPHA = 0.05
P_COLUMNS = ("q_value", "p_adjusted", "p_value")


def primary_strengths(scores: pd.DataFrame) -> dict[str, float]:
    """Each characteristic's median strength (lower middle for an even count)."""
    result = {}
    for name, group in scores.groupby("modification", sort=False):
        values = np.sort(group["strength"].unique())
        result[str(name)] = float(values[(len(values) - 1) // 2])
    return result


def is_primary(frame: pd.DataFrame, primary: dict[str, float]) -> np.ndarray:
    """Mask of rows at their characteristic's primary strength.

    The local table stores strengths as float32, so equality is checked to float32 precision.
    """
    wanted = frame["modification"].map(primary).to_numpy(dtype=float)
    return np.isclose(frame["strength"].to_numpy(dtype=float), wanted, rtol=1e-6, atol=0.0)


def at_primary(scores: pd.DataFrame, primary: dict[str, float]) -> pd.DataFrame:
    """The rows of ``scores`` at each characteristic's primary strength."""
    return scores[is_primary(scores, primary)]


def score_matrix(scores: pd.DataFrame, primary: dict[str, float]) -> pd.DataFrame:
    """Prototypes × characteristics matrix of weighted Δ at the primary strengths."""
    table = at_primary(scores, primary).pivot_table(
        index="prototype", columns="modification", values="weighted_delta", aggfunc="first"
    )
    return table[[m for m in primary if m in table.columns]]


def dominant(matrix: pd.DataFrame) -> pd.DataFrame:
    """Per prototype: the characteristic with the largest score and that score."""
    filled = matrix.fillna(-np.inf)
    return pd.DataFrame(
        {"dominant": filled.idxmax(axis=1), "dominant_score": matrix.max(axis=1)},
        index=matrix.index,
    )


def _moments(local_path: Path, primary: dict[str, float]) -> pd.DataFrame:
    """n, Σδ and M2 = Σ (δ − mean)² per (prototype, modification) at the primary strengths,
    streamed by batches and merged with the pairwise update (no cancellation)."""
    columns = ["prototype", "modification", "strength", "delta"]
    merged: pd.DataFrame | None = None
    for batch in pq.ParquetFile(local_path).iter_batches(columns=columns, batch_size=1 << 20):
        frame = batch.to_pandas()
        frame = frame[is_primary(frame, primary)]
        groups = frame.groupby(["prototype", "modification"])["delta"]
        part = pd.DataFrame(
            {"n": groups.size(), "total": groups.sum(), "m2": groups.var(ddof=0) * groups.size()}
        )
        if merged is None:
            merged = part
            continue
        merged, part = merged.align(part, fill_value=0.0)
        merged = pd.DataFrame(
            {
                "n": merged["n"] + part["n"],
                "total": merged["total"] + part["total"],
                "m2": merge_moments(
                    merged["n"], merged["total"], merged["m2"], part["n"], part["total"],
                    part["m2"],
                ),
            }
        )
    if merged is None:
        return pd.DataFrame(columns=["n", "total", "m2"])
    return merged


def significance(
    scores: pd.DataFrame, primary: dict[str, float], local_path: Path | None
) -> pd.DataFrame | None:
    """Per (prototype, modification) p and Benjamini–Hochberg q of "mean local Δ ≠ 0".

    Uses the explanation's own columns when ``global_scores.csv`` has them; otherwise a one-sample
    t-test over the images in ``local_scores.parquet``. ``None`` when neither is available.
    """
    rows = at_primary(scores, primary)
    present = [c for c in P_COLUMNS if c in rows.columns]
    if present:
        column = present[0]
        table = rows.set_index(["prototype", "modification"])[[column]].rename(
            columns={column: "q_value"}
        )
        if column == "p_value":
            table["q_value"] = stats.false_discovery_control(table["q_value"].fillna(1.0))
        return table
    if local_path is None or not local_path.is_file():
        return None
    moments = _moments(local_path, primary)
    n = moments["n"].to_numpy(float)
    mean = moments["total"].to_numpy(float) / np.maximum(n, 1)
    var = moments["m2"].to_numpy(float) / np.maximum(n - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / np.sqrt(np.maximum(var, 0) / np.maximum(n, 1))
    p = 2 * stats.t.sf(np.abs(t), df=np.maximum(n - 1, 1))
    p = np.where(np.isfinite(t) & (n > 1), p, np.where((n > 1) & (mean != 0), 0.0, 1.0))
    return pd.DataFrame(
        {"q_value": stats.false_discovery_control(p)}, index=moments.index
    ).rename_axis(["prototype", "modification"])


@dataclass
class Distribution:
    """Mean, spread and normality of one characteristic's global scores on one split."""

    modification: str
    n: int
    mean: float
    std: float
    shapiro_w: float | None
    shapiro_p: float | None

    @property
    def normal_text(self) -> str:
        if self.shapiro_p is None:
            return "too few prototypes for a Shapiro–Wilk test (at least 3 needed)"
        verdict = "consistent with" if self.shapiro_p >= ALPHA else "not consistent with"
        return (
            f"{verdict} a normal distribution (Shapiro–Wilk W = {self.shapiro_w:.3f}, "
            f"p = {self.shapiro_p:.3g})"
        )


@dataclass
class Comparison:
    """Welch's t-test of one characteristic's global scores, train vs test."""

    modification: str
    t: float | None
    p: float | None

    @property
    def text(self) -> str:
        if self.p is None:
            return "not enough prototypes on both splits for Welch's t-test"
        if self.p >= ALPHA:
            return (
                f"train and test scores do not differ significantly (Welch t = {self.t:.3f}, "
                f"p = {self.p:.3g}): the explanation generalises"
            )
        return (
            f"train and test scores differ (Welch t = {self.t:.3f}, p = {self.p:.3g}): "
            "the explanation does not carry over unchanged"
        )


def distributions(matrix: pd.DataFrame) -> list[Distribution]:
    """Per characteristic: mean, std and Shapiro–Wilk of the prototypes' global scores."""
    result = []
    for name in matrix.columns:
        values = matrix[name].dropna().to_numpy(float)
        w = p = None
        if len(values) >= 3 and np.ptp(values) > 0:
            w, p = (float(v) for v in stats.shapiro(values))
        result.append(
            Distribution(
                str(name), len(values), float(np.mean(values)) if len(values) else float("nan"),
                float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"), w, p,
            )
        )
    return result


def compare_splits(train: pd.DataFrame, test: pd.DataFrame) -> list[Comparison]:
    """Welch's t-test (unequal variances) per characteristic present on both splits."""
    result = []
    for name in [c for c in train.columns if c in test.columns]:
        a, b = train[name].dropna().to_numpy(float), test[name].dropna().to_numpy(float)
        t = p = None
        if len(a) >= 2 and len(b) >= 2 and (np.ptp(a) > 0 or np.ptp(b) > 0):
            t, p = (float(v) for v in stats.ttest_ind(a, b, equal_var=False))
        result.append(Comparison(str(name), t, p))
    return result
