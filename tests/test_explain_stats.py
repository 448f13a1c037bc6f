"""Streaming moments behind the per-prototype t-test: stable where Δ barely varies."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from protoexplain.explain.scores import ScoreSums
from protoexplain.explain.stats import one_sample_t


def _sums_in_batches(values: np.ndarray, batch: int) -> ScoreSums:
    """Feed (n, K, P) deltas to ScoreSums ``batch`` images at a time (s = 1, no replicates)."""
    n, k, p = values.shape
    sums = ScoreSums.zeros(k, p, replicates=0)
    for start in range(0, n, batch):
        chunk = values[start : start + batch]
        sums.add(np.ones((len(chunk), p)), chunk, np.zeros((len(chunk), 0)))
    return sums


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_t_test_matches_scipy_when_spread_is_tiny_against_the_mean(batch):
    rng = np.random.default_rng(0)
    # Mean 1e4, spread 1e-3: Σx² ≈ 1e11 carries ~1e-5 of rounding, as large as Σ(x − mean)² ≈ 1e-3
    # itself, so (Σx² − n·mean²) / (n − 1) is mostly noise.
    values = 1e4 + 1e-3 * rng.standard_normal((1000, 2, 3))
    sums = _sums_in_batches(values, batch)
    mean, t_stat, _ = one_sample_t(sums.delta, sums.delta_m2, sums.count)
    expected = stats.ttest_1samp(values, 0.0, axis=0)
    np.testing.assert_allclose(mean, values.mean(axis=0), rtol=1e-12)
    # scipy's two-pass variance is exact to ~1e-16 relative on these values; ours may differ only
    # by the rounding of the pairwise updates, far below 1e-6.
    np.testing.assert_allclose(t_stat, expected.statistic, rtol=1e-6)
    np.testing.assert_allclose(sums.delta_m2, values.var(axis=0) * len(values), rtol=1e-6)


def test_merging_shards_equals_one_pass():
    rng = np.random.default_rng(1)
    values = 5.0 + 0.01 * rng.standard_normal((40, 1, 4))
    whole = _sums_in_batches(values, 40)
    first, second = _sums_in_batches(values[:13], 5), _sums_in_batches(values[13:], 3)
    first.merge(second)
    assert first.count == 40
    np.testing.assert_allclose(first.delta, whole.delta, rtol=1e-13)
    np.testing.assert_allclose(first.delta_m2, whole.delta_m2, rtol=1e-9)
    np.testing.assert_allclose(whole.delta_m2, values.var(axis=0) * 40, rtol=1e-9)


def test_merging_into_empty_sums_keeps_the_other():
    rng = np.random.default_rng(2)
    values = rng.standard_normal((6, 1, 2))
    empty = ScoreSums.zeros(1, 2, replicates=0)
    empty.merge(_sums_in_batches(values, 2))
    np.testing.assert_allclose(empty.delta_m2, values.var(axis=0) * 6, rtol=1e-12)
    assert np.isfinite(empty.delta_m2).all()
