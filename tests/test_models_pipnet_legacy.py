"""Import of original PIP-Net checkpoints: same logits as the module they came from; no code runs.

The "original" module is built here from the published description (Nauta et al., 2023, and
the structure of the original code's state dict): a ResNet-18 trunk whose third and fourth stages
keep stride 1, a 1×1 convolution + softmax over channels, max-pool, and a linear layer with ReLU
on its weights; at inference pooled values below 0.1 are set to 0. It is wrapped in
``nn.DataParallel`` and saved in a dict under ``model_state_dict``, as the original code does.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from protoexplain.cli import main
from protoexplain.errors import UserError
from protoexplain.models import PIPNet, load_model
from protoexplain.models.pipnet_legacy import import_pipnet_legacy


class PublishedTrunk(nn.Module):
    """ResNet-18 conv1 … layer4 under the original attribute names; layers 3 and 4 at stride 1."""

    def __init__(self) -> None:
        super().__init__()
        full = torchvision.models.resnet18(weights=None)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(full, name))
        for stage in (self.layer3, self.layer4):
            stage[0].conv1.stride = (1, 1)
            stage[0].downsample[0].stride = (1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class PublishedClassifier(nn.Module):
    def __init__(self, prototypes: int, classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, prototypes))
        self.normalization_multiplier = nn.Parameter(torch.full((1,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, torch.relu(self.weight))


class PublishedPIPNet(nn.Module):
    def __init__(self, prototypes: int = 16, classes: int = 3) -> None:
        super().__init__()
        self._net = PublishedTrunk()
        self._add_on = nn.Sequential(nn.Conv2d(512, prototypes, 1), nn.Softmax(dim=1))
        self._pool = nn.Sequential(nn.AdaptiveMaxPool2d((1, 1)), nn.Flatten())
        self._classification = PublishedClassifier(prototypes, classes)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        pooled = self._pool(self._add_on(self._net(xs)))
        return self._classification(torch.where(pooled < 0.1, 0.0, pooled))


def published_checkpoint(path) -> PublishedPIPNet:
    torch.manual_seed(5)
    net = PublishedPIPNet()
    for module in net.modules():  # non-trivial batch-norm statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    wrapped = nn.DataParallel(net)
    optimizer = torch.optim.Adam(net.parameters())
    torch.save({"model_state_dict": wrapped.state_dict(),
                "optimizer_net_state_dict": optimizer.state_dict()}, path)
    return net.eval()


def test_imported_checkpoint_gives_the_original_logits(tmp_path) -> None:
    original = published_checkpoint(tmp_path / "net_trained")
    model = import_pipnet_legacy(tmp_path / "net_trained", "resnet18", image_size=64)
    assert isinstance(model, PIPNet) and model.num_prototypes == 16 and model.num_classes == 3
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        expected = original(x)
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
    assert (expected != 0).any()


def test_cli_imports_into_a_loadable_model(tmp_path, capsys) -> None:
    original = published_checkpoint(tmp_path / "net_trained")
    (tmp_path / "classes.txt").write_text("1 001.Albatross\n2 002.Auklet\n3 003.Tern\n")
    status = main(["import-legacy", str(tmp_path / "net_trained"), str(tmp_path / "out"),
                   "--architecture", "pipnet", "--arch", "resnet18", "--image-size", "64",
                   "--classes", str(tmp_path / "classes.txt")])
    assert status == 0
    model = load_model(tmp_path / "out")
    assert isinstance(model, PIPNet)
    assert model.class_names == ["001.Albatross", "002.Auklet", "003.Tern"]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), original(x), atol=1e-5, rtol=1e-5)
    assert "imported 16 prototypes, 3 classes" in capsys.readouterr().out


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path) -> None:
    evil = _Evil()
    evil.marker = tmp_path / "was-run"
    torch.save({"model_state_dict": {"module._classification.weight": torch.ones(2, 2)},
                "payload": evil}, tmp_path / "evil.pth")
    with pytest.raises(UserError, match=r"refusing to load .*evil\.pth.*system"):
        import_pipnet_legacy(tmp_path / "evil.pth", "resnet18")
    assert not evil.marker.exists()


def test_wrong_trunk_is_a_clear_error(tmp_path) -> None:
    published_checkpoint(tmp_path / "net_trained")
    with pytest.raises(UserError, match="does not fit PIP-Net trunk 'resnet50'"):
        import_pipnet_legacy(tmp_path / "net_trained", "resnet50")
    status = main(["import-legacy", str(tmp_path / "net_trained"), str(tmp_path / "o"),
                   "--architecture", "pipnet", "--arch", "vgg11"])
    assert status == 2
