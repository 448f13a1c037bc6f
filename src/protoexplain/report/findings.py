"""Findings the report flags: "misleading" prototypes and redundant prototype pairs.

Misleading rule. Each characteristic has one simple statistic of the prototype crop (resized to
64×64) that measures how much of it the crop *shows*:

* hue — hue concentration: |mean of s·e^{iθ}| over pixels (θ hue angle, s HSV saturation);
* saturation — mean HSV saturation;
* brightness — mean grey level (a brightness factor changes bright pixels most);
* contrast — RMS contrast: standard deviation of the grey levels;
* shape — edge density: fraction of Canny edge pixels (thresholds 50/150 on 8-bit grey);
* texture — texture energy: mean |Laplacian| (3×3) of the grey image.

Each statistic is turned into a percentile rank among the model's prototypes. A prototype is a
*misleading candidate* when its dominant characteristic (largest global score, which must be
positive) ranks in the bottom quartile (percentile ≤ 0.25) of its crop statistic *and* the crop's
highest-ranked statistic is a different characteristic: the model relies on something the patch
shows little of. Characteristics without a statistic are never flagged.

Redundancy rule. Two prototypes are a redundant pair when their squared latent distance is at most
``latent_ratio`` (default 0.1) × the median distance over all pairs *and* the cosine similarity of
their explanation vectors (global scores over every characteristic and strength) is at least
``explanation_cosine`` (default 0.9). Without explanation scores only the latent test applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from safetensors import safe_open

CROP_SIDE = 64
QUARTILE = 0.25


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _hue_concentration(rgb: np.ndarray) -> float:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    angle = np.deg2rad(hsv[..., 0])
    return float(np.abs(np.mean(hsv[..., 1] * np.exp(1j * angle))))


def _edge_density(rgb: np.ndarray) -> float:
    grey8 = np.uint8(np.clip(np.round(_grey(rgb) * 255), 0, 255))
    return float(np.mean(cv2.Canny(grey8, 50, 150) > 0))


CROP_STATISTICS: dict[str, tuple[str, Callable[[np.ndarray], float]]] = {
    "hue": ("hue concentration", _hue_concentration),
    "saturation": (
        "mean saturation", lambda rgb: float(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1].mean())
    ),
    "brightness": ("mean grey level", lambda rgb: float(_grey(rgb).mean())),
    "contrast": ("RMS contrast", lambda rgb: float(_grey(rgb).std())),
    "shape": ("edge density", _edge_density),
    "texture": (
        "texture energy", lambda rgb: float(np.abs(cv2.Laplacian(_grey(rgb), cv2.CV_32F)).mean())
    ),
}


def crop_statistics(rgb: np.ndarray) -> dict[str, float]:
    """Every characteristic's crop statistic for an RGB image (uint8 or float in [0, 1])."""
    image = np.asarray(rgb)
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    side = (CROP_SIDE, CROP_SIDE)
    image = cv2.resize(image.astype(np.float32), side, interpolation=cv2.INTER_AREA)
    return {name: fn(image) for name, (_, fn) in CROP_STATISTICS.items()}


def misleading(statistics: pd.DataFrame, dominant: pd.DataFrame) -> pd.DataFrame:
    """Apply the misleading rule.

    ``statistics``: prototypes × characteristics (crop statistics); ``dominant``: columns
    ``dominant`` and ``dominant_score`` per prototype. Returns per prototype ``shown`` (the crop's
    highest-ranked characteristic), ``dominant_rank`` (percentile of the dominant one) and
    ``misleading`` (bool).
    """
    ranks = statistics.rank(pct=True)
    shown = ranks.idxmax(axis=1)
    rows = []
    for prototype, row in dominant.iterrows():
        name, score = row["dominant"], row["dominant_score"]
        rank = ranks.at[prototype, name] if (
            prototype in ranks.index and name in ranks.columns
        ) else np.nan
        flagged = bool(
            len(ranks) >= 4 and np.isfinite(rank) and score > 0 and rank <= QUARTILE
            and shown.get(prototype) != name
        )
        rows.append((prototype, shown.get(prototype), rank, flagged))
    columns = ["prototype", "shown", "dominant_rank", "misleading"]
    return pd.DataFrame(rows, columns=columns).set_index("prototype")


def prototype_vectors(model_dir: Path) -> np.ndarray:
    """(P, D) prototype vectors read from ``model.safetensors`` (no model is built).

    ProtoPNet: ``prototype_vectors``. PIP-Net: the add-on convolution's rows; without an add-on
    each prototype is one trunk channel, so the vectors are the unit vectors (never redundant).
    """
    with safe_open(str(model_dir / "model.safetensors"), framework="np") as handle:
        names = set(handle.keys())
        if "prototype_vectors" in names:
            vectors = handle.get_tensor("prototype_vectors")
        elif "add_on.0.weight" in names:
            vectors = handle.get_tensor("add_on.0.weight")
        else:
            vectors = np.eye(handle.get_slice("classification.weight").get_shape()[1])
    return vectors.reshape(vectors.shape[0], -1).astype(np.float64)


@dataclass
class RedundantPair:
    """Two prototypes that look alike to the model and are explained alike."""

    first: int
    second: int
    latent_distance: float
    relative_distance: float
    explanation_cosine: float | None


def redundant_pairs(
    vectors: np.ndarray,
    explanations: pd.DataFrame | None = None,
    *,
    latent_ratio: float = 0.1,
    explanation_cosine: float = 0.9,
    max_pairs: int = 200,
) -> list[RedundantPair]:
    """Apply the redundancy rule; pairs sorted by latent distance, at most ``max_pairs``.

    ``vectors`` row j is prototype j; ``explanations`` (optional) is indexed by prototype number.
    """
    count = len(vectors)
    if count < 2:
        return []
    sq = (vectors**2).sum(axis=1)
    distance = np.maximum(sq[:, None] - 2 * vectors @ vectors.T + sq[None, :], 0.0)
    upper = np.triu_indices(count, k=1)
    median = float(np.median(distance[upper]))
    scale = median if median > 0 else 1.0
    close = np.flatnonzero(distance[upper] <= latent_ratio * scale)
    order = close[np.argsort(distance[upper][close], kind="stable")]
    pairs = []
    for index in order:
        i, j = int(upper[0][index]), int(upper[1][index])
        cosine = None
        if explanations is not None and i in explanations.index and j in explanations.index:
            a = explanations.loc[i].to_numpy(float)
            b = explanations.loc[j].to_numpy(float)
            norm = np.linalg.norm(a) * np.linalg.norm(b)
            cosine = float(a @ b / norm) if norm > 0 else 0.0
            if cosine < explanation_cosine:
                continue
        d = float(distance[i, j])
        pairs.append(RedundantPair(i, j, d, d / scale, cosine))
        if len(pairs) >= max_pairs:
            break
    return pairs
