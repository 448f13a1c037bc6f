"""Backbone registry: convolutional trunks cut exactly as the original ProtoPNet code cut them.

``create_backbone(name, weights=None)`` builds one; ``list_backbones()`` names them all. Weights are
``None`` (random), ``"imagenet"`` (torchvision's weights, read from the local torch cache only) or a
path to a local weight file (safetensors or a PyTorch state dict).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from protoexplain.errors import UserError
from protoexplain.models.torchfile import load_tensors


@dataclass(frozen=True)
class BackboneInfo:
    """How to build one backbone and how many channels its trunk outputs."""

    name: str
    family: str
    out_channels: int
    build: Callable[[], nn.Module]
    torchvision_weights: str | None = None


_REGISTRY: dict[str, BackboneInfo] = {}


def register_backbone(info: BackboneInfo) -> BackboneInfo:
    """Add a backbone to the registry (names are unique)."""
    if info.name in _REGISTRY:
        raise ValueError(f"backbone {info.name!r} is registered twice")
    _REGISTRY[info.name] = info
    return info


def list_backbones() -> list[str]:
    """Names of every registered backbone."""
    return sorted(_REGISTRY)


def backbone_info(name: str) -> BackboneInfo:
    """Registry entry for ``name``; a clear error for an unknown name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(
            f"unknown backbone {name!r}; choose one of: {', '.join(list_backbones())}"
        ) from None


class FeatureStack(nn.Module):
    """A torchvision model's ``features`` stack alone (``features.<idx>`` as the original): VGG's
    convolutions including the last max-pool; ConvNeXt's stem and four stages."""

    def __init__(self, full: nn.Module) -> None:
        super().__init__()
        self.features = full.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class ResNetFeatures(nn.Module):
    """ResNet conv1 … layer4, without average pool and classifier."""

    def __init__(self, full: nn.Module) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu = full.conv1, full.bn1, full.relu
        self.maxpool = full.maxpool
        self.layer1, self.layer2 = full.layer1, full.layer2
        self.layer3, self.layer4 = full.layer3, full.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class DenseNetFeatures(nn.Module):
    """DenseNet ``features`` (ending in ``norm5``) followed by a ReLU, as in the original."""

    def __init__(self, full: nn.Module) -> None:
        super().__init__()
        self.features = full.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.features(x))


class SmallCNN(nn.Module):
    """A small, fast trunk for CPU demos and tests: four stride-2 conv–BN–ReLU blocks (÷16)."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for width in widths:
            layers += [
                nn.Conv2d(in_channels, width, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            in_channels = width
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


_TORCHVISION_FAMILIES: dict[str, type[nn.Module]] = {
    "vgg": FeatureStack,
    "resnet": ResNetFeatures,
    "densenet": DenseNetFeatures,
    "convnext": FeatureStack,
}

_TORCHVISION_BACKBONES: dict[str, tuple[str, int, str]] = {
    "vgg11": ("vgg", 512, "VGG11_Weights"),
    "vgg11_bn": ("vgg", 512, "VGG11_BN_Weights"),
    "vgg13": ("vgg", 512, "VGG13_Weights"),
    "vgg13_bn": ("vgg", 512, "VGG13_BN_Weights"),
    "vgg16": ("vgg", 512, "VGG16_Weights"),
    "vgg16_bn": ("vgg", 512, "VGG16_BN_Weights"),
    "vgg19": ("vgg", 512, "VGG19_Weights"),
    "vgg19_bn": ("vgg", 512, "VGG19_BN_Weights"),
    "resnet18": ("resnet", 512, "ResNet18_Weights"),
    "resnet34": ("resnet", 512, "ResNet34_Weights"),
    "resnet50": ("resnet", 2048, "ResNet50_Weights"),
    "resnet101": ("resnet", 2048, "ResNet101_Weights"),
    "resnet152": ("resnet", 2048, "ResNet152_Weights"),
    "densenet121": ("densenet", 1024, "DenseNet121_Weights"),
    "densenet161": ("densenet", 2208, "DenseNet161_Weights"),
    "densenet169": ("densenet", 1664, "DenseNet169_Weights"),
    "densenet201": ("densenet", 1920, "DenseNet201_Weights"),
    "convnext_tiny": ("convnext", 768, "ConvNeXt_Tiny_Weights"),
}


def _torchvision_builder(name: str) -> Callable[[], nn.Module]:
    return lambda: getattr(torchvision.models, name)(weights=None)


for _name, (_family, _channels, _weights) in _TORCHVISION_BACKBONES.items():
    register_backbone(
        BackboneInfo(_name, _family, _channels, _torchvision_builder(_name), _weights)
    )
register_backbone(BackboneInfo("small_cnn", "small", 128, SmallCNN))


def _imagenet_state_dict(info: BackboneInfo) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights from the local torch cache; never downloads."""
    weights = getattr(torchvision.models, info.torchvision_weights).IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if not cached.is_file():
        raise UserError(
            f"ImageNet weights for {info.name} are not in the torch cache: download {weights.url} "
            f"on a machine with network access and place it at {cached} (or pass a local file)"
        )
    return load_tensors(cached, "cached ImageNet weight file")


def _file_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a local file (safetensors or a tensors-only PyTorch file)."""
    if not path.is_file():
        raise UserError(f"weight file {path} does not exist; pass a file, 'imagenet' or none")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as error:
            raise UserError(f"cannot read weight file {path}: {error}") from None
    else:
        state = load_tensors(path)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise UserError(f"weight file {path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _load_full_model_weights(full: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into the full torchvision model; every trunk weight must be present."""
    own = full.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    trunk_keys = [k for k in own if not k.startswith(("fc.", "classifier."))]
    missing = [k for k in trunk_keys if k not in usable]
    if missing:
        raise UserError(
            f"weights from {source} do not fit this backbone: {len(missing)} trunk tensors are "
            f"missing or have another shape (first: {missing[0]}); check the --arch/backbone name"
        )
    full.load_state_dict(usable, strict=False)


def create_backbone(name: str, weights: str | os.PathLike | None = None) -> nn.Module:
    """Build the trunk ``name`` with random, ImageNet (local cache) or local-file weights."""
    info = backbone_info(name)
    full = info.build()
    if weights is not None:
        if str(weights) == "imagenet":
            if info.torchvision_weights is None:
                raise UserError(f"backbone {name!r} has no ImageNet weights; use weights = none")
            _load_full_model_weights(full, _imagenet_state_dict(info), "the torch cache")
        else:
            state = _file_state_dict(Path(weights))
            if info.family == "small":
                state = {k.removeprefix("features."): v for k, v in state.items()}
                state = {f"features.{k}": v for k, v in state.items()}
            _load_full_model_weights(full, state, str(weights))
    if info.family == "small":
        return full
    return _TORCHVISION_FAMILIES[info.family](full)
