"""Behaviour every architecture shares, run over ProtoPNet and PIP-Net alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from protoexplain.analysis.evaluate import predict_logits
from protoexplain.analysis.local import analyze_image
from protoexplain.analysis.nearest import find_neighbours, nearest_table, open_dataset
from protoexplain.cli import main
from protoexplain.data import ImageFolderDataset, eval_transform
from protoexplain.explain import explain_dataset, explain_image
from protoexplain.models import (
    ModelSpec,
    PIPNet,
    PIPNetSpec,
    ProtoPNet,
    PrototypeModel,
    load_model,
    save_model,
)
from protoexplain.report.localexp import LocalExample, locate_patches


def protopnet() -> ProtoPNet:
    return ProtoPNet(ModelSpec("small_cnn", 2, (4, 8, 1, 1), class_names=["a", "b"],
                               image_size=32))


def pipnet() -> PIPNet:
    return PIPNet(PIPNetSpec("small_cnn", 2, ["a", "b"], num_prototypes=4, image_size=32))


BUILDERS = {"protopnet": protopnet, "pipnet": pipnet}


@pytest.fixture(params=sorted(BUILDERS))
def model(request) -> PrototypeModel:
    torch.manual_seed(1)
    return BUILDERS[request.param]().eval()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir()
        for i in range(2):
            pixels = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_contract_members(model) -> None:
    assert isinstance(model, PrototypeModel)
    weights = model.class_weights()
    assert weights.shape == (4, 2) and (weights >= 0).all()
    assert torch.equal(model.main_class, weights.argmax(dim=1))
    maps = model.similarity_maps(torch.randn(3, 3, 32, 32))
    assert maps.shape[:2] == (3, 4)
    h0, h1, w0, w1 = model.cell_box(0, 0, 32)
    assert 0 <= h0 < h1 <= 32 and 0 <= w0 < w1 <= 32


def test_save_and_load_keep_the_logits(model, tmp_path) -> None:
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_explain_and_evaluate_run_on_every_architecture(model, images) -> None:
    dataset = ImageFolderDataset(images)
    result = explain_dataset(model, dataset, ["hue"], {"hue": [0.3]}, bootstrap=0)
    table = result.global_scores.sort_values("prototype")
    assert table["prototype"].tolist() == [0, 1, 2, 3]
    assert table["prototype_class"].tolist() == model.main_class.tolist()
    rows = explain_image(model, dataset.load_image(0), modifications=["hue"])
    assert len(rows) == 4 * len(rows["strength"].unique())
    logits, labels, classes, _ = predict_logits(model, images)
    assert logits.shape == (4, 2) and classes == ["a", "b"]
    assert labels.tolist() == [0, 0, 1, 1]


def test_report_locates_patches(model, images) -> None:
    example = LocalExample(image="a/0.png", image_class="a", prototype=1, similarity=1.0,
                           importances={})
    locate_patches(model, [example], images)
    assert example.pixels.shape == (32, 32, 3)
    h0, h1, w0, w1 = example.box
    assert 0 <= h0 < h1 <= 32 and 0 <= w0 < w1 <= 32


def test_nearest_patches_match_a_naive_search(model, images, tmp_path) -> None:
    dataset = open_dataset(model, images)
    found = find_neighbours(model, dataset, k=2, batch_size=3)
    with torch.no_grad():
        maps = torch.cat([model.similarity_maps(dataset[i][0][None]) for i in range(4)])
    best = maps.flatten(2).amax(dim=2)  # (images, P): each image's best similarity
    for j in range(4):
        order = sorted(range(4), key=lambda i: (-float(best[i, j]), i))[:2]
        assert found.image_index[j].tolist() == order
        cell = int(maps[order[0], j].flatten().argmax())
        assert (found.cell_h[j, 0], found.cell_w[j, 0]) == divmod(cell, maps.shape[3])
    table = nearest_table(model, dataset, found, tmp_path)
    assert len(table) == 8 and (tmp_path / "p0000_r01_patch.png").is_file()
    assert table["prototype_class"].tolist() == np.repeat(model.main_class.numpy(), 2).tolist()


def test_image_analysis_contributions_sum_to_the_logits(model, images) -> None:
    image = Image.open(images / "a" / "0.png")
    analysis = analyze_image(model, image, top_k=3, top_classes=2)
    # independent: the logits of the model itself on the resized, normalised image
    assert np.allclose(analysis.contributions.sum(axis=1), analysis.logits, atol=1e-5)
    for evidence in analysis.top_classes:
        total = sum(p.contribution for p in evidence.prototypes) + evidence.other_contribution
        assert total == pytest.approx(evidence.logit, abs=1e-5)
    top = analysis.top_prototypes[0]
    assert top.similarity == pytest.approx(float(analysis.similarity_maps[top.prototype].max()))
    assert top.rf_box == model.cell_box(top.cell_h, top.cell_w, 32)


def test_cli_analyze_image_gives_the_models_own_logits(model, images, tmp_path, capsys) -> None:
    save_model(model, tmp_path / "m")
    image = images / "b" / "1.png"
    assert main(["analyze-image", str(tmp_path / "m"), str(image), "--json", "--out",
                 str(tmp_path / "o"), "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    spec = model.input_spec
    x = eval_transform(spec.image_size, spec.mean, spec.std)(Image.open(image).convert("RGB"))
    with torch.no_grad():
        logits = model(x[None])[0]
    assert [c["logit"] for c in result["classes"]] == pytest.approx(logits.tolist(), abs=1e-5)
    assert result["predicted"] == int(logits.argmax())
    maps = np.load(tmp_path / "o" / result["similarity_maps"]["file"])
    assert maps.shape[0] == 4
