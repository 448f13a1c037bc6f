"""`analyze-image` finds the model's explain output and adds "because hue …, brightness …"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from protoexplain.analysis.local import prepare_image
from protoexplain.cli import main
from protoexplain.models import ModelSpec, ProtoPNet, save_model


def write_images(root: Path) -> None:
    rng = np.random.default_rng(5)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def similarity_at(model: ProtoPNet, image: Image.Image, j: int, cell: tuple[int, int]) -> float:
    with torch.no_grad():
        maps = model.similarity_maps(model.normalize(prepare_image(image, 32)[None]))
    return float(maps[0, j, cell[0], cell[1]])


def test_analyze_image_adds_local_and_global_importances(tmp_path, capsys):
    write_images(tmp_path / "data")
    torch.manual_seed(2)
    model = ProtoPNet(ModelSpec("small_cnn", 2, (4, 8, 1, 1), image_size=32)).eval()
    model_dir = save_model(model, tmp_path / "run" / "model")
    explain_dir = tmp_path / "run" / "explain" / "test"
    assert main(["explain", str(model_dir), str(tmp_path / "data"), "--out", str(explain_dir),
                 "--modifications", "brightness", "hue", "--workers", "0", "--bootstrap", "5",
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    image_path = tmp_path / "data" / "a" / "1.png"
    out = tmp_path / "analysis"
    assert main(["analyze-image", str(model_dir), str(image_path), "--top-k", "2", "--out",
                 str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "this looks like that because" in printed and str(explain_dir) in printed
    data = json.loads((out / "analysis.json").read_text())
    assert data["explanation"]["explain_dir"] == str(explain_dir)
    image = Image.open(image_path).convert("RGB")
    brighter = TF.adjust_brightness(image, 0.8)
    for item in data["top_prototypes"]:
        assert set(item["importances"]) == {"brightness", "hue"}
        cell = (item["cell_h"], item["cell_w"])
        j = item["prototype"]
        # Δ = s − s_m, with s_m taken at the cell where the original image matched best
        delta = similarity_at(model, image, j, cell) - similarity_at(model, brighter, j, cell)
        assert item["importances"]["brightness"] == pytest.approx(delta, abs=1e-4)
        assert set(data["explanation"]["global"][str(j)]) == {"brightness", "hue"}


def test_analyze_image_without_explain_output_has_no_importances(tmp_path, capsys):
    write_images(tmp_path / "data")
    model_dir = save_model(ProtoPNet(ModelSpec("small_cnn", 2, (2, 8, 1, 1), image_size=32)),
                           tmp_path / "model")
    assert main(["analyze-image", str(model_dir), str(tmp_path / "data" / "b" / "0.png"),
                 "--out", str(tmp_path / "o"), "--device", "cpu"]) == 0
    assert "because" not in capsys.readouterr().out
    assert main(["analyze-image", str(model_dir), str(tmp_path / "data" / "b" / "0.png"),
                 "--out", str(tmp_path / "o"), "--explain-dir", str(tmp_path)]) == 2
    assert "explain.json is missing" in capsys.readouterr().err
