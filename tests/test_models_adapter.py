"""A model defined here, not in the package, explained through SimilarityModelAdapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from protoexplain.data import ImageFolderDataset
from protoexplain.errors import UserError
from protoexplain.explain import explain_dataset, register_modification
from protoexplain.models import InputSpec, PrototypeModel, SimilarityModelAdapter

COLOURS = {"a": [(200, 50, 0), (101, 180, 30)], "b": [(30, 7, 90)]}
STRENGTH = 0.5


class ChannelSimilarity(nn.Module):
    """Prototype j is "how much of colour channel j" in each 4×4 cell (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x[:, :2], 4)


@register_modification("darken", default_strength=STRENGTH, family="adapter-test")
def darken(image: Image.Image, strength: float) -> Image.Image:
    """Scale every pixel value by 1 − strength (rounded down)."""
    return Image.eval(image, lambda v: int(v * (1 - strength)))


def make_images(root: Path) -> Path:
    for name, colours in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i, colour in enumerate(colours):
            Image.new("RGB", (16, 16), colour).save(root / name / f"{i}.png")
    return root


def make_adapter() -> SimilarityModelAdapter:
    weights = torch.tensor([[1.0, 0.0], [0.2, 0.7]])  # prototype 0 → a, prototype 1 → b
    spec = InputSpec(16, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    return SimilarityModelAdapter(ChannelSimilarity(), spec, weights, ["a", "b"])


def test_adapter_satisfies_the_contract() -> None:
    model = make_adapter()
    assert isinstance(model, PrototypeModel)
    assert model.main_class.tolist() == [0, 1]
    x = torch.zeros(1, 3, 16, 16)
    x[:, 0, :4, 4:8] = 0.8  # one cell of red
    x[:, 1] = 0.5
    # default logits: max over cells of each map, times the class weights
    assert torch.allclose(model(x), torch.tensor([[0.8 * 1.0 + 0.5 * 0.2, 0.5 * 0.7]]))
    assert model.cell_box(1, 2, 16) == (4, 8, 8, 12)  # 4×4 grid on 16 px


def test_global_scores_equal_a_hand_computation(tmp_path: Path) -> None:
    dataset = ImageFolderDataset(make_images(tmp_path / "data"))
    result = explain_dataset(
        make_adapter(), dataset, ["darken"], {"darken": [STRENGTH]}, family="adapter-test",
        bootstrap=0,
    )
    colours = np.array([c for name in sorted(COLOURS) for c in COLOURS[name]], dtype=np.float64)
    s = colours[:, :2] / 255  # uniform images: every cell has the channel mean
    s_m = np.floor(colours[:, :2] * (1 - STRENGTH)) / 255
    delta = s - s_m
    expected = (delta * s).sum(axis=0) / s.sum(axis=0)
    table = result.global_scores.sort_values("prototype")
    assert table["weighted_delta"].to_numpy() == pytest.approx(expected, rel=1e-5)
    assert table["prototype_class"].tolist() == [0, 1]
    assert result.n_images == 3


def test_wrong_maps_and_weights_are_one_line_errors() -> None:
    spec = InputSpec(16, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    with pytest.raises(UserError, match="non-negative"):
        SimilarityModelAdapter(ChannelSimilarity(), spec, torch.tensor([[-1.0], [1.0]]))
    three = SimilarityModelAdapter(ChannelSimilarity(), spec, torch.ones(3, 2))
    with pytest.raises(UserError, match="expected"):
        three.similarity_maps(torch.zeros(1, 3, 16, 16))


def test_an_adapted_model_is_not_saved_and_unknown_architectures_are_named(tmp_path) -> None:
    import json

    from protoexplain.models import ModelSpec, ProtoPNet, load_model, save_model

    with pytest.raises(UserError, match="no registered architecture"):
        save_model(make_adapter(), tmp_path / "adapted")
    save_model(ProtoPNet(ModelSpec("small_cnn", 2, (2, 8, 1, 1), image_size=32)), tmp_path / "m")
    description = json.loads((tmp_path / "m" / "model.json").read_text())
    description["architecture"] = "ProtoTree"
    (tmp_path / "m" / "model.json").write_text(json.dumps(description))
    with pytest.raises(UserError, match=r"unknown architecture 'ProtoTree'.*ProtoPNet, PIPNet"):
        load_model(tmp_path / "m")
