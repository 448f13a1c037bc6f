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


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ of two vectors (average ranks for ties; NaN if either is constant)."""
    rx, ry = rankdata(x), rankdata(y)
    if len(rx) < 2 or np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def row_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's ρ between row i of ``a`` and row i of ``b`` (over the columns), per row."""
    return np.array([spearman(x, y) for x, y in zip(a, b, strict=True)])


def clustered_indices(sizes: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Row indices (into the models' rows stacked in order) of one clustered bootstrap draw."""
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    chosen = rng.integers(0, len(sizes), len(sizes))
    return np.concatenate(
        [offsets[m] + rng.integers(0, sizes[m], sizes[m]) for m in chosen]
    ).astype(int)


def _interval(values: Sequence[float]) -> tuple[float, float]:
    finite = np.asarray([v for v in values if np.isfinite(v)])
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap(
    statistic: Callable[[np.ndarray], float], sizes: Sequence[int], replicates: int, seed: int
) -> dict[str, float]:
    """``statistic(rows)`` on all rows and its clustered-bootstrap interval: value, low, high."""
    rng = np.random.default_rng(seed)
    value = statistic(np.arange(int(np.sum(sizes))))
    draws = [statistic(clustered_indices(sizes, rng)) for _ in range(replicates)]
    low, high = _interval(draws)
    return {"value": value, "low": low, "high": high}


def pooled_spearman(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], replicates: int, seed: int
) -> dict[str, float]:
    """Spearman across the prototypes of all models between x and y (one (x, y) pair of
    per-prototype vectors per model), with its clustered interval: rho, low, high, prototypes."""
    x = np.concatenate([p[0] for p in pairs])
    y = np.concatenate([p[1] for p in pairs])
    result = bootstrap(lambda rows: spearman(x[rows], y[rows]),
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
        scores.setdefault(f"{name}_spearman", []).append(row_spearman(method, reference))

    for p in profiles:
        method, reference = clr(p.method), clr(p.reference)
        add("method", method, reference)
        add("mean_profile", np.repeat(method.mean(0, keepdims=True), len(method), 0), reference)
        tops, rhos = [], []
        for _ in range(shuffles):
            shuffled = method[rng.permutation(len(method))]
            tops.append((shuffled.argmax(1) == reference.argmax(1)).astype(float))
            rhos.append(row_spearman(shuffled, reference))
        scores.setdefault("shuffled_top1", []).append(np.mean(tops, 0))
        scores.setdefault("shuffled_spearman", []).append(np.nanmean(rhos, 0))
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
        name: bootstrap(lambda rows, v=values: float(np.nanmean(v[rows])), sizes, replicates,
                        seed + 1)
        for name, values in scores.items()
    }


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative) + ½ P(tie): the Mann–Whitney AUC."""
    ranks = rankdata(np.concatenate([positive, negative]))
    count = len(positive)
    return float((ranks[:count].sum() - count * (count + 1) / 2) / (count * len(negative)))


def contrast_auc(
    positive: Sequence[np.ndarray], negative: Sequence[np.ndarray], replicates: int, seed: int
) -> dict[str, float]:
    """M3: AUC of a per-prototype score separating the prototypes of the ``positive`` models from
    those of the ``negative`` ones (one score vector per model), with an interval clustered by
    model within each group: auc, low, high."""
    rng = np.random.default_rng(seed)
    pos, neg = np.concatenate(positive), np.concatenate(negative)
    pos_sizes, neg_sizes = [len(v) for v in positive], [len(v) for v in negative]
    draws = [auc(pos[clustered_indices(pos_sizes, rng)], neg[clustered_indices(neg_sizes, rng)])
             for _ in range(replicates)]
    low, high = _interval(draws)
    return {"auc": auc(pos, neg), "low": low, "high": high,
            "prototypes": [len(pos), len(neg)]}


def log_ratio(values: np.ndarray, first: int, second: int) -> np.ndarray:
    """CLR(first) − CLR(second) per row: log max(x_first, ε) − log max(x_second, ε)."""
    ratios = clr(values)
    return ratios[:, first] - ratios[:, second]
