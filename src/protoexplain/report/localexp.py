"""Local explanations for a sample of images: which rows of ``local_scores.parquet`` to show,
where each prototype's patch lies on the image and what the model predicts (found again with the
model: prediction, the prototype's last-layer weight to the predicted class and its contribution
to that logit).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from protoexplain.analysis.local import prepare_image
from protoexplain.models import PrototypeModel
from protoexplain.report.scores import is_primary
from protoexplain.training.push import high_activation_boxes

BATCH_ROWS = 1 << 20
Box = tuple[int, int, int, int]


@dataclass
class Prediction:
    """What the model makes of one image and how one prototype weighs in: ``similarity`` is the
    prototype's largest similarity on the image, ``contribution`` = similarity × ``weight``
    (the last-layer weight from the prototype to the predicted class), part of ``logit``."""

    predicted: str
    correct: bool | None
    probability: float
    logit: float
    similarity: float
    weight: float
    contribution: float


@dataclass
class LocalExample:
    """One (image, prototype) pair with its local importances at the primary strengths."""

    image: str
    image_class: str
    prototype: int
    similarity: float
    importances: dict[str, float]
    pixels: np.ndarray | None = None
    box: Box | None = None
    source: Path | None = None
    prediction: Prediction | None = None


def sample_images(local_path: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` distinct images of the local table, drawn at random (fixed seed), sorted."""
    parquet = pq.ParquetFile(local_path)
    seen: set[str] = set()
    for batch in parquet.iter_batches(columns=["image"], batch_size=BATCH_ROWS):
        seen.update(str(v) for v in pc.unique(batch.column(0)).to_pylist())
    names = sorted(seen)
    if len(names) <= count:
        return names
    picked = np.random.default_rng(seed).choice(len(names), size=count, replace=False)
    return sorted(names[i] for i in picked)


def select_examples(
    local_path: Path, images: list[str], primary: dict[str, float], top_k: int
) -> list[LocalExample]:
    """For each image, its ``top_k`` most similar prototypes and their local importances."""
    parquet = pq.ParquetFile(local_path)
    columns = [c for c in ("image", "class", "prototype", "modification", "strength",
                           "orig_similarity", "delta") if c in parquet.schema_arrow.names]
    wanted = pa.array(images)
    parts = [
        batch.filter(pc.is_in(batch.column("image"), value_set=wanted)).to_pandas()
        for batch in parquet.iter_batches(columns=columns, batch_size=BATCH_ROWS)
    ]
    rows = pd.concat(parts) if parts else pd.DataFrame(columns=columns)
    rows = rows[is_primary(rows, primary)]
    examples = []
    for image, group in rows.groupby("image", sort=True):
        similarity = group.groupby("prototype")["orig_similarity"].first()
        best = similarity.sort_values(ascending=False, kind="stable").index[:top_k]
        image_class = str(group["class"].iloc[0]) if "class" in group else ""
        for prototype in best:
            deltas = group[group["prototype"] == prototype]
            examples.append(
                LocalExample(
                    image=str(image), image_class=image_class, prototype=int(prototype),
                    similarity=float(similarity[prototype]),
                    importances=dict(zip(deltas["modification"].astype(str),
                                         deltas["delta"].astype(float), strict=True)),
                )
            )
    return examples


def resolve_image(name: str, data_root: Path | None) -> Path | None:
    """The file an ``image`` entry names: absolute, or relative to the explained data folder."""
    for candidate in (Path(name), (data_root / name) if data_root else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


@torch.inference_mode()
def locate_patches(
    model: PrototypeModel, examples: list[LocalExample], data_root: Path | None,
    device: str | torch.device = "cpu",
) -> None:
    """Fill ``pixels`` (model-size RGB), ``box`` (high-activation box), ``source`` (the image
    file) and ``prediction`` of each example in place.

    Examples whose image cannot be found keep ``None`` (the panel then says "not available").
    """
    model = model.to(device).eval()
    spec = model.input_spec
    size = spec.image_size
    by_image: dict[str, list[LocalExample]] = {}
    for example in examples:
        by_image.setdefault(example.image, []).append(example)
    for name, group in by_image.items():
        path = resolve_image(name, data_root)
        if path is None:
            continue
        pixels = prepare_image(path, size)
        batch = spec.normalize(pixels.unsqueeze(0).to(device))
        maps = model.similarity_maps(batch)[0].float().cpu()
        logits = model(batch)[0].float().cpu()
        weights, values = model.linear_evidence(maps.amax(dim=(1, 2)))
        predicted = int(logits.argmax())
        probability = float(torch.softmax(logits, dim=0)[predicted])
        group = [ex for ex in group if 0 <= ex.prototype < maps.shape[0]]
        boxes = high_activation_boxes(maps[[ex.prototype for ex in group]], size).tolist()
        image = np.uint8(np.round(pixels.permute(1, 2, 0).numpy() * 255))
        label = model.class_names[predicted]
        for example, box in zip(group, boxes, strict=True):
            j = example.prototype
            weight = float(weights[predicted, j])
            value = float(values[j])
            example.pixels, example.source = image, path
            example.box = tuple(int(v) for v in box)
            example.prediction = Prediction(
                predicted=label,
                correct=(label == example.image_class) if example.image_class else None,
                probability=probability, logit=float(logits[predicted]),
                similarity=value, weight=weight, contribution=value * weight,
            )


def data_root_of(explain_json: dict, base: Path) -> Path | None:
    """The data folder ``explain.json`` names (absolute or relative to ``base``), if it exists."""
    for key in ("data", "data_dir", "data_root"):
        value = explain_json.get(key)
        if isinstance(value, str | os.PathLike):
            for candidate in (Path(value), base / value):
                if candidate.is_dir():
                    return candidate
    return None
