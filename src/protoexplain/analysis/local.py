"""Local analysis of one image: "this looks like that" (method §5).

The prediction, the most activated prototypes with their similarity, class, last-layer weight and
contribution (similarity × weight), and for the top classes their prototypes sorted by
contribution. ``contributions`` (C, P) sums over prototypes to the logit of every class.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from protoexplain.analysis.heatmap import Box, boxes, upsample
from protoexplain.data import load_rgb
from protoexplain.models import PrototypeModel, model_device
from protoexplain.models.nearness import nearness_maps, nearness_to_similarity


@dataclass
class PrototypeEvidence:
    """One of the most activated prototypes on the image (``rank`` 1 = most activated)."""

    rank: int
    prototype: int
    prototype_class: int
    class_name: str
    similarity: float
    distance: float
    weight: float
    contribution: float
    cell_h: int
    cell_w: int
    rf_box: Box
    ha_box: Box
    importances: dict[str, float] | None = None


@dataclass
class ClassContribution:
    """A prototype's part of one class logit."""

    prototype: int
    similarity: float
    weight: float
    contribution: float


@dataclass
class ClassEvidence:
    """A top class: its own prototypes sorted by contribution, plus everything else's share.

    ``sum(p.contribution for p in prototypes) + other_contribution == logit``.
    """

    class_index: int
    class_name: str
    logit: float
    probability: float
    prototypes: list[ClassContribution]
    other_contribution: float


@dataclass
class ImageAnalysis:
    """Everything :func:`analyze_image` finds; arrays are numpy, indices are prototype numbers."""

    image: np.ndarray
    class_names: list[str]
    logits: np.ndarray
    probabilities: np.ndarray
    predicted: int
    similarities: np.ndarray
    distances: np.ndarray
    similarity_maps: np.ndarray
    weights: np.ndarray
    top_prototypes: list[PrototypeEvidence]
    top_classes: list[ClassEvidence]
    source: str = ""
    explanation: dict = field(default_factory=dict)
    layer_inputs: np.ndarray | None = None  # what the last layer multiplies; None = similarities

    @property
    def contributions(self) -> np.ndarray:
        """(C, P) last-layer input × weight (ProtoPNet: the similarity; PIP-Net: the similarity,
        0 below the threshold); row c sums to logit c."""
        inputs = self.similarities if self.layer_inputs is None else self.layer_inputs
        return self.weights * inputs[None, :]

    def activation_map(self, prototype: int) -> np.ndarray:
        """Similarity map of ``prototype`` upsampled (bicubic) to the image."""
        return upsample(self.similarity_maps[prototype][None], self.image.shape[0])[0]

    def to_dict(self) -> dict:
        """JSON-ready numbers and boxes (the raw maps go to ``similarity_maps.npy``)."""
        return {
            "image": self.source,
            "predicted": self.predicted,
            "predicted_class": self.class_names[self.predicted],
            "classes": [
                {"class_index": c, "class_name": name, "logit": float(self.logits[c]),
                 "probability": float(self.probabilities[c])}
                for c, name in enumerate(self.class_names)
            ],
            "top_prototypes": [asdict(p) for p in self.top_prototypes],
            "top_classes": [asdict(c) for c in self.top_classes],
            "explanation": self.explanation,
            "similarity_maps": {
                "file": "similarity_maps.npy",
                "shape": list(self.similarity_maps.shape),
                "meaning": "similarity of every latent cell to every prototype (P, H', W')",
            },
        }


def prepare_image(image: Image.Image | str | os.PathLike, size: int) -> torch.Tensor:
    """(3, size, size) tensor in [0, 1]: the model's plain resize, no normalisation."""
    if not isinstance(image, Image.Image):
        image = load_rgb(image)
    return TF.to_tensor(TF.resize(image.convert("RGB"), [size, size]))


@torch.inference_mode()
def analyze_image(
    model: PrototypeModel,
    image: Image.Image | str | os.PathLike,
    top_k: int = 10,
    top_classes: int = 3,
) -> ImageAnalysis:
    """Analyse one image (PIL image or path) with ``model`` on the model's device.

    ``distance`` is ProtoPNet's squared distance, −similarity for other architectures; the box
    ``rf_box`` is :meth:`~protoexplain.models.PrototypeModel.cell_box` (ProtoPNet: receptive field).
    """
    device = model_device(model)
    size = model.input_spec.image_size
    pixels = prepare_image(image, size)
    x = model.input_spec.normalize(pixels.unsqueeze(0).to(device))
    distance_maps = nearness_maps(model, x)[0]
    min_distances = distance_maps.flatten(1).amin(dim=1)
    similarity_maps_t = nearness_to_similarity(model, distance_maps)  # exactly, same distances
    best = nearness_to_similarity(model, min_distances)
    output_logits = model(x)[0].float()
    weight_t, inputs_t = model.linear_evidence(best)
    similarity_maps = similarity_maps_t.float().cpu().numpy()
    distances = min_distances.float().cpu().numpy()
    similarities = best.float().cpu().numpy()
    inputs = inputs_t.float().cpu().numpy()
    logits = output_logits.cpu().numpy()
    probabilities = torch.softmax(output_logits, dim=0).cpu().numpy()
    weights = weight_t.float().cpu().numpy()
    prototype_class = model.main_class.cpu().numpy()
    predicted = int(logits.argmax())
    best_cell = distance_maps.flatten(1).argmin(dim=1).cpu().numpy()
    map_width = distance_maps.shape[2]

    evidence = []
    order = np.argsort(-similarities, kind="stable")[: min(top_k, len(similarities))]
    ha_boxes = boxes(similarity_maps[order], size)
    for rank, j in enumerate(order.tolist(), start=1):
        cell_h, cell_w = divmod(int(best_cell[j]), map_width)
        evidence.append(
            PrototypeEvidence(
                rank=rank,
                prototype=j,
                prototype_class=int(prototype_class[j]),
                class_name=model.class_names[int(prototype_class[j])],
                similarity=float(similarities[j]),
                distance=float(distances[j]),
                weight=float(weights[predicted, j]),
                contribution=float(inputs[j] * weights[predicted, j]),
                cell_h=cell_h,
                cell_w=cell_w,
                rf_box=model.cell_box(cell_h, cell_w, size),
                ha_box=tuple(int(v) for v in ha_boxes[rank - 1]),
            )
        )
    return ImageAnalysis(
        image=pixels.permute(1, 2, 0).numpy(),
        class_names=list(model.class_names),
        logits=logits,
        probabilities=probabilities,
        predicted=predicted,
        similarities=similarities,
        distances=distances,
        similarity_maps=similarity_maps,
        weights=weights,
        top_prototypes=evidence,
        top_classes=_class_evidence(
            logits, probabilities, weights, similarities, inputs, prototype_class,
            model.class_names, top_classes,
        ),
        source=str(image) if not isinstance(image, Image.Image) else "",
        layer_inputs=inputs,
    )


def _class_evidence(
    logits: np.ndarray,
    probabilities: np.ndarray,
    weights: np.ndarray,
    similarities: np.ndarray,
    inputs: np.ndarray,
    prototype_class: np.ndarray,
    class_names: list[str],
    count: int,
) -> list[ClassEvidence]:
    contributions = weights * inputs[None, :]
    result = []
    for c in np.argsort(-logits, kind="stable")[:count].tolist():
        own = np.flatnonzero(prototype_class == c)
        own = own[np.argsort(-contributions[c, own], kind="stable")]
        parts = [
            ClassContribution(
                prototype=int(j),
                similarity=float(similarities[j]),
                weight=float(weights[c, j]),
                contribution=float(contributions[c, j]),
            )
            for j in own
        ]
        other = np.delete(contributions[c], own)
        result.append(
            ClassEvidence(
                class_index=c,
                class_name=class_names[c],
                logit=float(logits[c]),
                probability=float(probabilities[c]),
                prototypes=parts,
                other_contribution=float(other.sum()),
            )
        )
    return result
