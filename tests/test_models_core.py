"""ProtoPNet core: distances, similarities, logits, add-on chains, receptive fields."""

from __future__ import annotations

import math

import pytest
import torch

from protoexplain.models import ModelSpec, ProtoPNet, build_add_on_layers
from protoexplain.models.receptive_field import ReceptiveField


def _small_model(**overrides) -> ProtoPNet:
    torch.manual_seed(0)
    spec = dict(backbone="small_cnn", num_classes=3, prototype_shape=(6, 16, 1, 1), image_size=64)
    spec.update(overrides)
    return ProtoPNet(ModelSpec(**spec)).eval()


def test_distance_maps_equal_brute_force_pairwise_squared_l2():
    model = _small_model()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        z = model.latent(x).double()
        got = model.distance_maps(x).double()
    prototypes = model.prototype_vectors.detach().double()[:, :, 0, 0]
    batch, _, height, width = z.shape
    expected = torch.empty(batch, prototypes.shape[0], height, width, dtype=torch.float64)
    for b in range(batch):
        for h in range(height):
            for w in range(width):
                patch = z[b, :, h, w]
                for j, prototype in enumerate(prototypes):
                    expected[b, j, h, w] = ((patch - prototype) ** 2).sum()
    assert got.shape == (2, 6, 4, 4)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_logits_are_last_layer_of_log_similarity_of_minimum_distance():
    model = _small_model()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        out = model.forward_details(x)
        distances = model.distance_maps(x)
    min_d = distances.flatten(2).min(dim=2).values
    similarity = torch.log((min_d + 1) / (min_d + 1e-4))
    torch.testing.assert_close(out.min_distances, min_d)
    torch.testing.assert_close(out.logits, similarity @ model.last_layer.weight.T)
    torch.testing.assert_close(model(x), out.logits)


def test_linear_activation_is_negative_distance():
    model = _small_model(activation="linear")
    d = torch.tensor([0.0, 2.5, 10.0])
    torch.testing.assert_close(model.distance_to_similarity(d), -d)


def test_similarity_maps_shape_and_values():
    model = _small_model()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        d = model.distance_maps(x)
        s = model.similarity_maps(x)
    torch.testing.assert_close(s, torch.log((d + 1) / (d + 1e-4)))


def test_last_layer_connections_plus_one_own_class_minus_half_others():
    model = _small_model()
    weight = model.last_layer.weight.detach()
    assert weight.shape == (3, 6)
    for j in range(6):
        for c in range(3):
            assert weight[c, j].item() == (1.0 if c == j // 2 else -0.5)
    assert model.prototype_class.tolist() == [0, 0, 1, 1, 2, 2]


def test_prototypes_must_divide_evenly_over_classes():
    from protoexplain.errors import UserError

    with pytest.raises(UserError, match="multiple of the class count"):
        ModelSpec("small_cnn", num_classes=4, prototype_shape=(6, 16, 1, 1))


def test_any_image_size_sets_latent_size():
    model = _small_model(image_size=96)
    with torch.no_grad():
        assert model.distance_maps(torch.randn(1, 3, 96, 96)).shape[-2:] == (6, 6)
        assert model.distance_maps(torch.randn(1, 3, 80, 48)).shape[-2:] == (5, 3)
    assert model.receptive_field().n == 6


def _conv_channels(layers: torch.nn.Sequential) -> list[tuple[int, int]]:
    return [(m.in_channels, m.out_channels) for m in layers if isinstance(m, torch.nn.Conv2d)]


def test_bottleneck_chain_vgg_512_to_128():
    layers = build_add_on_layers("bottleneck", 512, 128)
    assert _conv_channels(layers) == [(512, 256), (256, 256), (256, 128), (128, 128)]
    kinds = [type(m).__name__ for m in layers]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d", "Sigmoid"]


def test_bottleneck_chain_resnet50_2048_to_128():
    layers = build_add_on_layers("bottleneck", 2048, 128)
    assert _conv_channels(layers) == [
        (2048, 1024), (1024, 1024), (1024, 512), (512, 512),
        (512, 256), (256, 256), (256, 128), (128, 128),
    ]
    assert isinstance(layers[-1], torch.nn.Sigmoid)
    assert sum(isinstance(m, torch.nn.Sigmoid) for m in layers) == 1


def test_bottleneck_runs_once_when_channels_already_small():
    assert _conv_channels(build_add_on_layers("bottleneck", 64, 128)) == [(64, 128), (128, 128)]


def test_regular_add_on():
    layers = build_add_on_layers("regular", 512, 128)
    assert _conv_channels(layers) == [(512, 128), (128, 128)]
    assert [type(m).__name__ for m in layers] == ["Conv2d", "ReLU", "Conv2d", "Sigmoid"]
    assert all(m.bias.abs().sum() == 0 for m in layers if isinstance(m, torch.nn.Conv2d))


@pytest.mark.parametrize(
    ("backbone", "expected"),
    [
        ("vgg19", [7, 32, 268, 16.0]),
        ("vgg16", [7, 32, 212, 16.0]),
        ("resnet18", [7, 32, 435, None]),
        ("resnet34", [7, 32, 899, None]),
        ("densenet121", [7, 32, 2071, None]),
    ],
)
def test_receptive_fields_match_reference_values(backbone, expected):
    model = ProtoPNet(ModelSpec(backbone, num_classes=2, prototype_shape=(2, 8, 1, 1)))
    got = model.receptive_field(224).as_list()
    assert got[:3] == expected[:3]
    if expected[3] is not None:
        assert got[3] == expected[3]


def test_vgg19_boxes_of_cells_0_3_6():
    field = ReceptiveField(n=7, jump=32, rf=268, start=16.0)
    # centre = 16 + 32 i; box = [max(int(c - 134), 0), min(int(c + 134), 224))
    assert field.box(0, 0, 224) == (0, 150, 0, 150)
    assert field.box(3, 3, 224) == (0, 224, 0, 224)
    assert field.box(6, 6, 224) == (74, 224, 74, 224)
    assert field.box(0, 6, 224) == (0, 150, 74, 224)


def test_small_cnn_receptive_field_matches_latent_size():
    model = _small_model(image_size=128)
    field = model.receptive_field()
    with torch.no_grad():
        latent = model.latent(torch.zeros(1, 3, 128, 128))
    assert field.n == latent.shape[-1] == 8
    # four 3x3 stride-2 convs: rf = 1 + 2*(1 + 2 + 4 + 8) = 31, jump 16
    assert (field.jump, field.rf) == (16, 31)
    assert math.isclose(field.start, 0.5)


def test_select_prototypes_keeps_their_similarities_and_weights():
    model = _small_model()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model.similarity_maps(x)
        weight = model.last_layer.weight.detach().clone()
    keep = [5, 0, 3]
    model.select_prototypes(keep)
    with torch.no_grad():
        after = model.similarity_maps(x)
    assert model.num_prototypes == 3
    assert model.prototype_class.tolist() == [2, 0, 1]
    torch.testing.assert_close(after, before[:, keep])
    torch.testing.assert_close(model.last_layer.weight.detach(), weight[:, keep])
