"""The faithfulness benchmark: ranking logic, the control model, and a tiny end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from helpers_stats import fisher_greater_by_hand, wilson_by_hand
from helpers_training import tiny_faithfulness_config
from protoexplain.benchmark import factor_ranks, quick_config, run_faithfulness, summarise_ranks
from protoexplain.benchmark import faithfulness as faithfulness_module
from protoexplain.benchmark.faithfulness import (
    DOSE_COLUMNS,
    IMPORTANCE_COLUMNS,
    RESULT_COLUMNS,
    control_model,
    patch_control_model,
    random_model,
    training_config,
)
from protoexplain.benchmark.significance import add_significance, share_greater_p, share_interval
from protoexplain.benchmark.tables import Recommendation, markdown_table, recommend
from protoexplain.data import ImageFolderDataset, generate_synthetic
from protoexplain.explain import explain_dataset
from protoexplain.models import ModelSpec, ProtoPNet, load_model

SRC = Path(__file__).resolve().parents[1] / "src"


def _scores(rows: dict[int, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"prototype": p, "modification": m, "weighted_delta": v}
         for p, values in rows.items() for m, v in values.items()]
    )


def test_factor_ranks_by_hand():
    scores = _scores({
        0: {"hue": 3.0, "shape": 1.0, "texture": 2.0},  # hue first
        1: {"hue": 1.0, "shape": 5.0, "texture": 2.0},  # hue third
        2: {"hue": 2.0, "shape": 2.0, "texture": 0.0},  # tie for first: rank 1.5
    })
    ranks = factor_ranks(scores, "hue")
    assert ranks["rank"].tolist() == [1.0, 3.0, 1.5]
    assert ranks["top"].tolist()[:2] == ["hue", "shape"]
    summary = summarise_ranks(ranks)
    assert summary["top1_share"] == pytest.approx(1 / 3)
    assert summary["mean_rank"] == pytest.approx(5.5 / 3)
    assert summary["n_prototypes"] == 3


def test_factor_ranks_refuses_two_strengths_per_modification():
    scores = pd.concat([_scores({0: {"hue": 1.0}}), _scores({0: {"hue": 2.0}})])
    with pytest.raises(ValueError):
        factor_ranks(scores, "hue")


def _family_table(shares: dict[str, tuple[float, float, float]], n: int = 40,
                  accuracy: float = 1.0) -> pd.DataFrame:
    """Trained rows: family → top-1 share on (hue, shape, texture), ``n`` prototypes each."""
    rows = [{"preset": preset, "family": family, "model": "trained", "top1_share": share,
             "n_prototypes": n, "accuracy": accuracy}
            for family, values in shares.items()
            for preset, share in zip(("hue", "shape", "texture"), values, strict=True)]
    rows.append({"preset": "hue", "family": "b", "model": "control_trunk", "top1_share": 1.0,
                 "n_prototypes": n, "accuracy": accuracy})  # controls do not count
    return pd.DataFrame(rows)


def test_recommend_prefers_hue_and_shape_recovery_with_separate_intervals():
    chosen = recommend(_family_table({"a": (0.9, 0.8, 0.0), "b": (0.5, 0.5, 1.0)}))
    assert chosen.family == "a"
    # pooled over hue and shape: a 36 + 32 of 80, b 20 + 20 of 80
    low, high = wilson_by_hand(68, 80)
    other_high = wilson_by_hand(40, 80)[1]
    assert low > other_high
    assert f"{100 * low:.0f}–{100 * high:.0f} %" in chosen.reason
    assert chosen.sentence().startswith("Recommended family: **a** (best top-1 share")


def test_recommend_nothing_from_a_smoke_run_weak_models_or_overlapping_intervals():
    clear = _family_table({"a": (0.9, 0.8, 0.0), "b": (0.5, 0.5, 1.0)})
    smoke = recommend(clear, smoke=True)
    assert smoke.family is None and "--quick" in smoke.reason
    assert smoke.sentence().startswith("No family recommended: ")
    weak = clear.assign(accuracy=np.where(clear["preset"] == "shape", 0.31, 0.56))
    refused = recommend(weak)
    assert refused.family is None
    assert "hue 56%" in refused.reason and "shape 31%" in refused.reason
    assert "texture" not in refused.reason  # only the key presets decide
    # the same shares from 4 prototypes per preset: 6 of 8 against 4 of 8 overlap
    small = recommend(_family_table({"a": (0.75, 0.75, 0.0), "b": (0.5, 0.5, 1.0)}, n=4))
    assert wilson_by_hand(6, 8)[0] <= wilson_by_hand(4, 8)[1]
    assert small.family is None and "overlaps b's" in small.reason
    only_hue = recommend(clear[clear["preset"] != "shape"])
    assert only_hue.family is None and "lacks shape" in only_hue.reason


def test_control_keeps_the_trunk_and_redraws_prototypes():
    model = ProtoPNet(_tiny_spec())
    with torch.no_grad():
        model.last_layer.weight.fill_(0.3)
    control = control_model(model, seed=3)
    for name, value in model.features.state_dict().items():
        assert torch.equal(value, control.features.state_dict()[name])
    assert not torch.equal(model.prototype_vectors, control.prototype_vectors)
    assert control.prototype_vectors.min() >= 0 and control.prototype_vectors.max() < 1
    expected = torch.tensor([[1.0, 1.0, -0.5, -0.5], [-0.5, -0.5, 1.0, 1.0]])
    assert torch.equal(control.last_layer.weight, expected)
    assert torch.equal(model.last_layer.weight, torch.full((2, 4), 0.3))  # original untouched


def _tiny_spec() -> ModelSpec:
    return ModelSpec(backbone="small_cnn", num_classes=2, class_names=["a", "b"],
                     prototype_shape=(4, 8, 1, 1), image_size=32)


def test_patch_control_uses_latent_patches_of_training_images(tmp_path):
    generate_synthetic(tmp_path, "hue", size=32, train_per_class=3, test_per_class=1,
                       progress=False)
    model = ProtoPNet(ModelSpec(backbone="small_cnn", num_classes=4, class_names=list("abcd"),
                                prototype_shape=(8, 8, 1, 1), image_size=32)).eval()
    before = model.prototype_vectors.clone()
    control = patch_control_model(model, tmp_path / "train", seed=1, images=5)
    # every patch of every training image, computed here one image at a time
    patches = []
    for file in sorted((tmp_path / "train").glob("*/*.png")):
        pixels = torch.from_numpy(np.array(Image.open(file).convert("RGB"))).float() / 255
        mean, std = torch.tensor(model.spec.mean), torch.tensor(model.spec.std)
        image = ((pixels - mean) / std).permute(2, 0, 1)[None]
        with torch.no_grad():
            patches.append(model.latent(image)[0].flatten(1).T)
    every_patch = torch.cat(patches)
    vectors = control.prototype_vectors.flatten(1)
    nearest = torch.cdist(vectors.double(), every_patch.double()).min(dim=1).values
    assert (nearest < 1e-5).all()
    assert len({tuple(v.tolist()) for v in vectors}) > 1  # not one patch repeated
    for name, value in model.features.state_dict().items():
        assert torch.equal(value, control.features.state_dict()[name])
    assert torch.equal(model.prototype_vectors, before)  # original untouched
    assert torch.equal(control.last_layer.weight[0], torch.tensor([1.0, 1.0] + [-0.5] * 6))
    again = patch_control_model(model, tmp_path / "train", seed=1, images=5)
    assert torch.equal(again.prototype_vectors, control.prototype_vectors)


def test_random_control_reinitialises_everything():
    model = ProtoPNet(_tiny_spec())
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(0.25)
    control = random_model(model, seed=5)
    for name, value in control.state_dict().items():
        if value.is_floating_point() and name.endswith("weight"):
            assert not torch.equal(value, model.state_dict()[name]), name
    assert control.prototype_vectors.min() >= 0 and control.prototype_vectors.max() < 1
    expected = torch.tensor([[1.0, 1.0, -0.5, -0.5], [-0.5, -0.5, 1.0, 1.0]])
    assert torch.equal(control.last_layer.weight, expected)
    assert (model.prototype_vectors == 0.25).all()  # original untouched
    again = random_model(model, seed=5)
    for name, value in control.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name  # seeded


def test_schedule_pushes_after_the_middle_and_the_last_epoch():
    for epochs, pushes in ((30, [14, 29]), (4, [1, 3]), (2, [0, 1])):
        schedule = training_config(quick_config(epochs=epochs), Path("data"))["schedule"]
        start, every = schedule["push_start"], schedule["push_every"]
        assert list(range(start, epochs, every)) == pushes
        assert schedule["warm_epochs"] == 0


def test_markdown_table_reports_every_control():
    rows = []
    for model, share, rank in (("trained", 0.75, 1.25), ("control_trunk", 0.5, 2.0),
                               ("control_patches", 0.25, 3.0), ("control_random", 0.0, 4.5)):
        rows.append({"preset": "hue", "family": "perceptual", "model": model, "accuracy": 1.0,
                     "top1_share": share, "mean_rank": rank, "n_prototypes": 4, "tops": "hue:3"})
    chosen = Recommendation("perceptual", "best")
    markdown = markdown_table(pd.DataFrame(rows), chosen)
    header, _, row = markdown.splitlines()[:3]
    assert "trunk control top-1" in header and "random control mean rank" in header
    assert "patch control top-1" in header
    assert row == ("| hue | **perceptual** | 100% | 75% | 1.25 | 50% | 2.00 | 25% | 3.00 "
                   "| 0% | 4.50 | hue:3 |")
    only_trunk = markdown_table(pd.DataFrame(rows[:2]), chosen).splitlines()[2]
    assert only_trunk.endswith("| 50% | 2.00 | – | – | – | – | hue:3 |")
    none = markdown_table(pd.DataFrame(rows), Recommendation(None, "too few prototypes"))
    assert "**" not in none
    assert "No family recommended: too few prototypes." in none


@pytest.mark.parametrize(("k1", "n1", "k2", "n2"), [(4, 4, 0, 4), (32, 40, 25, 40), (2, 10, 9, 10)])
def test_share_statistics_match_hand_formulas(k1, n1, k2, n2):
    assert share_interval(k1, n1) == pytest.approx(wilson_by_hand(k1, n1), abs=1e-9)
    expected = fisher_greater_by_hand(k1, n1, k2, n2)
    assert share_greater_p(k1, n1, k2, n2) == pytest.approx(expected, rel=1e-9)
    if (k1, k2) == (4, 0):
        assert expected == pytest.approx(1 / 70)


def test_significance_columns_and_their_markdown():
    rows = [{"preset": "hue", "family": "perceptual", "model": model, "accuracy": 1.0,
             "top1_share": share, "mean_rank": 1.0, "n_prototypes": 4, "tops": "hue:4"}
            for model, share in (("trained", 1.0), ("control_trunk", 0.0),
                                 ("control_random", 0.75))]
    rows.append({**rows[1], "family": "paper"})  # a control without a trained row
    table = add_significance(pd.DataFrame(rows))
    assert table.loc[0, "top1_low"] == pytest.approx(wilson_by_hand(4, 4)[0])
    assert table.loc[0, "top1_high"] == pytest.approx(1.0)
    assert table.loc[[0, 3], "p_trained_greater"].isna().all()  # trained; no trained row
    assert table.loc[1, "p_trained_greater"] == pytest.approx(1 / 70)
    assert table.loc[2, "p_trained_greater"] == pytest.approx(fisher_greater_by_hand(4, 4, 3, 4))
    row = markdown_table(table.iloc[:3], Recommendation("perceptual", "best")).splitlines()[2]
    low = 100 * wilson_by_hand(4, 4)[0]
    p_random = fisher_greater_by_hand(4, 4, 3, 4)
    assert f"| 100% ({low:.0f}–100) |" in row
    assert "| 0% (p = 0.014) |" in row and f"| 75% (p = {p_random:.3f}) |" in row


def test_tiny_benchmark_writes_its_tables(tmp_path):
    config = tiny_faithfulness_config(background="like-parts", workers=2)
    summary = run_faithfulness(config, tmp_path, device="cpu", progress=False)
    synth = json.loads((tmp_path / "data" / "hue" / "synth.json").read_text(encoding="utf-8"))
    assert synth["config"]["background"] == summary["config"]["background"] == "like-parts"
    table = pd.read_csv(tmp_path / "faithfulness.csv")
    assert tuple(table.columns) == RESULT_COLUMNS
    assert set(table["family"]) == {"paper", "paper+calibrated", "perceptual",
                                    "perceptual+calibrated"}
    assert set(table["model"]) == {"trained", "control_trunk", "control_patches",
                                   "control_random"}
    assert table["top1_share"].between(0, 1).all()
    assert table["mean_rank"].between(1, 6).all()
    trained = table["model"] == "trained"
    assert table.loc[trained, "p_trained_greater"].isna().all()
    assert table.loc[~trained, "p_trained_greater"].between(0, 1).all()
    assert (table["top1_low"] <= table["top1_share"]).all()
    assert (table["top1_share"] <= table["top1_high"]).all()
    assert (table["n_prototypes"] == 16).all()
    dose = pd.read_csv(tmp_path / "dose_response.csv")
    assert tuple(dose.columns) == DOSE_COLUMNS
    assert set(dose["family"]) == {"paper+calibrated", "perceptual+calibrated"}
    per_prototype = pd.read_csv(tmp_path / "per_prototype.csv")
    assert len(per_prototype) == 4 * 4 * 16  # families × models × prototypes
    importance = pd.read_csv(tmp_path / "importance.csv")
    assert tuple(importance.columns) == IMPORTANCE_COLUMNS
    assert len(importance) == 4 * 4 * 6  # families × models × characteristics
    # the trained model's perceptual row (explained with 2 workers), recomputed from its saved
    # model and the test images in the main process
    model = load_model(tmp_path / "runs" / "hue" / "model").eval()
    again = explain_dataset(model, ImageFolderDataset(tmp_path / "data" / "hue" / "test"),
                            family="perceptual", mode="faithful", bootstrap=0, device="cpu",
                            batch_size=8).global_scores
    expected = again.groupby("modification")["weighted_delta"].mean()
    written = importance[(importance["family"] == "perceptual")
                         & (importance["model"] == "trained")].set_index("modification")
    assert written["importance"].to_dict() == pytest.approx(expected.to_dict(), abs=1e-6)
    markdown = (tmp_path / "faithfulness.md").read_text(encoding="utf-8")
    assert markdown.startswith("| preset | family |")
    assert summary["recommended_family"] is None  # a smoke run recommends nothing
    assert "No family recommended: a --quick smoke run" in markdown
    assert (tmp_path / "dose_hue.png").stat().st_size > 0
    assert summary["calibration"]["hue"]["perceptual"]["5.0"]["metric"] == "CIEDE2000"
    run_config = (tmp_path / "runs" / "hue" / "config.toml").read_text(encoding="utf-8")
    assert summary["config"]["workers"] == 2 and "workers = 2" in run_config


@pytest.mark.e2e
def test_benchmark_resumes_in_its_own_folder(tmp_path, monkeypatch):
    config = tiny_faithfulness_config()
    run_faithfulness(config, tmp_path, device="cpu", progress=False)
    first = (tmp_path / "faithfulness.csv").read_bytes()
    # as if killed after training: no saved results, so it explains again from the finished run
    (tmp_path / "presets" / "hue.json").unlink()
    run_faithfulness(config, tmp_path, device="cpu", progress=False)
    assert (tmp_path / "faithfulness.csv").read_bytes() == first
    # saved results with the same settings are reused without training or explaining
    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished preset was run again")

    monkeypatch.setattr(faithfulness_module, "train_preset", must_not_run)
    run_faithfulness(replace(config, workers=1), tmp_path, device="cpu", progress=False)
    assert (tmp_path / "faithfulness.csv").read_bytes() == first
    # other settings do not reuse them
    with pytest.raises(AssertionError, match="run again"):
        run_faithfulness(replace(config, seed=1), tmp_path, device="cpu", progress=False)


def _cli(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "protoexplain", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.e2e
def test_quick_benchmark_runs_end_to_end_from_the_cli(tmp_path):
    """The documented smoke run, exactly as a user types it (about two minutes on two cores)."""
    result = _cli("benchmark", "faithfulness", "--quick", "--out", str(tmp_path), timeout=2400)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "faithfulness benchmark: 5 presets in" in result.stdout
    summary = json.loads((tmp_path / "benchmark.json").read_text(encoding="utf-8"))
    assert summary["presets_done"] == ["hue", "shape", "texture", "contrast", "saturation"]
    assert summary["config"]["train_per_class"] == 16 and summary["config"]["epochs"] == 4
    assert summary["recommended_family"] is None and "no family recommended" in result.stdout
    table = pd.read_csv(tmp_path / "faithfulness.csv")
    assert len(table) == 5 * 4 * 4  # presets × families × models
    assert table.groupby(["preset", "family"]).size().eq(4).all()
    assert all((tmp_path / f"dose_{preset}.png").stat().st_size > 0
               for preset in summary["presets_done"])


def _main(*argv: str) -> int:
    """The exit status of the command line in this process (``--help`` exits through argparse)."""
    from protoexplain.cli import main

    try:
        return main(list(argv))
    except SystemExit as exit_info:
        return int(exit_info.code or 0)


def test_cli_help_and_user_error(tmp_path, capsys):
    assert _main("benchmark", "faithfulness", "--help") == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "like-parts" in out
    for bad, named in ((["--presets", "nope"], "nope"), (["--workers", "-1"], "--workers -1")):
        assert _main("benchmark", "faithfulness", "--quick", *bad, "--out", str(tmp_path)) == 2
        err = capsys.readouterr().err
        assert named in err and "Traceback" not in err
