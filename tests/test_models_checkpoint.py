"""Safe checkpoints and the backbone registry."""

from __future__ import annotations

import json

import pytest
import torch

from protoexplain.errors import UserError
from protoexplain.models import (
    ModelSpec,
    ProtoPNet,
    create_backbone,
    list_backbones,
    load_model,
    save_model,
)


def _trained_looking_model() -> ProtoPNet:
    torch.manual_seed(1)
    model = ProtoPNet(
        ModelSpec("small_cnn", 2, (4, 16, 1, 1), class_names=["a<b>", "ß"], image_size=64)
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    model.train()
    model(torch.randn(4, 3, 64, 64))  # move batch-norm running statistics away from defaults
    return model.eval()


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    model = _trained_looking_model()
    save_model(model, tmp_path / "m", metadata={"accuracy": 0.5})
    loaded = load_model(tmp_path / "m")
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
        assert torch.equal(model.distance_maps(x), loaded.distance_maps(x))
    assert loaded.class_names == ["a<b>", "ß"]
    description = json.loads((tmp_path / "m" / "model.json").read_text())
    assert description["spec"]["prototype_shape"] == [4, 16, 1, 1]
    assert description["metadata"] == {"accuracy": 0.5}
    assert {"torch", "torchvision", "protoexplain"} <= set(description["versions"])
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.safetensors"]


def test_pruned_model_round_trip(tmp_path):
    model = _trained_looking_model()
    model.select_prototypes([3, 1])
    save_model(model, tmp_path / "p")
    loaded = load_model(tmp_path / "p")
    assert loaded.num_prototypes == 2
    assert loaded.prototype_class.tolist() == [1, 0]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_load_model_from_wrong_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a protoexplain model folder"):
        load_model(tmp_path)


def test_registry_lists_all_paper_backbones_and_the_small_one():
    names = set(list_backbones())
    expected = {f"resnet{n}" for n in (18, 34, 50, 101, 152)}
    expected |= {f"densenet{n}" for n in (121, 161, 169, 201)}
    expected |= {f"vgg{n}{bn}" for n in (11, 13, 16, 19) for bn in ("", "_bn")}
    assert expected | {"small_cnn", "convnext_tiny"} == names
    assert len(expected) == 17


def test_unknown_backbone_is_a_user_error():
    with pytest.raises(UserError, match="unknown backbone 'vgg20'"):
        create_backbone("vgg20")


def test_imagenet_weights_absent_from_cache_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError, match=r"resnet18-f37072fd\.pth"):
        create_backbone("resnet18", weights="imagenet")


def test_weights_from_local_file(tmp_path):
    import torchvision

    torch.manual_seed(3)
    full = torchvision.models.resnet18(weights=None)
    torch.save({"state_dict": {f"module.{k}": v for k, v in full.state_dict().items()}},
               tmp_path / "w.pth")
    trunk = create_backbone("resnet18", weights=tmp_path / "w.pth")
    torch.testing.assert_close(trunk.layer4[1].conv2.weight, full.layer4[1].conv2.weight)


def test_weights_file_of_another_architecture_is_refused(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "w.pth")
    with pytest.raises(UserError, match="do not fit this backbone"):
        create_backbone("vgg11", weights=tmp_path / "w.pth")


FAST_BACKBONES = ["small_cnn", "resnet18", "vgg11"]


@pytest.mark.parametrize("name", FAST_BACKBONES)
def test_fast_backbones_forward_at_224(name):
    _forward_at_224(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(list_backbones()) - set(FAST_BACKBONES)))
def test_every_other_backbone_forward_at_224(name):
    _forward_at_224(name)


def _forward_at_224(name: str) -> None:
    model = ProtoPNet(ModelSpec(name, 2, (4, 32, 1, 1))).eval()
    with torch.no_grad():
        distances = model.distance_maps(torch.randn(1, 3, 224, 224))
        logits = model(torch.randn(1, 3, 224, 224))
    expected = 14 if name == "small_cnn" else 7
    assert distances.shape == (1, 4, expected, expected)
    assert logits.shape == (1, 2)
    assert model.receptive_field(224).n == expected
