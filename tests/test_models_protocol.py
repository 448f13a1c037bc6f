"""The model contract: ProtoPNet satisfies it; the shared helpers against hand computations."""

from __future__ import annotations

from itertools import pairwise

import torch

from protoexplain.models import InputSpec, ModelSpec, ProtoPNet, PrototypeModel, model_device
from protoexplain.models.protocol import grid_box, strongest_class


def make_protopnet() -> ProtoPNet:
    torch.manual_seed(0)
    spec = ModelSpec("small_cnn", 3, (6, 8, 1, 1), prototype_class=[2, 0, 1, 1, 0, 2],
                     image_size=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))
    return ProtoPNet(spec).eval()


def test_protopnet_satisfies_the_contract() -> None:
    model = make_protopnet()
    assert isinstance(model, PrototypeModel)
    assert model.input_spec == InputSpec(32, (0.5, 0.4, 0.3), (0.2, 0.25, 0.5))
    weights = model.class_weights()
    expected = torch.zeros(6, 3)
    expected[torch.arange(6), torch.tensor([2, 0, 1, 1, 0, 2])] = 1
    assert torch.equal(weights, expected)
    assert model.main_class.tolist() == [2, 0, 1, 1, 0, 2]
    field = model.receptive_field(32)
    assert model.cell_box(1, 0, 32) == field.box(1, 0, 32)
    x = torch.rand(2, 3, 32, 32)
    assert model.similarity_maps(x).shape == (2, 6, 2, 2)
    assert model(x).shape == (2, 3)


def test_input_spec_normalises_like_the_model() -> None:
    model = make_protopnet()
    x = torch.rand(2, 3, 8, 8)
    manual = (x - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor(
        [0.2, 0.25, 0.5]).view(1, 3, 1, 1)
    assert torch.allclose(model.input_spec.normalize(x), manual)
    assert torch.allclose(model.normalize(x), manual)


def test_grid_box_is_the_upsampled_cell() -> None:
    # a 3×4 grid on 12 px: cells are 4 rows × 3 columns of pixels
    assert grid_box(0, 0, (3, 4), 12) == (0, 4, 0, 3)
    assert grid_box(2, 3, (3, 4), 12) == (8, 12, 9, 12)
    # uneven split: 26 cells on 224 px; the boxes tile the image without gaps
    spans = [grid_box(0, w, (26, 26), 224)[2:] for w in range(26)]
    assert spans[0][0] == 0 and spans[-1][1] == 224
    assert all(a[1] == b[0] for a, b in pairwise(spans))


def test_strongest_class_and_device() -> None:
    weights = torch.tensor([[0.0, 2.0, 1.0], [3.0, 3.0, 0.0]])
    assert strongest_class(weights).tolist() == [1, 0]  # first of equal weights
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")
    assert model_device(make_protopnet()) == torch.device("cpu")
