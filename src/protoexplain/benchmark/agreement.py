"""Agreement between the method's importances and the interventional reference (M1–M4).

Both measurements give each prototype a profile over the factors (one importance per
characteristic). Profiles are compared after a **centred log-ratio** over the factors:
CLR(x)_f = log max(x_f, ε) − mean_g log max(x_g, ε), ε = :data:`EPSILON_SHARE` × the largest
|x| of that model's matrix. Rescaling one factor's unit shifts its CLR by the same amount for
every prototype, so Spearman correlations across prototypes do not depend on it.

Every interval is a **bootstrap clustered by model**: each replicate draws models with
replacement, then prototypes with replacement within each drawn model, and recomputes the
statistic; the interval is the 2.5–97.5 % percentile range. Prototypes of one model share a
trunk, so resampling them alone would overstate the precision.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

#: ε of the CLR as a share of the largest |importance| in a model's matrix.
EPSILON_SHARE = 1e-3
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Profiles:
    """One model's importances, (P, F) each with the factors in the caller's order: the method's
    and the reference's. ``model`` names the cluster of the bootstrap."""

    model: str
    method: np.ndarray
    reference: np.ndarray


def clr(values: np.ndarray, epsilon_share: float = EPSILON_SHARE) -> np.ndarray:
    """Centred log-ratio of each row of ``values`` (P, F), clipped below at ε (module docstring)."""
    values = np.asarray(values, dtype=np.float64)
    epsilon = max(epsilon_share * float(np.nanmax(np.abs(values), initial=0.0)), 1e-12)
    logs = np.log(np.clip(values, epsilon, None))
    return logs - logs.mean(axis=1, keepdims=True)


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's ρ between row i of ``x`` and row i of ``y`` (2-D, over the columns; average
    ranks for ties; NaN where either row is constant)."""
    rx, ry = rankdata(x, axis=1), rankdata(y, axis=1)
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    scale = np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, (rx * ry).sum(1) / scale, np.nan)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ of two vectors (NaN if either is constant)."""
    return float(spearman_rows(np.asarray(x)[None], np.asarray(y)[None])[0])


def clustered_draws(
    sizes: Sequence[int], replicates: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Row indices (into the models' rows stacked in order) of ``replicates`` clustered bootstrap
    draws, as (R, N) arrays: one array when every model has as many rows, else one per draw."""
    sizes = np.asarray(sizes, dtype=int)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    chosen = rng.integers(0, len(sizes), (replicates, len(sizes)))
    if len(set(sizes.tolist())) == 1:
        size = int(sizes[0])
        rows = offsets[chosen][:, :, None] + rng.integers(0, size, (*chosen.shape, size))
        return [rows.reshape(replicates, -1)]
    return [np.concatenate([offsets[m] + rng.integers(0, sizes[m], sizes[m]) for m in draw])[None]
            for draw in chosen]


def nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN (NaN, without a warning, where every value is NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _interval(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray], sizes: Sequence[int], replicates: int,
    seed: int,
) -> dict[str, float]:
    """The statistic on all rows and its clustered-bootstrap interval: value, low, high.
    ``statistic`` maps (R, N) row indices to R values."""
    rng = np.random.default_rng(seed)
    value = float(statistic(np.arange(int(np.sum(sizes)))[None])[0])
    draws = np.concatenate([statistic(rows) for rows in clustered_draws(sizes, replicates, rng)])
    low, high = _interval(draws)
    return {"value": value, "low": low, "high": high}


def pooled_spearman(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], replicates: int, seed: int
) -> dict[str, float]:
    """Spearman across the prototypes of all models between x and y (one (x, y) pair of
    per-prototype vectors per model), with its clustered interval: rho, low, high, prototypes."""
    x = np.concatenate([p[0] for p in pairs])
    y = np.concatenate([p[1] for p in pairs])
    result = bootstrap(lambda rows: spearman_rows(x[rows], y[rows]),
                       [len(p[0]) for p in pairs], replicates, seed)
    return {"rho": result["value"], "low": result["low"], "high": result["high"],
            "prototypes": len(x)}


def per_factor(
    profiles: Sequence[Profiles], factors: Sequence[str], replicates: int, seed: int
) -> dict[str, dict[str, float]]:
    """M1: per factor, Spearman across prototypes between the method's and the reference's CLR."""
    method = [clr(p.method) for p in profiles]
    reference = [clr(p.reference) for p in profiles]
    return {
        factor: pooled_spearman([(m[:, f], r[:, f]) for m, r in zip(method, reference,
                                                                      strict=True)],
                                replicates, seed + f)
        for f, factor in enumerate(factors)
    }


def cross_correlations(
    profiles: Sequence[Profiles], factors: Sequence[str]
) -> dict[str, dict[str, float]]:
    """{characteristic: {factor: ρ}}: Spearman across prototypes between the method's CLR of a
    characteristic and the reference's CLR of every factor (the diagonal is M1's ρ)."""
    method = np.concatenate([clr(p.method) for p in profiles])
    reference = np.concatenate([clr(p.reference) for p in profiles])
    return {
        name: {other: spearman(method[:, f], reference[:, g]) for g, other in enumerate(factors)}
        for f, name in enumerate(factors)
    }


def entangled(cross: dict[str, dict[str, float]]) -> list[str]:
    """Characteristics whose method importance follows another factor's intervention more
    closely than its own (a higher ρ off the diagonal of :func:`cross_correlations`)."""
    found = []
    for name, row in cross.items():
        own = row[name]
        others = [rho for factor, rho in row.items() if factor != name and np.isfinite(rho)]
        if others and (not np.isfinite(own) or max(others) > own):
            found.append(name)
    return found


def _prototype_scores(
    profiles: Sequence[Profiles], shuffles: int, seed: int
) -> dict[str, np.ndarray]:
    """Per prototype (all models stacked): top-1 agreement and Spearman over factors for the
    method and the two baselines (its model's mean profile; profiles shuffled within the model,
    averaged over ``shuffles`` permutations)."""
    rng = np.random.default_rng(seed)
    scores: dict[str, list[np.ndarray]] = {}

    def add(name: str, method: np.ndarray, reference: np.ndarray) -> None:
        top = (method.argmax(1) == reference.argmax(1)).astype(float)
        scores.setdefault(f"{name}_top1", []).append(top)
        scores.setdefault(f"{name}_spearman", []).append(spearman_rows(method, reference))

    for p in profiles:
        method, reference = clr(p.method), clr(p.reference)
        add("method", method, reference)
        add("mean_profile", np.repeat(method.mean(0, keepdims=True), len(method), 0), reference)
        tops, rhos = [], []
        for _ in range(shuffles):
            shuffled = method[rng.permutation(len(method))]
            tops.append((shuffled.argmax(1) == reference.argmax(1)).astype(float))
            rhos.append(spearman_rows(shuffled, reference))
        scores.setdefault("shuffled_top1", []).append(np.mean(tops, 0))
        scores.setdefault("shuffled_spearman", []).append(nanmean(np.asarray(rhos), 0))
    return {name: np.concatenate(parts) for name, parts in scores.items()}


def per_prototype(
    profiles: Sequence[Profiles], replicates: int, seed: int, shuffles: int = 20
) -> dict[str, dict[str, float]]:
    """M2: mean top-1 agreement and mean Spearman over factors per prototype, for the method,
    the mean-profile and the shuffled baselines, and the method's gain over each baseline; each
    ``{value, low, high}`` with the clustered interval."""
    scores = _prototype_scores(profiles, shuffles, seed)
    for measure in ("top1", "spearman"):
        for baseline in ("mean_profile", "shuffled"):
            scores[f"gain_{measure}_over_{baseline}"] = (
                scores[f"method_{measure}"] - scores[f"{baseline}_{measure}"]
            )
    sizes = [len(p.method) for p in profiles]
    return {
        name: bootstrap(lambda rows, v=values: nanmean(v[rows], 1), sizes, replicates,
                        seed + 1)
        for name, values in scores.items()
    }


def auc_rows(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Per row: P(a positive scores above a negative) + ½ P(tie), the Mann–Whitney AUC."""
    ranks = rankdata(np.concatenate([positive, negative], axis=1), axis=1)
    count, other = positive.shape[1], negative.shape[1]
    return (ranks[:, :count].sum(1) - count * (count + 1) / 2) / (count * other)


def contrast_auc(
    positive: Sequence[np.ndarray], negative: Sequence[np.ndarray], replicates: int, seed: int
) -> dict[str, float]:
    """M3: AUC of a per-prototype score separating the prototypes of the ``positive`` models from
    those of the ``negative`` ones (one score vector per model), with an interval clustered by
    model within each group: auc, low, high."""
    rng = np.random.default_rng(seed)
    pos, neg = np.concatenate(positive), np.concatenate(negative)
    pos_draws = clustered_draws([len(v) for v in positive], replicates, rng)
    neg_draws = clustered_draws([len(v) for v in negative], replicates, rng)
    if len(pos_draws) == 1 and len(neg_draws) == 1:
        draws = auc_rows(pos[pos_draws[0]], neg[neg_draws[0]])
    else:
        pos_rows = [r for block in pos_draws for r in block]
        neg_rows = [r for block in neg_draws for r in block]
        draws = np.array([auc_rows(pos[p][None], neg[n][None])[0]
                          for p, n in zip(pos_rows, neg_rows, strict=True)])
    low, high = _interval(draws)
    return {"auc": float(auc_rows(pos[None], neg[None])[0]), "low": low, "high": high,
            "prototypes": [len(pos), len(neg)]}


def log_ratio(values: np.ndarray, first: int, second: int) -> np.ndarray:
    """CLR(first) − CLR(second) per row: log max(x_first, ε) − log max(x_second, ε)."""
    ratios = clr(values)
    return ratios[:, first] - ratios[:, second]
