"""Local analysis of one image: numbers, boxes, files and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from protoexplain.analysis.local import analyze_image, prepare_image
from protoexplain.analysis.local_output import save_image_analysis
from protoexplain.cli import main
from protoexplain.models import ModelSpec, ProtoPNet, save_model

SRC = str(Path(__file__).resolve().parents[1] / "src")


def tiny_model(seed: int = 0, classes: int = 3, prototypes: int = 6) -> ProtoPNet:
    torch.manual_seed(seed)
    spec = ModelSpec(
        "small_cnn", classes, (prototypes, 8, 1, 1), image_size=48,
        class_names=[f"c{i}" for i in range(classes)],
    )
    model = ProtoPNet(spec).eval()
    with torch.no_grad():  # not the default ±1/−0.5 pattern, so weights matter
        model.last_layer.weight.copy_(torch.randn_like(model.last_layer.weight))
    return model


def noise_image(seed: int, size: tuple[int, int] = (40, 56)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def brute_force_min_distances(model: ProtoPNet, pixels: torch.Tensor) -> torch.Tensor:
    """(P,) min over cells of ‖z − p‖², one explicit loop per prototype."""
    with torch.no_grad():
        z = model.latent(model.normalize(pixels[None]))[0]  # (D, H, W)
        cells = z.flatten(1).T  # (HW, D)
        return torch.stack(
            [((cells - p.flatten()) ** 2).sum(dim=1).min() for p in model.prototype_vectors]
        )


def test_contributions_sum_to_every_class_logit():
    model = tiny_model()
    image = noise_image(1)
    analysis = analyze_image(model, image, top_k=4)
    with torch.no_grad():
        logits = model(model.normalize(prepare_image(image, 48)[None]))[0].numpy()
    np.testing.assert_allclose(analysis.logits, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(analysis.contributions.sum(axis=1), logits, rtol=1e-5, atol=1e-5)
    for evidence in analysis.top_classes:
        total = sum(p.contribution for p in evidence.prototypes) + evidence.other_contribution
        assert total == pytest.approx(evidence.logit, abs=1e-5)
        assert all(model.prototype_class[p.prototype] == evidence.class_index
                   for p in evidence.prototypes)
        contributions = [p.contribution for p in evidence.prototypes]
        assert contributions == sorted(contributions, reverse=True)
    assert analysis.probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    assert analysis.predicted == int(np.argmax(logits))


def test_top_prototypes_match_a_brute_force_distance():
    model = tiny_model(seed=3)
    image = noise_image(2)
    analysis = analyze_image(model, image, top_k=6)
    distances = brute_force_min_distances(model, prepare_image(image, 48)).numpy()
    similarity = np.log((distances + 1) / (distances + 1e-4))
    expected_order = np.argsort(-similarity, kind="stable")
    assert [p.prototype for p in analysis.top_prototypes] == expected_order.tolist()
    weights = model.last_layer.weight.detach().numpy()
    for item in analysis.top_prototypes:
        assert item.similarity == pytest.approx(similarity[item.prototype], rel=1e-4, abs=1e-4)
        assert item.weight == pytest.approx(weights[analysis.predicted, item.prototype])
        assert item.contribution == pytest.approx(item.similarity * item.weight, rel=1e-6)
        # the best cell is where the raw map is largest
        cell_map = analysis.similarity_maps[item.prototype]
        assert cell_map[item.cell_h, item.cell_w] == pytest.approx(cell_map.max())


def test_high_activation_box_surrounds_the_peak_of_the_upsampled_map():
    model = tiny_model(seed=4)
    analysis = analyze_image(model, noise_image(6), top_k=6)
    for item in analysis.top_prototypes:
        upsampled = analysis.activation_map(item.prototype)
        assert upsampled.shape == (48, 48)
        h0, h1, w0, w1 = item.ha_box
        assert 0 <= h0 < h1 <= 48 and 0 <= w0 < w1 <= 48
        peak_h, peak_w = np.unravel_index(upsampled.argmax(), upsampled.shape)
        assert h0 <= peak_h < h1 and w0 <= peak_w < w1
        inside = np.zeros_like(upsampled, dtype=bool)
        inside[h0:h1, w0:w1] = True
        # every pixel at or above the 95th percentile lies inside the box
        assert inside[upsampled >= np.percentile(upsampled, 95)].all()


def test_saved_files_hold_every_number_and_the_raw_maps(tmp_path):
    model = tiny_model()
    analysis = analyze_image(model, noise_image(4), top_k=3)
    prototypes = tmp_path / "prototypes"
    prototypes.mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(prototypes / "p0000_crop.png")
    written = save_image_analysis(analysis, tmp_path / "out", prototypes)
    assert all(path.is_file() for path in written)
    data = json.loads((tmp_path / "out" / "analysis.json").read_text())
    maps = np.load(tmp_path / "out" / "similarity_maps.npy")
    assert maps.shape == (6, 3, 3)
    np.testing.assert_allclose(maps, analysis.similarity_maps)
    assert [p["prototype"] for p in data["top_prototypes"]] == [
        p.prototype for p in analysis.top_prototypes
    ]
    assert len(data["classes"]) == 3
    for item in data["top_prototypes"]:
        assert len(item["ha_box"]) == 4 and len(item["rf_box"]) == 4
        stem = tmp_path / "out" / f"top{item['rank']:02d}_p{item['prototype']:04d}"
        assert Path(f"{stem}_heatmap.png").is_file()
    assert (tmp_path / "out" / "analysis.png").stat().st_size > 0


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-m", "protoexplain", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=1800,
    )


def test_cli_analyze_image_and_user_errors(tmp_path, monkeypatch, capsys):
    model_dir = save_model(tiny_model(), tmp_path / "model")
    noise_image(5).save(tmp_path / "bird.png")
    result = run_cli("analyze-image", str(model_dir), "bird.png", "--top-k", "2",
                     "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "prediction:" in result.stdout
    assert (tmp_path / "analysis-bird" / "analysis.json").is_file()
    monkeypatch.chdir(tmp_path)
    assert main(["analyze-image", str(model_dir), "bird.png", "--json", "--out", "o",
                 "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["predicted_class"] in {"c0", "c1", "c2"}
    assert main(["analyze-image", str(model_dir), "nope.png"]) == 2
    assert "nope.png" in capsys.readouterr().err
    assert main(["analyze-image", str(tmp_path), "bird.png"]) == 2
    assert "model folder" in capsys.readouterr().err
