"""The top-level Python API: lazy exports, explain_images on paths and PIL images, in-memory
results and the wide importance view."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import protoexplain
from helpers_data import SRC, random_rgb
from protoexplain.data import ImageFolderDataset, ImageListDataset
from protoexplain.errors import UserError
from protoexplain.models import ModelSpec, ProtoPNet, load_model

MODIFICATIONS = ["contrast", "hue"]
STRENGTHS = {"hue": [0.1, 0.3]}  # contrast at its default, 0.45
OPTIONS = {"modifications": MODIFICATIONS, "strengths": STRENGTHS, "device": "cpu",
           "bootstrap": 20, "batch_size": 4}


def test_import_loads_no_torch_heavy_module():
    code = (
        "import sys, protoexplain; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'protoexplain')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC)}).stdout  # fmt: skip
    assert out.strip() == "['protoexplain']"


def test_every_exported_name_resolves_and_is_listed():
    names = dir(protoexplain)
    for name in protoexplain.__all__:
        assert name in names
        value = getattr(protoexplain, name)
        assert getattr(value, "__name__", name) == name
    assert protoexplain.load_model is load_model
    with pytest.raises(AttributeError, match="no_such_name"):
        protoexplain.no_such_name  # noqa: B018


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two classes × three PNGs of different native sizes (lossless: files = their pixels)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    for c, name in enumerate(["crow", "gull"]):
        (root / name).mkdir()
        for i in range(3):
            Image.fromarray(random_rgb(rng, 34 + 4 * i, 40 - 3 * c)).save(root / name / f"{i}.png")
    return root


def make_model() -> ProtoPNet:
    torch.manual_seed(0)
    return ProtoPNet(ModelSpec("small_cnn", 2, (4, 16, 1, 1), class_names=["crow", "gull"],
                               image_size=32)).eval()  # fmt: skip


@pytest.fixture(scope="module")
def reference(folder) -> pd.DataFrame:
    """explain_dataset on the folder, written to disk."""
    out = folder.parent / f"{folder.name}-explained"
    result = protoexplain.explain_dataset(make_model(), ImageFolderDataset(folder),
                                          out_dir=out, **OPTIONS)
    assert result.out_dir == out and (out / "global_scores.csv").is_file()
    return result.global_scores


def _as_given(folder: Path, kind: str) -> tuple[list, list[int]]:
    """The folder's images in its own order: as paths, as PIL images, or alternating."""
    samples = ImageFolderDataset(folder).samples
    paths = [str(path) for path, _ in samples]
    pil = [Image.open(path).convert("RGB") for path in paths]
    items = {"paths": paths, "pil": pil,
             "mixed": [p if i % 2 else m for i, (p, m) in enumerate(zip(paths, pil, strict=True))]}
    return items[kind], [label for _, label in samples]


@pytest.mark.parametrize("kind", ["paths", "pil", "mixed"])
def test_explain_images_gives_the_folder_scores(folder, reference, kind):
    images, labels = _as_given(folder, kind)
    result = protoexplain.explain_images(make_model(), images, labels=labels, **OPTIONS)
    pd.testing.assert_frame_equal(result.global_scores, reference, rtol=1e-12)
    assert result.n_images == len(images)


def test_in_memory_result_holds_the_local_table_and_leaves_no_files(folder, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    images, _ = _as_given(folder, "pil")
    result = protoexplain.explain_images(make_model(), images, labels=["crow"] * 3 + ["gull"] * 3,
                                         **OPTIONS)  # fmt: skip
    assert result.out_dir is None and result.local_scores_path is None
    assert list(tmp_path.iterdir()) == []
    local = result.local_scores()
    assert len(local) == 6 * 4 * 3  # images × prototypes × settings
    assert sorted(local["image"].astype(str).unique()) == sorted(f"<image {i}>" for i in range(6))
    class_of = dict(zip(local["image"].astype(str), local["class"].astype(str), strict=True))
    assert class_of["<image 1>"] == "crow" and class_of["<image 4>"] == "gull"
    # the local table reproduces the global score Σ Δ·s / Σ s
    row = local[(local["prototype"] == 2) & (local["strength"] == 0.3)]
    expected = (row["delta"] * row["orig_similarity"]).sum() / row["orig_similarity"].sum()
    scores = result.global_scores.set_index(["prototype", "strength"])
    assert scores.loc[(2, 0.3), "weighted_delta"] == pytest.approx(expected, rel=1e-6)


def _pivot_by_hand(table: pd.DataFrame, value: str) -> dict:
    return {(int(row["prototype"]), row["modification"], float(row["strength"])): row[value]
            for _, row in table.iterrows()}  # fmt: skip


def test_importance_is_the_long_table_spread_by_characteristic(reference):
    single = reference[reference["strength"] != 0.3]
    wide = protoexplain.ExplainResult(None, single, {}, 6).importance()
    assert list(wide.index) == [0, 1, 2, 3] and list(wide.columns) == MODIFICATIONS
    for (prototype, name, _), value in _pivot_by_hand(single, "weighted_delta").items():
        assert wide.loc[prototype, name] == value
    both = protoexplain.ExplainResult(None, reference, {}, 6).importance("ci_low")
    assert list(both.columns) == [("contrast", 0.45), ("hue", 0.1), ("hue", 0.3)]
    for (prototype, name, strength), value in _pivot_by_hand(reference, "ci_low").items():
        assert both.loc[prototype, (name, strength)] == value
    assert "weighted_delta" in reference.columns  # the long table keeps its column names


def test_image_list_labels_and_errors(folder, tmp_path):
    gray = Image.new("L", (8, 8), 7)
    named = ImageListDataset([gray, gray], labels=["b", "a"])
    assert named.classes == ["a", "b"] and named.targets == [1, 0]
    assert named.load_image(0).mode == "RGB" and named.load_image(0).getpixel((0, 0)) == (7, 7, 7)
    assert ImageListDataset([gray], labels=[2]).classes == ["0", "1", "2"]
    assert ImageListDataset([gray]).classes == ["unlabelled"]
    for images, labels, message in [
        ([], None, "no images"),
        ([gray], [0, 1], "2 labels given for 1 images"),
        ([gray], ["c"], "label 'c'"),
        ([3], None, "image 0 is a int"),
    ]:
        with pytest.raises(UserError, match=message):
            ImageListDataset(images, labels, classes=["a", "b"] if labels else None)
    missing = ImageListDataset([tmp_path / "missing.png"])
    with pytest.raises(UserError, match=r"missing\.png"):
        missing.load_image(0)
