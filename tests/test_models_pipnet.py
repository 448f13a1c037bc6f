"""PIP-Net: presence maps, the thresholded non-negative classifier, grids, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from protoexplain.errors import UserError
from protoexplain.models import PIPNet, PIPNetSpec, PrototypeModel, load_model, save_model


def make_pipnet(prototypes: int = 6, classes: int = 3) -> PIPNet:
    torch.manual_seed(0)
    return PIPNet(PIPNetSpec("small_cnn", classes, num_prototypes=prototypes, image_size=32)).eval()


def test_presence_maps_are_a_softmax_over_prototypes() -> None:
    model = make_pipnet()
    maps = model.similarity_maps(torch.randn(2, 3, 32, 32))
    assert maps.shape == (2, 6, 2, 2)
    assert torch.allclose(maps.sum(dim=1), torch.ones(2, 2, 2))
    assert (maps >= 0).all()


def test_logits_ignore_pooled_presence_below_the_threshold() -> None:
    model = make_pipnet()
    with torch.no_grad():
        model.classification.weight.copy_(torch.tensor(
            [[1.0, -2.0, 0.5, 0.0, 0.0, 3.0], [0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
             [2.0, 0.0, 0.0, 0.0, -1.0, 0.0]]))
        model.add_on[0].bias.copy_(torch.tensor([3.0, 3.0, 0.0, 0.0, 0.0, 0.0]))
        x = torch.randn(3, 3, 32, 32)
        maps = model.similarity_maps(x)
        logits = model(x)
    pooled_all = maps.flatten(2).amax(dim=2)
    assert (pooled_all < 0.1).any() and (pooled_all >= 0.1).any()  # the threshold matters here
    for b in range(3):
        for c in range(3):
            total = 0.0
            for j in range(6):
                pooled = float(maps[b, j].max())
                weight = max(float(model.classification.weight.detach()[c, j]), 0.0)
                total += (pooled if pooled >= 0.1 else 0.0) * weight
            assert float(logits[b, c]) == pytest.approx(total, abs=1e-6)


def test_contract_class_weights_and_boxes() -> None:
    model = make_pipnet()
    assert isinstance(model, PrototypeModel)
    with torch.no_grad():
        model.classification.weight.copy_(torch.tensor(
            [[0.1, -1.0, 0.0, 0.0, 2.0, 0.0], [0.5, 0.3, 0.0, 0.0, 0.0, 0.0],
             [0.0, 0.2, 0.0, 1.0, 0.0, 0.0]]))
    weights = model.class_weights()
    assert weights.shape == (6, 3) and (weights >= 0).all()
    assert weights[1].tolist() == pytest.approx([0.0, 0.3, 0.2])
    assert model.main_class.tolist() == [1, 1, 0, 2, 0, 0]
    assert model.cell_box(1, 0, 32) == (16, 32, 0, 16)  # 2×2 grid on 32 px


def test_one_prototype_per_trunk_channel_by_default() -> None:
    model = PIPNet(PIPNetSpec("small_cnn", 2, image_size=32))
    assert model.num_prototypes == 128 and len(model.add_on) == 0
    assert model.classification.normalization_multiplier.item() == 2.0
    assert not model.classification.normalization_multiplier.requires_grad


def test_resnet_keeps_a_finer_grid() -> None:
    model = PIPNet(PIPNetSpec("resnet18", 2, num_prototypes=4, image_size=64)).eval()
    with torch.no_grad():
        assert model.similarity_maps(torch.randn(1, 3, 64, 64)).shape == (1, 4, 8, 8)


@pytest.mark.slow
@pytest.mark.parametrize(("trunk", "grid"), [("convnext_tiny_26", 26), ("convnext_tiny_13", 13),
                                             ("resnet50", 28)])
def test_published_grids_at_224(trunk: str, grid: int) -> None:
    model = PIPNet(PIPNetSpec(trunk, 2, num_prototypes=4)).eval()
    with torch.no_grad():
        assert model.similarity_maps(torch.randn(1, 3, 224, 224)).shape == (1, 4, grid, grid)


def test_checkpoint_round_trip_builds_a_pipnet(tmp_path) -> None:
    model = make_pipnet()
    save_model(model, tmp_path / "m")
    description = json.loads((tmp_path / "m" / "model.json").read_text())
    assert description["architecture"] == "PIPNet"
    assert description["main_class"] == model.main_class.tolist()
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, PIPNet)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(loaded(x), model(x))


def test_bad_spec_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown PIP-Net trunk"):
        PIPNetSpec("vgg11", 2)
    with pytest.raises(UserError, match="threshold"):
        PIPNetSpec("small_cnn", 2, threshold=1.5)



def test_protopnet_only_commands_refuse_a_pipnet_in_one_line(tmp_path) -> None:
    from protoexplain.analysis.prune import PruneConfig, prune_model_folder
    from protoexplain.cli import main

    save_model(make_pipnet(), tmp_path / "m")
    with pytest.raises(UserError, match="prune works on ProtoPNet models only"):
        prune_model_folder(tmp_path / "m", tmp_path, tmp_path / "out", PruneConfig())
    assert main(["push", str(tmp_path / "m"), str(tmp_path)]) == 2
