"""Strength calibration: give every modification the same mean perceptual change.

The paper's strengths are on unrelated scales (a hue turn, a blend factor, a warp amplitude in
pixels), so its importance scores partly measure how large each perturbation is. Calibration
chooses, per modification, the strength whose **mean CIEDE2000 colour difference** (ΔE2000,
scikit-image ``deltaE_ciede2000``, per pixel between the image and its modified version, averaged
over pixels and then over a sample of the user's images) equals one target. The strength is
found by bisection between the modification's identity strength and its extreme; a target the
extreme cannot reach is reported with ``reached = False`` and the extreme strength.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from PIL import Image
from skimage import color

from protoexplain.data import ImageFolderDataset
from protoexplain.errors import UserError
from protoexplain.explain.config import ExplainConfig
from protoexplain.explain.modifications import Modification, get_modification, list_modifications

METRIC = "CIEDE2000"
DEFAULT_TARGET = 5.0


@dataclass(frozen=True)
class StrengthRange:
    """Strengths from ``identity`` (no change) toward ``extreme`` (the largest change searched)."""

    identity: float
    extreme: float

    def at(self, t: float) -> float:
        """The strength a fraction ``t`` in [0, 1] of the way from identity to extreme."""
        return self.identity + t * (self.extreme - self.identity)


#: Search ranges by modification name; ``(family, name)`` entries override them.
RANGES: dict[str | tuple[str, str], StrengthRange] = {
    "hue": StrengthRange(0.0, 0.5),
    "saturation": StrengthRange(1.0, 0.0),
    "contrast": StrengthRange(1.0, 0.0),
    "brightness": StrengthRange(1.0, 0.0),
    "shape": StrengthRange(0.0, 16.0),
    ("paper", "texture"): StrengthRange(0.0, 100.0),
    ("paper-lightness", "texture"): StrengthRange(0.0, 100.0),
    ("perceptual", "texture"): StrengthRange(0.0, 2.0),
}


@dataclass(frozen=True)
class Calibrated:
    """The calibrated strength of one modification and the mean ΔE it gives."""

    family: str
    name: str
    strength: float
    delta_e: float
    target: float
    reached: bool


@dataclass(frozen=True)
class Calibration:
    """Calibrated strengths of a family (record it with the explanation's outputs)."""

    metric: str
    target: float
    n_images: int
    results: tuple[Calibrated, ...]

    def strengths(self) -> dict[str, list[float]]:
        """``{name: [strength]}``, as the explanation's ``strengths`` argument takes them."""
        return {r.name: [r.strength] for r in self.results}

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {
            "metric": self.metric,
            "target": self.target,
            "n_images": self.n_images,
            "modifications": [asdict(r) for r in self.results],
        }


def strength_range(modification: Modification) -> StrengthRange:
    """The search range of ``modification``; a :class:`UserError` when none is known."""
    found = RANGES.get((modification.family, modification.name), RANGES.get(modification.name))
    if found is None:
        raise UserError(
            f"no calibration range for modification {modification.name!r} of family "
            f"{modification.family!r}; add one to protoexplain.explain.families.calibration.RANGES"
        )
    return found


def to_lab(image: Image.Image | np.ndarray) -> np.ndarray:
    """CIELAB of an RGB image (PIL or uint8 array), as ΔE2000 compares it."""
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    return color.rgb2lab(pixels.astype(np.float64) / 255.0)


def pixel_delta_e(reference: np.ndarray, image: Image.Image | np.ndarray) -> float:
    """Mean over pixels of ΔE2000 between the CIELAB ``reference`` and ``image``."""
    return float(color.deltaE_ciede2000(reference, to_lab(image)).mean())


def mean_delta_e(
    images: Sequence[Image.Image], modification: Modification, strength: float,
    reference: Sequence[np.ndarray] | None = None,
) -> float:
    """Mean over ``images`` of the per-pixel mean ΔE2000 between an image and its modification."""
    labs = reference if reference is not None else [to_lab(im) for im in images]
    values = [
        pixel_delta_e(lab, modification.apply(image, strength))
        for image, lab in zip(images, labs, strict=True)
    ]
    return float(np.mean(values))


def bisect_strength(
    measure: Callable[[float], float], span: StrengthRange, target: float,
    iterations: int = 14, tolerance: float = 0.02,
) -> tuple[float, float, bool]:
    """Bisect a fraction t of ``span`` until ``measure(span.at(t))`` (a mean ΔE2000 growing with
    t) is within ``tolerance·target`` of ``target`` or ``iterations`` halvings are spent.

    Returns ``(strength, its ΔE, reached)``; a target beyond the extreme gives the extreme.
    """
    high_value = measure(span.extreme)
    if high_value < target:
        return span.extreme, high_value, False
    low, high = 0.0, 1.0
    best_t, best_value = 1.0, high_value
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        value = measure(span.at(middle))
        if abs(value - target) < abs(best_value - target):
            best_t, best_value = middle, value
        if abs(value - target) <= tolerance * target:
            break
        if value < target:
            low = middle
        else:
            high = middle
    return span.at(best_t), best_value, abs(best_value - target) <= tolerance * target


def calibrate_one(
    images: Sequence[Image.Image], modification: Modification, target: float,
    iterations: int = 14, tolerance: float = 0.02,
) -> Calibrated:
    """Bisect the strength of ``modification`` until its mean ΔE2000 is within
    ``tolerance·target`` of ``target`` (or ``iterations`` halvings are spent)."""
    labs = [to_lab(im) for im in images]

    def measure(strength: float) -> float:
        return mean_delta_e(images, modification, strength, labs)

    strength, value, reached = bisect_strength(
        measure, strength_range(modification), target, iterations, tolerance
    )
    return Calibrated(modification.family, modification.name, strength, value, target, reached)


def calibrate_strengths(
    images: Sequence[Image.Image], family: str, target: float = DEFAULT_TARGET,
    names: Sequence[str] | None = None, tolerance: float = 0.02,
) -> Calibration:
    """Calibrate every modification of ``family`` (or only ``names``) on ``images`` to ``target``
    mean ΔE2000."""
    if not images:
        raise UserError("calibration needs at least one image; give a non-empty image sample")
    if target <= 0:
        raise UserError(f"calibration target must be a positive ΔE2000, got {target}")
    chosen = (
        [get_modification(n, family) for n in names] if names else list_modifications(family)
    )
    results = tuple(calibrate_one(images, m, target, tolerance=tolerance) for m in chosen)
    return Calibration(METRIC, float(target), len(images), results)


def sample_images(dataset: ImageFolderDataset, count: int = 32, seed: int = 0) -> list[Image.Image]:
    """``count`` images (native resolution, RGB) drawn without replacement from a dataset with
    ``load_image(i)`` and ``len()`` (e.g. :class:`protoexplain.data.ImageFolderDataset`)."""
    total = len(dataset)
    if total == 0:
        raise UserError("calibration needs images, but the data set is empty")
    chosen = np.random.default_rng(seed).choice(total, min(count, total), replace=False)
    return [dataset.load_image(int(i)).convert("RGB") for i in sorted(chosen)]


def calibrated_config(config: ExplainConfig, dataset: ImageFolderDataset,
                      image_size: int) -> tuple[ExplainConfig, dict]:
    """``config`` with equal-ΔE strengths (its ``calibrate`` ΔE, measured on a sample of
    ``dataset`` as the modifications will receive it, see ``modify_at``) and the calibration
    record."""
    from protoexplain.explain.inputs import modification_input

    prepare = modification_input(config.modify_at, image_size)
    sample = sample_images(dataset, config.calibration_images, config.seed)
    calibration = calibrate_strengths(
        [prepare(image) for image in sample], config.family, config.calibrate,
        names=config.modifications or None,
    )
    calibrated = replace(config, strengths=calibration.strengths(), calibrate=0.0)
    return calibrated, calibration.to_dict()
