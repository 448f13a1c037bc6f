"""Statistics on explanation scores: per-prototype significance, per-characteristic summaries,
normality and train-versus-test comparison (method §6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
KEY = ["modification", "strength"]


def merge_moments(
    count_a: np.ndarray | float,
    total_a: np.ndarray,
    m2_a: np.ndarray,
    count_b: np.ndarray | float,
    total_b: np.ndarray,
    m2_b: np.ndarray,
) -> np.ndarray:
    """M2 = Σ (x − mean)² of two groups combined, from each group's count, Σ x and M2.

    Chan, Golub and LeVeque's pairwise update: no difference of large sums is ever taken, so the
    variance stays accurate when the spread is tiny against the mean (the textbook
    (Σx² − n·mean²) cancels catastrophically there).
    """
    count_a = np.asarray(count_a, dtype=np.float64)
    count_b = np.asarray(count_b, dtype=np.float64)
    combined = count_a + count_b
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = total_b / count_b - total_a / count_a
        correction = np.where(
            (count_a > 0) & (count_b > 0), gap * gap * count_a * count_b / combined, 0.0
        )
    return m2_a + m2_b + correction


def batch_moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σ x and M2 = Σ (x − mean)² over the first axis, in float64, two-pass."""
    values = np.asarray(values, dtype=np.float64)
    total = values.sum(axis=0)
    if not len(values):
        return total, np.zeros_like(total)
    return total, np.square(values - total / len(values)).sum(axis=0)


def one_sample_t(total: np.ndarray, m2: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Two-sided one-sample t-test of mean Δ = 0 from Σ Δ and M2 = Σ (Δ − mean)² over ``n`` images.

    Returns (mean, t statistic, p-value); NaN where undefined (n < 2 or zero variance).
    """
    mean = total / max(n, 1)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan.copy()
    variance = np.maximum(m2 / (n - 1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_stat = mean / np.sqrt(variance / n)
    t_stat = np.where(variance > 0, t_stat, np.nan)
    p_value = 2 * stats.t.sf(np.abs(t_stat), df=n - 1)
    return mean, t_stat, p_value


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted q-values (``scipy.stats.false_discovery_control``); NaN p-values stay NaN."""
    q_values = np.full(p_values.shape, np.nan)
    finite = np.isfinite(p_values)
    if finite.any():
        q_values[finite] = stats.false_discovery_control(p_values[finite], method="bh")
    return q_values


def characteristic_stats(global_scores: pd.DataFrame) -> list[dict]:
    """Per (modification, strength): mean/std of global scores over prototypes, Shapiro–Wilk,
    and how many prototypes rely on it significantly (q < 0.05) in either direction."""
    rows = []
    for (name, strength), group in global_scores.groupby(KEY, sort=False):
        values = group["weighted_delta"].dropna().to_numpy()
        row = {
            "modification": name,
            "strength": float(strength),
            "n_prototypes": len(values),
            "mean": _float(values.mean()) if len(values) else None,
            "std": _float(values.std(ddof=1)) if len(values) > 1 else None,
            "shapiro_w": None,
            "shapiro_p": None,
            "significant_positive": int(((group.q_value < ALPHA) & (group.mean_delta > 0)).sum()),
            "significant_negative": int(((group.q_value < ALPHA) & (group.mean_delta < 0)).sum()),
        }
        if len(values) >= 3 and np.ptp(values) > 0:
            result = stats.shapiro(values)
            row["shapiro_w"], row["shapiro_p"] = _float(result.statistic), _float(result.pvalue)
        rows.append(row)
    return rows


def compare_splits(global_scores: pd.DataFrame, other: pd.DataFrame) -> list[dict]:
    """Welch's t-test (unequal variances) of this split's global scores against another's,
    per (modification, strength). ``generalises``: not significantly different at 0.05."""
    rows = []
    theirs = {key: group for key, group in other.groupby(KEY, sort=False)}
    for key, group in global_scores.groupby(KEY, sort=False):
        if key not in theirs:
            continue
        a = group["weighted_delta"].dropna().to_numpy()
        b = theirs[key]["weighted_delta"].dropna().to_numpy()
        result = stats.ttest_ind(a, b, equal_var=False) if min(len(a), len(b)) > 1 else None
        p_value = _float(result.pvalue) if result is not None else None
        rows.append(
            {
                "modification": key[0],
                "strength": float(key[1]),
                "mean_this": _float(a.mean()) if len(a) else None,
                "mean_other": _float(b.mean()) if len(b) else None,
                "welch_t": _float(result.statistic) if result is not None else None,
                "welch_p": p_value,
                "generalises": None if p_value is None else bool(p_value >= ALPHA),
            }
        )
    return rows


def summary_text(
    characteristics: list[dict], comparison: list[dict] | None, n_images: int,
    correctness: dict[str, str] | None = None,
) -> str:
    """A short human-readable summary of :func:`characteristic_stats` and :func:`compare_splits`;
    ``correctness`` (characteristic → label) adds a column of each one's measured correctness."""
    title = f"Global importance over {n_images} images (similarity-weighted mean of Δ = s − s_m)"
    lines = [title, ""]
    header = f"{'characteristic':<24}{'mean':>10}{'std':>10}{'shapiro p':>11}"
    header += f"{'sig +':>7}{'sig −':>7}"
    if correctness is not None:
        header += "  measured correctness"
    lines += [header, "-" * len(header)]
    for row in characteristics:
        name = f"{row['modification']} ({row['strength']:g})"
        line = (
            f"{name:<24}{_fmt(row['mean']):>10}{_fmt(row['std']):>10}"
            f"{_fmt(row['shapiro_p']):>11}{row['significant_positive']:>7}"
            f"{row['significant_negative']:>7}"
        )
        if correctness is not None:
            line += f"  {correctness.get(row['modification'], 'not measured')}"
        lines.append(line)
    lines += ["", "sig +/−: prototypes whose mean Δ differs from 0 (t-test, BH q < 0.05)"]
    if comparison:
        lines += ["", "Comparison with the other split (Welch's t-test on global scores)", ""]
        for row in comparison:
            name = f"{row['modification']} ({row['strength']:g})"
            verdict = {True: "generalises", False: "differs", None: "n/a"}[row["generalises"]]
            lines.append(f"{name:<24} p = {_fmt(row['welch_p'])}  {verdict}")
    return "\n".join(lines) + "\n"


def _float(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
