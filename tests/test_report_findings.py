"""Rules and statistics of the report against hand computations and scipy called directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from protoexplain.report import findings, scores


def test_crop_statistics_on_hand_made_images() -> None:
    grey = np.full((16, 16, 3), 128, np.uint8)
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    stripes = np.tile((np.arange(16) % 2 * 255)[None, :, None], (16, 1, 3)).astype(np.uint8)
    g, r, s = (findings.crop_statistics(x) for x in (grey, red, stripes))
    assert g["hue"] == pytest.approx(0.0, abs=1e-6) and g["saturation"] == pytest.approx(0.0)
    assert r["hue"] == pytest.approx(1.0) and r["saturation"] == pytest.approx(1.0)
    assert g["contrast"] == pytest.approx(0.0, abs=1e-6)
    assert s["contrast"] == pytest.approx(0.5, abs=1e-3)  # half black, half white
    assert g["brightness"] == pytest.approx(128 / 255, abs=1e-3)
    assert s["shape"] > g["shape"] == 0.0
    assert s["texture"] > g["texture"] == 0.0


def test_misleading_rule_by_hand() -> None:
    stats_table = pd.DataFrame(
        {"hue": [0.9, 0.8, 0.7, 0.0], "shape": [0.1, 0.2, 0.3, 0.9]}, index=[0, 1, 2, 3]
    )
    dominant = pd.DataFrame(
        {"dominant": ["hue", "shape", "hue", "hue"], "dominant_score": [1.0, 1.0, -0.5, 2.0]},
        index=[0, 1, 2, 3],
    )
    result = findings.misleading(stats_table, dominant)
    # 3: relies on hue, lowest hue (rank 1/4), shows most shape → flagged.
    # 1: relies on shape at rank 2/4 (> 0.25) → not. 2: negative score → not. 0: shows hue → not.
    assert result["misleading"].to_dict() == {0: False, 1: False, 2: False, 3: True}
    assert result.loc[3, "shown"] == "shape"
    assert result.loc[3, "dominant_rank"] == pytest.approx(0.25)
    assert not findings.misleading(stats_table.iloc[:3], dominant.iloc[:3])["misleading"].any()


def test_redundant_pairs_by_hand() -> None:
    vectors = np.array([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [5.0, 5.05], [10.0, 0.0]])
    pairs = findings.redundant_pairs(vectors)
    assert [(p.first, p.second) for p in pairs] == [(2, 3), (0, 1)]
    distances = sorted(((a - b) ** 2).sum() for k, a in enumerate(vectors) for b in vectors[k + 1:])
    assert pairs[0].relative_distance == pytest.approx(0.05**2 / np.median(distances))
    explanations = pd.DataFrame([[1, 0], [1, 0.1], [1, 0], [0, 1], [1, 1]], index=range(5))
    kept = findings.redundant_pairs(vectors, explanations)
    assert [(p.first, p.second) for p in kept] == [(0, 1)]  # 2 and 3 are explained differently
    assert kept[0].explanation_cosine == pytest.approx(1 / np.sqrt(1.01))


def _global(values: dict[tuple[int, str, float], float]) -> pd.DataFrame:
    rows = [{"prototype": p, "prototype_class": 0, "modification": m, "strength": s,
             "weighted_delta": v, "n_images": 3, "ci_low": v, "ci_high": v}
            for (p, m, s), v in values.items()]
    return pd.DataFrame(rows)


def test_primary_strength_matrix_and_dominant() -> None:
    table = _global({(0, "hue", 0.2): 9.0, (0, "hue", 0.05): 1.0, (0, "hue", 0.1): 2.0,
                     (0, "hue", 0.4): 7.0, (0, "shape", 4.0): 3.0,
                     (1, "hue", 0.1): 0.5, (1, "shape", 4.0): 0.2})
    primary = scores.primary_strengths(table)
    assert primary == {"hue": 0.1, "shape": 4.0}  # lower middle of 0.05, 0.1, 0.2, 0.4
    matrix = scores.score_matrix(table, primary)
    assert matrix.loc[0].to_dict() == {"hue": 2.0, "shape": 3.0}
    dom = scores.dominant(matrix)
    assert dom["dominant"].to_dict() == {0: "shape", 1: "hue"}


def test_significance_from_local_scores_matches_scipy(tmp_path) -> None:
    rng = np.random.default_rng(1)
    deltas = {(p, m): rng.normal(0.3 * p, 1.0, 12) for p in range(3) for m in ("hue", "shape")}
    local = pd.DataFrame([
        {"image": f"i{k}", "prototype": p, "modification": m, "strength": 1.0,
         "orig_similarity": 1.0, "delta": d}
        for (p, m), values in deltas.items() for k, d in enumerate(values)
    ])
    path = tmp_path / "local_scores.parquet"
    local.to_parquet(path, row_group_size=7)
    table = _global({(p, m, 1.0): 0.0 for p, m in deltas})
    result = scores.significance(table, {"hue": 1.0, "shape": 1.0}, path)
    p_values = [stats.ttest_1samp(deltas[key], 0.0).pvalue for key in sorted(deltas)]
    expected = stats.false_discovery_control(p_values)
    np.testing.assert_allclose(result.sort_index()["q_value"].to_numpy(), expected, rtol=1e-6)
    with_column = table.assign(q_value=0.01)
    assert (scores.significance(with_column, {"hue": 1.0, "shape": 1.0}, None)["q_value"]
            == 0.01).all()


def test_distributions_and_welch_match_scipy() -> None:
    rng = np.random.default_rng(2)
    train = pd.DataFrame({"hue": rng.normal(size=20), "shape": rng.normal(size=20)})
    test = pd.DataFrame({"hue": rng.normal(1, 2, size=15), "shape": rng.normal(size=15)})
    hue = scores.distributions(train)[0]
    w, p = stats.shapiro(train["hue"])
    assert (hue.shapiro_w, hue.shapiro_p) == (pytest.approx(w), pytest.approx(p))
    assert hue.std == pytest.approx(train["hue"].std(ddof=1))
    comparison = scores.compare_splits(train, test)[0]
    t, p = stats.ttest_ind(train["hue"], test["hue"], equal_var=False)
    assert (comparison.t, comparison.p) == (pytest.approx(t), pytest.approx(p))
    assert scores.distributions(train.iloc[:2])[0].shapiro_p is None
