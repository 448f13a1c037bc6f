"""`nearest`: each prototype's k nearest images equal a brute-force search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from protoexplain.cli import main
from protoexplain.data import ImageFolderDataset, eval_transform
from protoexplain.models import ModelSpec, ProtoPNet, save_model


def write_images(root: Path, per_class: int = 4, size: int = 32) -> None:
    rng = np.random.default_rng(7)
    for name, colour in (("blue", (40, 60, 200)), ("red", (200, 50, 40))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 60, (size, size, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")


def brute_force(model: ProtoPNet, root: Path, k: int) -> list[list[tuple[int, float, int, int]]]:
    """Per prototype, its k nearest images as (index, distance, cell_h, cell_w), by loops."""
    dataset = ImageFolderDataset(root, eval_transform(32))
    best = []  # best[i][j] = (distance, cell_h, cell_w) of image i for prototype j
    with torch.no_grad():
        for i in range(len(dataset)):
            z = model.latent(dataset[i][0][None])[0]
            per_prototype = []
            for p in model.prototype_vectors[:, :, 0, 0]:
                d = ((z - p[:, None, None]) ** 2).sum(dim=0)
                flat = int(d.argmin())
                per_prototype.append((float(d.min()), *divmod(flat, d.shape[1])))
            best.append(per_prototype)
    result = []
    for j in range(model.num_prototypes):
        order = sorted(range(len(best)), key=lambda i: (best[i][j][0], i))[:k]
        result.append([(i, *best[i][j]) for i in order])
    return result


def test_nearest_equals_brute_force(tmp_path, capsys):
    write_images(tmp_path / "data")
    torch.manual_seed(1)
    model = ProtoPNet(
        ModelSpec("small_cnn", 2, (4, 8, 1, 1), image_size=32, class_names=["blue", "red"])
    ).eval()
    save_model(model, tmp_path / "model")
    out = tmp_path / "nearest"
    code = main(["nearest", str(tmp_path / "model"), str(tmp_path / "data"), "--k", "3",
                 "--out", str(out), "--device", "cpu", "--batch-size", "3"])
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    table = pd.read_csv(out / "nearest.csv")
    assert list(table.columns) == [
        "prototype", "prototype_class", "rank", "image", "image_index", "image_class",
        "distance", "cell_h", "cell_w", "h0", "h1", "w0", "w1",
    ]
    expected = brute_force(model, tmp_path / "data", 3)
    assert len(table) == 4 * 3
    for row in table.itertuples():
        index, distance, cell_h, cell_w = expected[row.prototype][row.rank - 1]
        assert row.image_index == index
        assert row.distance == pytest.approx(distance, rel=1e-4, abs=1e-6)
        assert (row.cell_h, row.cell_w) == (cell_h, cell_w)
        assert row.image == f"{['blue', 'red'][index // 4]}/{index % 4}.png"
        assert row.image_class == index // 4
        assert 0 <= row.h0 < row.h1 <= 32 and 0 <= row.w0 < row.w1 <= 32
        stem = out / f"p{row.prototype:04d}_r{row.rank:02d}"
        with Image.open(f"{stem}_patch.png") as patch:
            assert patch.size == (row.w1 - row.w0, row.h1 - row.h0)
        assert Path(f"{stem}_heatmap.png").is_file()


def test_nearest_refuses_data_with_another_class_count(tmp_path, capsys):
    write_images(tmp_path / "data", per_class=1)
    model = ProtoPNet(ModelSpec("small_cnn", 3, (3, 8, 1, 1), image_size=32))
    save_model(model, tmp_path / "model")
    assert main(["nearest", str(tmp_path / "model"), str(tmp_path / "data")]) == 2
    error = capsys.readouterr().err
    assert "3 classes" in error and "2 class folders" in error
