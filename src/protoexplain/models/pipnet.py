"""PIP-Net (Nauta et al., CVPR 2023): patch-based intuitive prototypes.

trunk → optional 1×1 conv "add-on" to P channels → softmax over channels at every location (the
prototype *presence maps*, the similarity maps of the contract) → max-pool over locations →
pooled presence (B, P) → non-negative linear layer. At inference pooled presences below
``threshold`` (0.1) are ignored. Training scores ``log(1 + out ** m)`` with the layer's fixed
``normalization_multiplier`` m (see :mod:`protoexplain.training.pipnet_losses`).

Parameter names: ``features`` (trunk), ``add_on``, ``classification`` (``weight`` (C, P),
``normalization_multiplier``, optional ``bias``) — the original's ``_net``, ``_add_on`` and
``_classification`` one to one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from protoexplain.errors import UserError
from protoexplain.models.backbones import create_backbone
from protoexplain.models.ppnet import IMAGENET_MEAN, IMAGENET_STD
from protoexplain.models.protocol import (
    Box,
    SpecProperties,
    StoredSpec,
    check_normalisation,
    grid_box,
    probe_grid,
    strongest_class,
)

PIPNET_TRUNKS = ("resnet18", "resnet50", "convnext_tiny_26", "convnext_tiny_13", "small_cnn")
# ConvNeXt: stride-2 convolutions with more input channels than this become stride 1
_CONVNEXT_THRESHOLD = {"convnext_tiny_26": 100, "convnext_tiny_13": 300}


@dataclass
class PIPNetSpec(StoredSpec):
    """Everything needed to rebuild a PIP-Net (stored in ``model.json``).

    ``num_prototypes`` 0 = one prototype per trunk channel, no add-on convolution (the published
    default); otherwise a 1×1 convolution maps the trunk's channels to that many prototypes.
    """

    backbone: str
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    num_prototypes: int = 0
    bias: bool = False
    threshold: float = 0.1
    image_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        self.mean, self.std = tuple(self.mean), tuple(self.std)
        if self.backbone not in PIPNET_TRUNKS:
            raise UserError(f"unknown PIP-Net trunk {self.backbone!r}; choose one of: "
                            f"{', '.join(PIPNET_TRUNKS)}")
        for name in ("num_classes", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"PIP-Net {name} must be a whole number ≥ 1, got {value!r}")
        if isinstance(self.num_prototypes, bool) or not isinstance(self.num_prototypes, int) \
                or self.num_prototypes < 0:
            raise UserError(f"PIP-Net num_prototypes must be 0 (one per trunk channel) or more, "
                            f"got {self.num_prototypes!r}")
        if not self.class_names:
            self.class_names = [str(i) for i in range(self.num_classes)]
        if len(self.class_names) != self.num_classes:
            raise UserError(f"{len(self.class_names)} class names given for {self.num_classes} "
                            "classes")
        if not math.isfinite(self.threshold) or not 0 <= self.threshold < 1:
            raise UserError(f"PIP-Net threshold must be in [0, 1), got {self.threshold!r}")
        check_normalisation(self.mean, self.std)


class PIPOutput(NamedTuple):
    """One training forward pass: presence maps (B, P, H', W'), pooled (B, P), raw scores (B, C)."""

    presence: torch.Tensor
    pooled: torch.Tensor
    scores: torch.Tensor


class NonNegativeLinear(nn.Module):
    """``x @ relu(weight).T (+ bias)``; ``normalization_multiplier`` is the exponent of the
    training scores (fixed at 2 as published)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.normalization_multiplier = nn.Parameter(torch.ones(1), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.normal_(self.weight, mean=1.0, std=0.1)
        nn.init.constant_(self.normalization_multiplier, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, torch.relu(self.weight), self.bias)


def _stride_one(convolutions: list[nn.Conv2d]) -> None:
    for conv in convolutions:
        conv.stride = tuple(max(1, s // 2) for s in conv.stride)


def pipnet_trunk(name: str, weights: str | None = None) -> nn.Module:
    """The trunk ``name`` with PIP-Net's stride changes for a finer grid (weights as
    :func:`~protoexplain.models.backbones.create_backbone` takes them).

    ResNet: the third and fourth stages keep their resolution (output stride 8, 28×28 at 224 px).
    ConvNeXt-tiny: stride-2 downsampling layers with more than 100 (``_26``: 26×26) or 300
    (``_13``: 13×13) input channels become stride 1. ``small_cnn`` is unchanged (÷16).
    """
    if name.startswith("convnext_tiny_"):
        trunk = create_backbone("convnext_tiny", weights)
        _stride_one([m for m in trunk.modules() if isinstance(m, nn.Conv2d)
                     and m.stride[0] == 2 and m.in_channels > _CONVNEXT_THRESHOLD[name]])
        return trunk
    trunk = create_backbone(name, weights)
    if name.startswith("resnet"):
        for stage in (trunk.layer3, trunk.layer4):
            _stride_one([m for m in stage[0].modules()
                         if isinstance(m, nn.Conv2d) and m.stride[0] == 2])
    return trunk


def _last_conv_channels(trunk: nn.Module) -> int:
    return [m for m in trunk.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


class PIPNet(SpecProperties, nn.Module):
    """PIP-Net. Inputs are normalised image batches (B, 3, H, W)."""

    def __init__(self, spec: PIPNetSpec, backbone_weights: str | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.features = pipnet_trunk(spec.backbone, backbone_weights)
        channels = _last_conv_channels(self.features)
        prototypes = spec.num_prototypes or channels
        self.add_on = nn.Sequential()
        if spec.num_prototypes:
            conv = nn.Conv2d(channels, prototypes, kernel_size=1)
            nn.init.xavier_normal_(conv.weight)
            nn.init.zeros_(conv.bias)
            self.add_on.append(conv)
        self.classification = NonNegativeLinear(prototypes, spec.num_classes, spec.bias)
        self._grids: dict[int, tuple[int, int]] = {}

    @property
    def num_prototypes(self) -> int:
        return int(self.classification.weight.shape[1])

    def class_weights(self) -> torch.Tensor:
        """(P, C) the last layer's effective (non-negative) weights."""
        return torch.relu(self.classification.weight.detach()).T

    @property
    def main_class(self) -> torch.Tensor:
        return strongest_class(self.class_weights())

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, P, H', W') prototype presence: softmax over prototypes at every location."""
        return torch.softmax(self.add_on(self.features(x)), dim=1)

    def forward_details(self, x: torch.Tensor) -> PIPOutput:
        """Presence maps, pooled presence and the un-thresholded scores (training)."""
        presence = self.similarity_maps(x)
        pooled = presence.flatten(2).amax(dim=2)
        return PIPOutput(presence, pooled, self.classification(pooled))

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Inference logits of pooled presences: those below the threshold count as 0."""
        kept = torch.where(pooled < self.spec.threshold, torch.zeros_like(pooled), pooled)
        return self.classification(kept)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.forward_details(x).pooled)

    def linear_evidence(self, similarities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``relu(W)`` and the pooled presences with those below the threshold set to 0 (the
        bias, when there is one, is not part of the evidence)."""
        kept = torch.where(similarities < self.spec.threshold, 0.0, similarities)
        return torch.relu(self.classification.weight.detach()), kept

    def cell_box(self, cell_h: int, cell_w: int, image_size: int) -> Box:
        """The cell of the presence map upsampled to ``image_size``."""
        if image_size not in self._grids:
            self._grids[image_size] = probe_grid(self, image_size)
        return grid_box(cell_h, cell_w, self._grids[image_size], image_size)
