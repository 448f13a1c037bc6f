"""Per-image deltas and the running sums behind global scores, intervals and significance.

For each image x, prototype j and setting m (modification at one strength): the latent cell of
highest similarity on x (= minimum distance), s = similarity there, s_m = similarity of the
modified image at that same cell, Δ = s − s_m. Global score = Σ_x Δ·s / Σ_x s.

Memory does not grow with the number of images: we keep float64 sums per (setting, prototype)
— for Δ its sum and M2 = Σ (Δ − mean)², merged batch by batch with Chan et al.'s pairwise update
so that the variance behind the t-test does not cancel when Δ barely varies — plus a **Poisson
bootstrap** with a fixed number R of replicates: every image gets R weights
~ Poisson(1) drawn from a generator seeded by (seed, image index), and each replicate keeps its own
weighted sums. This equals resampling images with replacement in the limit, needs no stored rows,
and gives the same numbers whatever the batching, sharding or resumption (up to float64 rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from protoexplain.explain.stats import batch_moments, merge_moments
from protoexplain.models.protocol import PrototypeModel


@torch.inference_mode()
def score_batch(model: PrototypeModel, versions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1 + K, 3, H, W) normalised versions → similarities s (B, P), deltas Δ (B, K, P).

    One forward pass per version; the cell is chosen on the original (index 0).
    """
    batch, count = versions.shape[:2]
    maps = model.similarity_maps(versions.flatten(0, 1))
    maps = maps.unflatten(0, (batch, count)).flatten(3)  # (B, V, P, H'W')
    cell = maps[:, 0].argmax(dim=-1)  # (B, P)
    index = cell[:, None, :, None].expand(batch, count, cell.shape[1], 1)
    at_cell = maps.gather(3, index).squeeze(3)  # (B, V, P)
    similarity = at_cell[:, 0]
    return similarity, similarity[:, None] - at_cell[:, 1:]


def poisson_weights(indices: np.ndarray, replicates: int, seed: int) -> np.ndarray:
    """(B, R) bootstrap weights, a pure function of (seed, image index)."""
    rows = [np.random.default_rng([seed, int(i)]).poisson(1.0, replicates) for i in indices]
    return np.asarray(rows, dtype=np.float64).reshape(len(indices), replicates)


@dataclass
class ScoreSums:
    """Running float64 sums over images, for K settings and P prototypes, R bootstrap replicates."""

    weighted: np.ndarray  # (K, P) Σ Δ·s
    similarity: np.ndarray  # (P,) Σ s
    delta: np.ndarray  # (K, P) Σ Δ
    delta_m2: np.ndarray  # (K, P) Σ (Δ − mean Δ)²
    boot_weighted: np.ndarray  # (R, K, P)
    boot_similarity: np.ndarray  # (R, P)
    n_images: np.ndarray  # (1,) count

    @classmethod
    def zeros(cls, settings: int, prototypes: int, replicates: int) -> ScoreSums:
        """Empty sums."""
        k, p, r = settings, prototypes, replicates
        return cls(
            np.zeros((k, p)),
            np.zeros(p),
            np.zeros((k, p)),
            np.zeros((k, p)),
            np.zeros((r, k, p)),
            np.zeros((r, p)),
            np.zeros(1, dtype=np.int64),
        )

    def add(self, similarity: np.ndarray, delta: np.ndarray, weights: np.ndarray) -> None:
        """Add a batch: ``similarity`` (B, P), ``delta`` (B, K, P), bootstrap ``weights`` (B, R)."""
        s = similarity.astype(np.float64)
        d = delta.astype(np.float64)
        ds = d * s[:, None, :]
        self.weighted += ds.sum(axis=0)
        self.similarity += s.sum(axis=0)
        total, m2 = batch_moments(d)
        self._add_moments(len(s), total, m2)
        if weights.shape[1]:
            flat = ds.reshape(len(ds), -1)
            self.boot_weighted += (weights.T @ flat).reshape(self.boot_weighted.shape)
            self.boot_similarity += weights.T @ s
        self.n_images += len(s)

    def merge(self, other: ScoreSums) -> None:
        """Add another shard's sums (exact up to float64 rounding)."""
        self._add_moments(other.count, other.delta, other.delta_m2)
        for name in self.__dataclass_fields__:
            if name not in ("delta", "delta_m2", "n_images"):
                getattr(self, name).__iadd__(getattr(other, name))
        self.n_images += other.n_images

    def _add_moments(self, count: int, total: np.ndarray, m2: np.ndarray) -> None:
        """Fold a group of ``count`` images (Σ Δ, M2) into Σ Δ and M2; the count is added by the
        caller."""
        self.delta_m2 = merge_moments(self.count, self.delta, self.delta_m2, count, total, m2)
        self.delta = self.delta + total

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """For saving with safetensors."""
        return {
            name: torch.from_numpy(np.ascontiguousarray(getattr(self, name)))
            for name in self.__dataclass_fields__
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> ScoreSums:
        """Inverse of :meth:`to_tensors`."""
        return cls(**{name: tensors[name].numpy().copy() for name in cls.__dataclass_fields__})

    @property
    def count(self) -> int:
        """Number of images added."""
        return int(self.n_images[0])

    def weighted_delta(self) -> np.ndarray:
        """(K, P) global importance Σ Δ·s / Σ s."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.weighted / self.similarity[None, :]

    def bootstrap_interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """(K, P) lower and upper percentile bounds of the bootstrap replicates (NaN without)."""
        if not self.boot_weighted.shape[0]:
            nan = np.full(self.weighted.shape, np.nan)
            return nan, nan.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = self.boot_weighted / self.boot_similarity[:, None, :]
        tail = (1 - level) / 2 * 100
        low, high = np.nanpercentile(ratios, [tail, 100 - tail], axis=0)
        return low, high
