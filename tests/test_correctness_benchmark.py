"""The correctness benchmark end to end (quick mode through the CLI), checked against counts and a
hand computation of M1, and its resumption; and the stacked models it explains at once."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from helpers_data import noise_folder, run_cli
from protoexplain.benchmark.correctness import CHARACTERISTICS, PART_CHARACTERISTICS
from protoexplain.benchmark.correctness import FAMILIES as BENCHMARK_FAMILIES
from protoexplain.benchmark.stacked import StackedModels
from protoexplain.data import ImageFolderDataset
from protoexplain.explain import explain_dataset
from protoexplain.models import ModelSpec, ProtoPNet

MODELS = ("trained", "control_trunk", "control_patches", "control_random")
# quick mode: 2 prototypes per class; isolated presets have 4 classes, the mixed views 4 (head
# hue) and 2 (body shape); one target (ΔE 5) and every family the benchmark measures
PROTOTYPES, FAMILIES, TARGETS = 2 * 4, len(BENCHMARK_FAMILIES), 1


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("correctness") / "out"
    done = run_cli("benchmark", "correctness", "--quick", "--out", str(out), "--device", "cpu")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"wrote correctness.json, correctness.md, per_prototype.csv, doses.csv to {out}/" in (
        done.stdout)
    return out


def _clr(matrix: np.ndarray) -> np.ndarray:
    """Centred log-ratio per row, clipped at 1e-3 of the matrix's largest |value| (by hand)."""
    epsilon = max(1e-3 * np.abs(matrix).max(), 1e-12)
    logs = np.log(np.maximum(matrix, epsilon))
    return logs - logs.mean(axis=1, keepdims=True)


def test_quick_run_writes_one_row_per_prototype_family_target_and_characteristic(quick):
    table = pd.read_csv(quick / "per_prototype.csv")
    isolated = table[table["preset"].isin(["hue", "shape", "texture"])]
    assert len(isolated) == 3 * len(MODELS) * PROTOTYPES * FAMILIES * TARGETS * len(
        CHARACTERISTICS)
    mixed = table[table["preset"].str.startswith("mixed")]
    assert len(mixed) == (4 + 2) * 2 * FAMILIES * TARGETS * (
        len(CHARACTERISTICS) + len(PART_CHARACTERISTICS))
    assert set(isolated["model"]) == set(MODELS)
    # the method has no part-local characteristics; the reference has every one
    parts = table["characteristic"].isin(PART_CHARACTERISTICS)
    assert table.loc[parts, "method"].isna().all()
    assert table.loc[~parts, ["method", "reference"]].notna().all().all()


def test_m1_by_hand_equals_the_reported_value(quick):
    summary = json.loads((quick / "correctness.json").read_text(encoding="utf-8"))
    table = pd.read_csv(quick / "per_prototype.csv")
    rows = table[(table["family"] == "perceptual") & (table["target"] == 5.0)
                 & table["preset"].isin(["hue", "shape", "texture"])]
    method, reference = [], []
    for _, group in rows.groupby(["seed", "preset", "model"]):
        wide = {kind: group.pivot(index="prototype", columns="characteristic", values=kind)[
            list(CHARACTERISTICS)].to_numpy() for kind in ("method", "reference")}
        method.append(_clr(wide["method"]))
        reference.append(_clr(wide["reference"]))
    hue = CHARACTERISTICS.index("hue")
    expected = spearmanr(np.concatenate(method)[:, hue], np.concatenate(reference)[:, hue])[0]
    reported = summary["families"]["perceptual"]["hue"]
    assert reported["rho"] == pytest.approx(expected, abs=1e-9)
    assert reported["low"] <= reported["rho"] <= reported["high"]
    assert summary["images_per_preset"] == 16 and summary["seeds"] == [0]


@pytest.mark.e2e
def test_a_rerun_after_a_kill_reuses_what_was_saved(quick):
    before = json.loads((quick / "correctness.json").read_text(encoding="utf-8"))
    saved = quick / "seed-0" / "results" / "shape"
    kept = {name: (saved / name).stat().st_mtime_ns for name in ("calibration.json",
                                                                 "reference.json")}
    (saved / "method.json").unlink()  # as if killed while explaining the shape models
    (quick / "correctness.json").unlink()
    done = run_cli("benchmark", "correctness", "--quick", "--out", str(quick), "--device", "cpu")
    assert done.returncode == 0, done.stderr[-2000:]
    assert {name: (saved / name).stat().st_mtime_ns for name in kept} == kept
    assert (saved / "method.json").is_file()
    after = json.loads((quick / "correctness.json").read_text(encoding="utf-8"))
    for key in ("families", "m2", "m3", "m4", "accuracy"):
        assert after[key] == before[key], key


def test_stacked_models_explain_like_each_model_alone(tmp_path):
    models = []
    for seed, prototypes in ((0, 4), (1, 2)):
        torch.manual_seed(seed)
        models.append(ProtoPNet(ModelSpec("small_cnn", 2, (prototypes, 16, 1, 1),
                                          image_size=32)).eval())
    stack = StackedModels(models)
    dataset = ImageFolderDataset(noise_folder(tmp_path / "data", 3, 1))
    options = {"strengths": {"hue": [0.2], "texture": [4.0]}, "bootstrap": 0, "device": "cpu"}

    def scores(model) -> pd.DataFrame:
        table = explain_dataset(model, dataset, **options).global_scores
        return table.sort_values(["modification", "prototype"])

    together = scores(stack)
    for member, (model, offset) in enumerate(zip(models, (0, 4), strict=True)):
        alone = scores(model)
        part = together[together["prototype"].between(offset, offset + stack.sizes[member] - 1)]
        assert np.allclose(part["weighted_delta"], alone["weighted_delta"], atol=1e-6)
        assert part["prototype_class"].tolist() == alone["prototype_class"].tolist()
    assert stack.split(list(range(6))) == [[0, 1, 2, 3], [4, 5]]


@pytest.mark.e2e
def test_combine_recomputes_the_same_metrics_and_refuses_a_seed_twice(quick, tmp_path):
    before = json.loads((quick / "correctness.json").read_text(encoding="utf-8"))
    done = run_cli("benchmark", "combine", str(quick), "--out", str(tmp_path / "pooled"))
    assert done.returncode == 0, done.stderr[-2000:]
    pooled = json.loads((tmp_path / "pooled" / "correctness.json").read_text(encoding="utf-8"))
    for key in ("families", "m2", "m3", "m4", "aim", "accuracy", "seeds", "source"):
        assert pooled[key] == before[key], key
    twice = run_cli("benchmark", "combine", str(quick), str(quick), "--out",
                    str(tmp_path / "twice"))
    assert twice.returncode == 2 and "a seed is in more than one run" in twice.stderr


def test_the_mixed_models_alone_give_the_same_m3_and_m4(quick):
    from protoexplain.benchmark.correctness_metrics import summarise
    from protoexplain.benchmark.correctness_run import saved_config

    before = json.loads((quick / "correctness.json").read_text(encoding="utf-8"))
    table = pd.read_csv(quick / "per_prototype.csv")
    config = saved_config(before["config"])
    alone = json.loads(json.dumps(summarise(table[table["preset"].str.startswith("mixed")],
                                            replace(config, presets=()))))
    assert alone["m3"] == before["m3"] and alone["m4"] == before["m4"]
    assert alone["families"] == {} and alone["m2"] == {}
    for family, aim in alone["aim"].items():
        assert aim["m1"] is None and aim["m2"] is None
        assert (aim["m3"], aim["m4"]) == (before["aim"][family]["m3"],
                                          before["aim"][family]["m4"])


@pytest.mark.parametrize(("arguments", "message"), [
    (["--presets", "mixed", "--no-mixed"], "nothing to measure"),
    (["--parts-size", "16"], "use at least 32 px"),
    (["--presets", "hue,birds"], "unknown presets ['birds']"),
])
def test_settings_it_cannot_run_with_are_one_line_before_any_work(tmp_path, arguments, message):
    out = tmp_path / "out"
    done = run_cli("benchmark", "correctness", "--quick", "--out", str(out), *arguments)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()
