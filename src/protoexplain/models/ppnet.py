"""The ProtoPNet model: trunk → add-on layers → prototype distances → similarities → last layer.

Parameter names follow the original code (``features``, ``add_on_layers``, ``prototype_vectors``,
``last_layer``) so that its checkpoints map one to one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from protoexplain.errors import UserError
from protoexplain.models.backbones import backbone_info, create_backbone
from protoexplain.models.protocol import Box, SpecProperties, StoredSpec, check_normalisation
from protoexplain.models.receptive_field import ReceptiveField, compute_receptive_field

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelSpec(StoredSpec):
    """Everything needed to rebuild a ProtoPNet (stored in ``model.json``)."""

    backbone: str
    num_classes: int
    prototype_shape: tuple[int, int, int, int] = (2000, 128, 1, 1)
    class_names: list[str] = field(default_factory=list)
    prototype_class: list[int] = field(default_factory=list)
    add_on: str = "bottleneck"
    activation: str = "log"
    epsilon: float = 1e-4
    image_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        self.prototype_shape = tuple(int(v) for v in self.prototype_shape)
        self.mean, self.std = tuple(self.mean), tuple(self.std)
        if isinstance(self.image_size, float) and self.image_size.is_integer():
            self.image_size = int(self.image_size)
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) \
                or self.num_classes < 1:
            raise UserError(f"the number of classes must be at least 1, got {self.num_classes!r}")
        check_normalisation(self.mean, self.std)
        num_prototypes = self.prototype_shape[0]
        if not self.class_names:
            self.class_names = [str(i) for i in range(self.num_classes)]
        if len(self.class_names) != self.num_classes:
            raise UserError(
                f"{len(self.class_names)} class names given for {self.num_classes} classes"
            )
        if not self.prototype_class:
            if num_prototypes % self.num_classes:
                raise UserError(
                    f"{num_prototypes} prototypes cannot be split evenly over "
                    f"{self.num_classes} classes; choose a multiple of the class count"
                )
            per_class = num_prototypes // self.num_classes
            self.prototype_class = [j // per_class for j in range(num_prototypes)]
        if len(self.prototype_class) != num_prototypes:
            raise UserError("prototype_class must give one class per prototype")
        if not all(0 <= c < self.num_classes for c in self.prototype_class):
            raise UserError(f"prototype_class must name classes 0 to {self.num_classes - 1}")
        if self.add_on not in ("bottleneck", "regular"):
            raise UserError(f"unknown add-on type {self.add_on!r}; use bottleneck or regular")
        if self.activation not in ("log", "linear"):
            raise UserError(f"unknown activation {self.activation!r}; use log or linear")
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) \
                or self.image_size < 1:
            raise UserError(f"image size must be a whole number of pixels, got {self.image_size!r}")
        if isinstance(self.epsilon, bool) or not isinstance(self.epsilon, (int, float)) \
                or not math.isfinite(self.epsilon) or self.epsilon <= 0:
            raise UserError(f"epsilon must be a positive number, got {self.epsilon!r}")


class ProtoOutput(NamedTuple):
    """Everything one forward pass computes."""

    logits: torch.Tensor
    min_distances: torch.Tensor
    distance_maps: torch.Tensor


def build_add_on_layers(kind: str, in_channels: int, depth: int) -> nn.Sequential:
    """``regular``: 1×1 C→D, ReLU, 1×1 D→D, Sigmoid. ``bottleneck``: halve until D (original)."""
    if kind == "regular":
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, depth, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(depth, depth, kernel_size=1),
            nn.Sigmoid(),
        ]
    else:
        layers = []
        current = in_channels
        while current > depth or not layers:
            out = max(depth, current // 2)
            layers += [nn.Conv2d(current, out, kernel_size=1), nn.ReLU()]
            layers += [nn.Conv2d(out, out, kernel_size=1)]
            layers += [nn.ReLU() if out > depth else nn.Sigmoid()]
            current = current // 2
    for module in layers:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(module.bias, 0)
    return nn.Sequential(*layers)


class ProtoPNet(SpecProperties, nn.Module):
    """ProtoPNet (Chen et al., 2019). Inputs are normalised image batches (B, 3, H, W)."""

    def __init__(self, spec: ModelSpec, backbone_weights: str | None = None) -> None:
        super().__init__()
        self.spec = spec
        num_prototypes, depth, proto_h, proto_w = spec.prototype_shape
        self.features = create_backbone(spec.backbone, backbone_weights)
        channels = backbone_info(spec.backbone).out_channels
        self.add_on_layers = build_add_on_layers(spec.add_on, channels, depth)
        self.prototype_vectors = nn.Parameter(torch.rand(num_prototypes, depth, proto_h, proto_w))
        self.last_layer = nn.Linear(num_prototypes, spec.num_classes, bias=False)
        self.register_buffer(
            "prototype_class", torch.tensor(spec.prototype_class, dtype=torch.long)
        )
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self.set_class_connections()

    @property
    def num_prototypes(self) -> int:
        return self.prototype_vectors.shape[0]

    @property
    def main_class(self) -> torch.Tensor:
        """Each prototype's own class (``prototype_class``)."""
        return self.prototype_class

    def class_weights(self) -> torch.Tensor:
        """(P, C) one-hot of ``prototype_class``: one class per prototype."""
        return F.one_hot(self.prototype_class, self.num_classes).to(torch.float32)

    def set_class_connections(self, incorrect_strength: float = -0.5) -> None:
        """Reset the last layer to +1 (own class) / ``incorrect_strength`` (other classes)."""
        identity = F.one_hot(self.prototype_class, self.num_classes).T.to(torch.float32)
        with torch.no_grad():
            self.last_layer.weight.copy_(identity + incorrect_strength * (1 - identity))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise a [0, 1] image batch with the model's mean and std."""
        return (images - self.mean) / self.std

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """Add-on features (B, D, H', W') of a normalised batch."""
        return self.add_on_layers(self.features(x))

    def latent_distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared L2 distance of every latent patch to every prototype: (B, P, H', W')."""
        prototypes = self.prototype_vectors.to(z.dtype)
        ones = torch.ones_like(prototypes)
        z_sq = F.conv2d(z * z, weight=ones)
        p_sq = (prototypes * prototypes).sum(dim=(1, 2, 3)).view(-1, 1, 1)
        cross = F.conv2d(z, weight=prototypes)
        return F.relu(z_sq - 2 * cross + p_sq)

    def distance_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, P, H', W') squared distances for a normalised batch."""
        return self.latent_distances(self.latent(x))

    def distance_to_similarity(self, distances: torch.Tensor) -> torch.Tensor:
        """``log((d + 1) / (d + ε))`` (``log``) or ``−d`` (``linear``)."""
        if self.spec.activation == "log":
            return torch.log((distances + 1) / (distances + self.spec.epsilon))
        return -distances

    def similarity_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, P, H', W') similarities for a normalised batch."""
        return self.distance_to_similarity(self.distance_maps(x))

    def forward_details(self, x: torch.Tensor) -> ProtoOutput:
        """Logits, per-prototype minimum distances (B, P) and distance maps."""
        distances = self.distance_maps(x)
        min_distances = distances.flatten(2).amin(dim=2)
        activations = self.distance_to_similarity(min_distances)
        logits = self.last_layer(activations.to(self.last_layer.weight.dtype))
        return ProtoOutput(logits, min_distances, distances)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_details(x).logits

    def receptive_field(self, image_size: int | None = None) -> ReceptiveField:
        """Receptive field of a latent cell for square inputs (default: the model's size)."""
        size = image_size or self.spec.image_size
        return compute_receptive_field(self.features, size, self.spec.prototype_shape[2])

    def linear_evidence(self, similarities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last layer's signed weights and the similarities themselves."""
        return self.last_layer.weight.detach(), similarities

    def cell_box(self, cell_h: int, cell_w: int, image_size: int) -> Box:
        """The receptive field of latent cell (h, w) on an ``image_size`` input."""
        return self.receptive_field(image_size).box(cell_h, cell_w, image_size)

    def select_prototypes(self, keep: torch.Tensor | list[int]) -> None:
        """Keep only the prototypes ``keep`` (in that order), with their last-layer columns."""
        keep = torch.as_tensor(keep, dtype=torch.long, device=self.prototype_vectors.device)
        if keep.numel() == 0:
            raise UserError("at least one prototype must remain")
        weight = self.last_layer.weight.detach()[:, keep].clone()
        self.prototype_vectors = nn.Parameter(self.prototype_vectors.detach()[keep].clone())
        self.prototype_class = self.prototype_class[keep].clone()
        self.last_layer = nn.Linear(keep.numel(), self.num_classes, bias=False).to(weight.device)
        with torch.no_grad():
            self.last_layer.weight.copy_(weight)
        self.spec.prototype_shape = (keep.numel(), *self.spec.prototype_shape[1:])
        self.spec.prototype_class = self.prototype_class.tolist()


def require_protopnet(model: nn.Module, command: str) -> ProtoPNet:
    """``model`` itself when it is a ProtoPNet; otherwise a one-line error naming ``command``."""
    if not isinstance(model, ProtoPNet):
        raise UserError(
            f"{command} works on ProtoPNet models only; this model is a {type(model).__name__} "
            "(explain, evaluate and report work on every architecture)"
        )
    return model
