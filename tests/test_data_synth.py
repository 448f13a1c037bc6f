"""Synthetic data: determinism, factor isolation, rendering honours factors, linear probe."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np
import pandas as pd
import pytest

from helpers_data import run_cli, tree_bytes
from protoexplain.data import generate_synthetic, list_presets
from protoexplain.data.synth_factors import CATEGORICAL, PARTS, PRESETS, RANDOM_RANGES
from protoexplain.errors import UserError

ISOLATED = [name for name in list_presets() if name != "mixed"]


def _rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_same_seed_gives_identical_bytes(tmp_path):
    kwargs = dict(size=32, train_per_class=3, test_per_class=2, masks=True, progress=False)
    generate_synthetic(tmp_path / "a", "mixed", seed=5, **kwargs)
    generate_synthetic(tmp_path / "b", "mixed", seed=5, **kwargs)
    generate_synthetic(tmp_path / "c", "mixed", seed=6, **kwargs)
    first = tree_bytes(tmp_path / "a")
    assert first == tree_bytes(tmp_path / "b")
    assert first != tree_bytes(tmp_path / "c")
    assert len([k for k in first if k.startswith("train/")]) == 8 * 3
    assert len([k for k in first if k.startswith("masks/test/")]) == 8 * 2
    # same request again: kept as is; a different request into the same folder: refused
    generate_synthetic(tmp_path / "a", "mixed", seed=5, **kwargs)
    assert tree_bytes(tmp_path / "a") == first
    with pytest.raises(UserError, match="not empty"):
        generate_synthetic(tmp_path / "a", "hue", seed=5, **kwargs)


def test_unknown_preset_lists_choices(tmp_path):
    with pytest.raises(UserError, match="shape"):
        generate_synthetic(tmp_path / "x", "colour")


@pytest.mark.parametrize("preset", ISOLATED)
def test_isolated_classes_differ_only_in_their_factor(tmp_path, preset):
    generate_synthetic(tmp_path, preset, size=32, train_per_class=16, test_per_class=4,
                       progress=False)
    table = pd.read_csv(tmp_path / "factors.csv")
    spec = PRESETS[preset]
    factor = spec.factor
    groups = table.groupby("class_index")
    assert len(groups) == len(spec.classes) and (groups.size() == 20).all()
    # the class factor: every part carries the class value, distinct between classes
    class_values = []
    for index, group in groups:
        values = group[[f"{part}_{factor}" for part in PARTS]].to_numpy().ravel()
        fixed = spec.classes[index].fixed[("body", factor)]
        if factor in CATEGORICAL:
            assert set(values) == {fixed}
        else:
            distance = np.abs(values.astype(float) - fixed)
            if factor == "hue":
                distance = np.minimum(distance, 1 - distance)
            assert distance.max() <= 0.05
        class_values.append(fixed)
    assert len(set(class_values)) == len(class_values)
    # every other factor: the same spread in every class
    for base in set(CATEGORICAL) - {factor}:
        allowed = set(spec.allowed.get(base, CATEGORICAL[base]))
        for _, group in groups:
            assert set(np.ravel(group[[f"{p}_{base}" for p in PARTS]])) == allowed, base
    continuous = [c for c in table.columns[4:] if c.split("_")[-1] not in (*CATEGORICAL, factor)
                  and not c.endswith(("_x0", "_y0", "_x1", "_y1"))
                  and table[c].nunique() > 1]  # a plain background's pattern columns are all 0
    for column in continuous:
        means = groups[column].mean()
        low, high = RANDOM_RANGES.get(column.split("_")[-1], (table[column].min(),
                                                              table[column].max()))
        assert means.max() - means.min() < 0.35 * (high - low), column


def test_rendered_part_colours_and_boxes_follow_factors(tmp_path):
    generate_synthetic(tmp_path, "hue", size=64, train_per_class=3, test_per_class=1, masks=True,
                       progress=False)
    table = pd.read_csv(tmp_path / "factors.csv")
    for row in table.itertuples():
        image = _rgb(tmp_path / row.file)
        mask = cv2.imread(str(tmp_path / "masks" / row.file), cv2.IMREAD_UNCHANGED)
        for label, part in enumerate(PARTS, start=1):
            pixels = image[mask == label]
            if len(pixels) < 20:
                continue
            ys, xs = np.nonzero(mask == label)
            x0, y0, x1, y1 = (getattr(row, f"{part}_{c}") for c in ("x0", "y0", "x1", "y1"))
            assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
            hues = np.array([colorsys.rgb_to_hsv(*(p / 255.0))[0] for p in pixels])
            want = getattr(row, f"{part}_hue")
            distance = np.abs(hues - want)
            distance = np.minimum(distance, 1 - distance)
            assert np.median(distance) < 0.03, (row.file, part)


def _colour_features(path) -> np.ndarray:
    """Hue histogram of clearly coloured pixels, mean/std RGB, mean saturation and value."""
    rgb = _rgb(path).astype(np.float32) / 255
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    coloured = (hsv[:, :, 1] > 0.45).astype(np.float32)
    hist, _ = np.histogram(hsv[:, :, 0], bins=12, range=(0, 360), weights=coloured)
    flat = rgb.reshape(-1, 3)
    extra = [hsv[:, :, 1].mean(), hsv[:, :, 2].mean()]
    return np.concatenate([hist / max(hist.sum(), 1), flat.mean(0), flat.std(0), extra])


def _probe_accuracy(root) -> float:
    """Ridge-regression one-vs-rest probe trained on train, scored on test."""
    table = pd.read_csv(root / "factors.csv")
    features = np.stack([_colour_features(root / f) for f in table.file])
    labels = table.class_index.to_numpy()
    train = (table.split == "train").to_numpy()
    mean, std = features[train].mean(0), features[train].std(0) + 1e-6
    design = np.c_[(features - mean) / std, np.ones(len(features))]
    targets = np.eye(labels.max() + 1)[labels]
    gram = design[train].T @ design[train] + np.eye(design.shape[1])
    weights = np.linalg.solve(gram, design[train].T @ targets[train])
    predicted = (design[~train] @ weights).argmax(1)
    return float((predicted == labels[~train]).mean())


def test_colour_probe_separates_hue_but_not_shape(tmp_path):
    kwargs = dict(size=64, train_per_class=40, test_per_class=25, seed=1, progress=False)
    generate_synthetic(tmp_path / "hue", "hue", **kwargs)
    generate_synthetic(tmp_path / "shape", "shape", **kwargs)
    assert _probe_accuracy(tmp_path / "hue") >= 0.9
    assert _probe_accuracy(tmp_path / "shape") <= 0.4  # chance is 0.25


def test_cli_synth(tmp_path):
    result = run_cli("synth", "--out", str(tmp_path / "s"), "--preset", "texture", "--size", "32",
                     "--train-per-class", "2", "--test-per-class", "1", "--masks",
                     "--background", "like-parts")
    assert result.returncode == 0, result.stderr
    assert "4 classes" in result.stdout and "8 train + 4 test" in result.stdout
    assert "like-parts background" in result.stdout
    assert (tmp_path / "s" / "synth.json").read_text().count('"like-parts"') == 1
    assert (tmp_path / "s" / "masks" / "train").is_dir()


def _background_pattern(row, size: int = 64) -> np.ndarray:
    """Where the background pattern darkens, from the factors (written here independently)."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    period = row.bg_period * row.scale * size / 2
    angle = np.radians(row.bg_angle)
    u = (cols * np.cos(angle) + rows * np.sin(angle)) / period + row.bg_phase_u
    v = (rows * np.cos(angle) - cols * np.sin(angle)) / period + row.bg_phase_v
    fu, fv = u % 1, v % 1
    return {"stripes": fu < 0.5, "checks": (fu < 0.5) != (fv < 0.5),
            "dots": (fu - 0.5) ** 2 + (fv - 0.5) ** 2 < 0.09}[row.bg_texture]


def test_like_parts_background_keeps_the_bird_and_matches_its_colours(tmp_path):
    kwargs = dict(size=64, train_per_class=6, test_per_class=1, seed=2, masks=True,
                  progress=False)
    generate_synthetic(tmp_path / "plain", "hue", **kwargs)
    generate_synthetic(tmp_path / "like", "hue", background="like-parts", **kwargs)
    plain = pd.read_csv(tmp_path / "plain" / "factors.csv")
    like = pd.read_csv(tmp_path / "like" / "factors.csv")
    bird = [c for c in plain.columns if not c.startswith("bg_") or c == "bg_hue"]
    pd.testing.assert_frame_equal(plain[bird], like[bird])  # the same birds, same boxes
    assert (plain.bg_texture == "plain").all() and like.bg_texture.nunique() > 1
    low, high = RANDOM_RANGES["saturation"]
    assert like.bg_saturation.between(low, high).all()
    kernel = np.ones((5, 5), np.uint8)
    for row in like.itertuples():
        mask = cv2.imread(str(tmp_path / "like" / "masks" / row.file), cv2.IMREAD_UNCHANGED)
        same = cv2.imread(str(tmp_path / "plain" / "masks" / row.file), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(mask, same)
        ground = cv2.erode((mask == 0).astype(np.uint8), kernel) > 0
        hsv = {
            name: cv2.cvtColor(_rgb(tmp_path / name / row.file).astype(np.float32) / 255,
                               cv2.COLOR_RGB2HSV)[ground]
            for name in ("plain", "like")
        }
        # plain: dull background; like-parts: as saturated as a part, within rounding
        assert hsv["plain"][:, 1].mean() < 0.4
        assert hsv["like"][:, 1].mean() > low - 0.05
        if row.bg_texture != "plain":  # the pattern darkens its pixels by the contrast factor
            dark = _background_pattern(row)[ground]
            value = hsv["like"][:, 2]
            ratio = value[dark].mean() / value[~dark].mean()
            assert ratio == pytest.approx(1 - row.bg_contrast, abs=0.08), row.file
    with pytest.raises(UserError, match="like-parts"):
        generate_synthetic(tmp_path / "bad", "hue", background="busy")
