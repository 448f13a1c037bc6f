"""The faithfulness benchmark over several seeds: pooling finished runs, and running them."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import pytest

from helpers_data import run_cli
from helpers_stats import fisher_greater_by_hand, wilson_by_hand
from helpers_training import tiny_faithfulness_config
from protoexplain.benchmark import FaithfulnessConfig
from protoexplain.benchmark import seeds as seeds_module
from protoexplain.benchmark.seeds import POOLED_COLUMNS, combine_runs, run_seeds
from protoexplain.errors import UserError

#: Hand-made ranks of the true factor: run seed → model → ranks of four prototypes.
RANKS = {
    0: {"trained": [1.0, 1.0, 1.0, 2.0], "control_random": [2.0, 3.0, 1.0, 4.0]},
    1: {"trained": [1.0, 1.0, 2.5, 2.5], "control_random": [3.0, 3.0, 4.0, 1.0]},
}
ACCURACY = {0: 0.9, 1: 0.7}


def _write_run(folder: Path, seed: int, presets=("hue",), **settings) -> Path:
    """A benchmark output folder as ``benchmark faithfulness`` leaves it, with RANKS as results
    (``shape`` rows, when asked for, copy the hue rows)."""
    folder.mkdir(parents=True)
    config = replace(FaithfulnessConfig(), seed=seed, presets=tuple(presets), **settings)
    (folder / "benchmark.json").write_text(json.dumps(
        {"config": asdict(config), "presets_done": list(presets)}), encoding="utf-8")
    prototypes, rows = [], []
    for preset in presets:
        for model, ranks in RANKS[seed].items():
            for index, rank in enumerate(ranks):
                top = "hue" if rank == 1.0 else "shape"
                prototypes.append({"preset": preset, "family": "perceptual", "model": model,
                                   "prototype": index, "rank": rank, "top": top})
            rows.append({"preset": preset, "family": "perceptual", "model": model,
                         "accuracy": ACCURACY[seed]})
    pd.DataFrame(prototypes).to_csv(folder / "per_prototype.csv", index=False)
    pd.DataFrame(rows).to_csv(folder / "faithfulness.csv", index=False)
    return folder


def test_pooled_shares_ranks_and_p_values_match_a_count_by_hand(tmp_path):
    first = _write_run(tmp_path / "a", seed=0, presets=("hue", "shape"))
    second = _write_run(tmp_path / "b", seed=1)
    summary = combine_runs([first, second], tmp_path / "pooled")
    assert summary["seeds"] == [0, 1] and summary["presets_done"] == ["hue"]  # shape: one run only
    assert summary["runs"] == ["../a", "../b"]
    table = pd.read_csv(tmp_path / "pooled" / "faithfulness.csv")
    assert tuple(table.columns) == POOLED_COLUMNS
    trained = table[table["model"] == "trained"].iloc[0]
    control = table[table["model"] == "control_random"].iloc[0]
    # trained: ranks 1 1 1 2 | 1 1 2.5 2.5 -> 5 of 8 first; control: 1 of 4 and 1 of 4 -> 2 of 8
    assert trained["top1_share"] == pytest.approx(5 / 8)
    assert trained["mean_rank"] == pytest.approx((1 + 1 + 1 + 2 + 1 + 1 + 2.5 + 2.5) / 8)
    assert trained["n_prototypes"] == 8 and control["n_prototypes"] == 8
    assert trained["accuracy"] == pytest.approx(0.8)
    assert (trained["top1_low"], trained["top1_high"]) == pytest.approx(wilson_by_hand(5, 8))
    assert control["p_trained_greater"] == pytest.approx(fisher_greater_by_hand(5, 8, 2, 8))
    assert pd.isna(trained["p_trained_greater"])
    assert trained["seed_shares"] == "3/4 2/4" and control["seed_shares"] == "1/4 1/4"
    assert trained["seeds"] == "0 1"
    assert trained["tops"] == "hue:5 shape:3"
    per_prototype = pd.read_csv(tmp_path / "pooled" / "per_prototype.csv")
    assert len(per_prototype) == 16 and sorted(per_prototype["seed"].unique()) == [0, 1]
    markdown = (tmp_path / "pooled" / "faithfulness.md").read_text(encoding="utf-8")
    assert "| hue | perceptual | trained | 75% | 50% | 62% |" in markdown
    assert "| hue | perceptual | control_random | 25% | 25% | 25% |" in markdown


def test_runs_that_cannot_be_pooled_are_one_line_errors(tmp_path):
    first = _write_run(tmp_path / "a", seed=0)
    with pytest.raises(UserError, match="both used seed 0"):
        combine_runs([first, _write_run(tmp_path / "b", seed=0)], tmp_path / "out")
    other = _write_run(tmp_path / "c", seed=1, background="like-parts")
    with pytest.raises(UserError, match=r"differs from .* in background"):
        combine_runs([first, other], tmp_path / "out")
    with pytest.raises(UserError, match="at least two"):
        combine_runs([first], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a finished faithfulness benchmark"):
        combine_runs([first, tmp_path / "empty"], tmp_path / "out")
    broken = _write_run(tmp_path / "broken", seed=1)
    (broken / "benchmark.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match=r"cannot read the benchmark in .*broken"):
        combine_runs([first, broken], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    combine_runs([first, _write_run(tmp_path / "d", seed=1)], tmp_path / "pooled")
    with pytest.raises(UserError, match="holds pooled runs"):
        combine_runs([first, tmp_path / "pooled"], tmp_path / "out")


@pytest.mark.e2e
def test_combine_from_the_cli(tmp_path):
    first = _write_run(tmp_path / "a", seed=0)
    second = _write_run(tmp_path / "b", seed=1)
    result = run_cli("benchmark", "combine", str(first), str(second), "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    assert "combined 2 runs (seeds 0, 1; presets hue)" in result.stdout
    result = run_cli("benchmark", "combine", str(first), str(first), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "both used seed 0" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("benchmark", "faithfulness", "--quick", "--seeds", "0,x",
                     "--out", str(tmp_path / "q"))
    assert result.returncode == 2 and "--seeds '0,x'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.e2e
def test_run_seeds_pools_independent_runs_and_resumes(tmp_path, monkeypatch):
    config = tiny_faithfulness_config()
    summary = run_seeds(config, (3, 5), tmp_path, device="cpu", progress=False)
    assert summary["seeds"] == [3, 5]
    runs = [pd.read_csv(tmp_path / f"seed-{seed}" / "per_prototype.csv") for seed in (3, 5)]
    for seed in (3, 5):  # each run drew its own data
        synth = json.loads((tmp_path / f"seed-{seed}" / "data" / "hue" / "synth.json").read_text(
            encoding="utf-8"))
        assert synth["config"]["seed"] == seed
    pooled = pd.read_csv(tmp_path / "faithfulness.csv")
    assert (pooled["n_prototypes"] == 2 * 16).all()
    for _, row in pooled.iterrows():
        ranks = pd.concat([run[(run["family"] == row["family"]) & (run["model"] == row["model"])]
                           for run in runs])["rank"]
        assert row["top1_share"] == pytest.approx((ranks == 1.0).mean())
        assert row["mean_rank"] == pytest.approx(ranks.mean())

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished seed was run again")

    monkeypatch.setattr(seeds_module, "run_faithfulness", must_not_run)
    assert run_seeds(config, (3, 5), tmp_path, device="cpu", progress=False)["seeds"] == [3, 5]
    with pytest.raises(UserError, match="two or more different seeds"):
        run_seeds(config, (3, 3), tmp_path, device="cpu", progress=False)
