"""Import of the original ProtoPNet's pickled checkpoints through the allow-list unpickler.

The test writes its own stand-in of the original code (modules ``model`` and
``resnet_features`` with the original class names and attribute layout), pickles a whole module
with ``torch.save(model)``, removes the stand-in modules and imports the file.
"""

from __future__ import annotations

import os
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from protoexplain.cli import main
from protoexplain.errors import UserError
from protoexplain.models import load_model
from protoexplain.models.legacy import import_legacy


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet_features(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2)):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class PPNet(nn.Module):
    """The original's forward, written independently of protoexplain."""

    def __init__(self, features, img_size, prototype_shape, num_classes):
        super().__init__()
        self.img_size = img_size
        self.prototype_shape = prototype_shape
        self.num_prototypes = prototype_shape[0]
        self.num_classes = num_classes
        self.epsilon = 1e-4
        self.prototype_activation_function = "log"
        per_class = self.num_prototypes // num_classes
        self.prototype_class_identity = torch.zeros(self.num_prototypes, num_classes)
        for j in range(self.num_prototypes):
            self.prototype_class_identity[j, j // per_class] = 1
        self.features = features
        # the original's bottleneck for 512 channels and prototype depth 128
        self.add_on_layers = nn.Sequential(
            nn.Conv2d(512, 256, 1), nn.ReLU(), nn.Conv2d(256, 256, 1), nn.ReLU(),
            nn.Conv2d(256, 128, 1), nn.ReLU(), nn.Conv2d(128, 128, 1), nn.Sigmoid(),
        )
        self.prototype_vectors = nn.Parameter(torch.rand(prototype_shape))
        self.ones = nn.Parameter(torch.ones(prototype_shape), requires_grad=False)
        self.last_layer = nn.Linear(self.num_prototypes, num_classes, bias=False)

    def conv_features(self, x):
        return self.add_on_layers(self.features(x))

    def _l2_convolution(self, x):
        x2_patch_sum = F.conv2d(input=x**2, weight=self.ones)
        p2 = torch.sum(self.prototype_vectors**2, dim=(1, 2, 3)).view(-1, 1, 1)
        xp = F.conv2d(input=x, weight=self.prototype_vectors)
        return F.relu(x2_patch_sum - 2 * xp + p2)

    def forward(self, x):
        distances = self._l2_convolution(self.conv_features(x))
        min_distances = -F.max_pool2d(-distances, kernel_size=distances.shape[2:]).view(
            -1, self.num_prototypes
        )
        activations = torch.log((min_distances + 1) / (min_distances + self.epsilon))
        return self.last_layer(activations), min_distances


def _original_module(monkeypatch) -> PPNet:
    """Build a stand-in original model whose classes live in modules named as the original's."""
    model_module = types.ModuleType("model")
    resnet_module = types.ModuleType("resnet_features")
    for cls, module in ((PPNet, model_module), (BasicBlock, resnet_module),
                        (ResNet_features, resnet_module)):
        monkeypatch.setattr(cls, "__module__", module.__name__)
        setattr(module, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, "model", model_module)
    monkeypatch.setitem(sys.modules, "resnet_features", resnet_module)
    torch.manual_seed(7)
    model = PPNet(ResNet_features(), 64, (6, 128, 1, 1), 3)
    with torch.no_grad():
        model.last_layer.weight.normal_()
    model.train()
    model(torch.randn(4, 3, 64, 64))  # non-trivial batch-norm statistics
    return model.eval()


def _forget_original_modules(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "model")
    monkeypatch.delitem(sys.modules, "resnet_features")


def test_pickled_module_imports_with_identical_outputs(tmp_path, monkeypatch):
    original = _original_module(monkeypatch)
    torch.save(original, tmp_path / "10push0.7822.pth")
    _forget_original_modules(monkeypatch)

    model = import_legacy(tmp_path / "10push0.7822.pth", "resnet18")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, min_distances = original(x)
        ours = model.forward_details(x)
        torch.testing.assert_close(ours.logits, logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.min_distances, min_distances, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            ours.distance_maps, original._l2_convolution(original.conv_features(x)),
            atol=1e-5, rtol=1e-5,
        )
    assert model.spec.image_size == 64
    assert model.spec.add_on == "bottleneck"
    assert model.prototype_class.tolist() == [0, 0, 1, 1, 2, 2]


def test_plain_state_dict_imports(tmp_path, monkeypatch):
    original = _original_module(monkeypatch)
    torch.save(original.state_dict(), tmp_path / "state.pth")
    model = import_legacy(tmp_path / "state.pth", "resnet18", image_size=64)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), original(x)[0], atol=1e-5, rtol=1e-5)


def test_cli_import_legacy_writes_a_loadable_model(tmp_path, monkeypatch, capsys):
    original = _original_module(monkeypatch)
    torch.save(original, tmp_path / "orig.pth")
    _forget_original_modules(monkeypatch)
    (tmp_path / "classes.txt").write_text("1 001.Albatross\n2 002.Auklet\n3 003.Tern\n")
    status = main(["import-legacy", str(tmp_path / "orig.pth"), "--out", str(tmp_path / "out"),
                   "--arch", "resnet18", "--classes", str(tmp_path / "classes.txt")])
    assert status == 0
    model = load_model(tmp_path / "out")
    assert model.class_names == ["001.Albatross", "002.Auklet", "003.Tern"]
    with torch.no_grad():
        x = torch.randn(1, 3, 64, 64)
        torch.testing.assert_close(model(x), original(x)[0], atol=1e-5, rtol=1e-5)
    assert "imported 6 prototypes, 3 classes" in capsys.readouterr().out


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_referencing_os_system_is_refused_without_running(tmp_path):
    marker = tmp_path / "was-run"
    evil = _Evil()
    evil.marker = marker
    torch.save({"prototype_vectors": torch.zeros(1), "payload": evil}, tmp_path / "evil.pth")
    with pytest.raises(UserError, match=r"refusing to load .*evil\.pth.*system"):
        import_legacy(tmp_path / "evil.pth", "resnet18")
    assert not marker.exists()


def test_cli_reports_refusal_in_one_line(tmp_path, capsys):
    evil = _Evil()
    evil.marker = tmp_path / "was-run"
    torch.save(evil, tmp_path / "evil.pth")
    status = main(["import-legacy", str(tmp_path / "evil.pth"), "--out", str(tmp_path / "o"),
                   "--arch", "vgg11"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("protoexplain: error: refusing to load")
    assert not (tmp_path / "was-run").exists()


def test_wrong_architecture_is_a_clear_error(tmp_path, monkeypatch):
    original = _original_module(monkeypatch)
    torch.save(original.state_dict(), tmp_path / "state.pth")
    with pytest.raises(UserError, match="does not fit backbone 'resnet34'"):
        import_legacy(tmp_path / "state.pth", "resnet34")
