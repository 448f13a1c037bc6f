"""Intervention doses matched by mean ΔE2000, as the calibrated modifications are.

For every intervention and target, the dose whose mean CIEDE2000 difference between a generated
image and its re-rendering (per pixel, averaged over pixels and then over a calibration subset)
equals the target, by the same bisection as the modifications' calibration
(:func:`protoexplain.explain.families.calibration.bisect_strength`). The targets are fixed before
any agreement is looked at. ``texture`` has no dose (any dose above 0 makes a part plain): it is
applied at its extreme and its ΔE is recorded with ``reached`` false unless it happens to match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from protoexplain.benchmark.interventional import SampleRef, render
from protoexplain.data.interventions import get_intervention
from protoexplain.explain.families.calibration import (
    StrengthRange,
    bisect_strength,
    pixel_delta_e,
    to_lab,
)

#: Characteristics whose intervention is all or nothing: applied at the extreme, not matched.
ALL_OR_NOTHING = ("texture",)


@dataclass(frozen=True)
class MatchedDose:
    """The dose of one intervention at one ΔE2000 target and the mean ΔE it gives."""

    intervention: str
    target: float
    dose: float
    delta_e: float
    reached: bool

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return asdict(self)


def match_dose(
    samples: Sequence[SampleRef], name: str, target: float, tolerance: float = 0.02
) -> MatchedDose:
    """The dose of intervention ``name`` whose mean ΔE2000 over ``samples`` is ``target``."""
    intervention = get_intervention(name)
    labs = [to_lab(render(sample)) for sample in samples]

    def measure(dose: float) -> float:
        values = [pixel_delta_e(lab, render(sample, {name: dose}))
                  for sample, lab in zip(samples, labs, strict=True)]
        return float(np.mean(values))

    span = StrengthRange(intervention.identity, intervention.extreme)
    if intervention.characteristic in ALL_OR_NOTHING:
        value = measure(span.extreme)
        return MatchedDose(name, target, span.extreme, value,
                           abs(value - target) <= tolerance * target)
    dose, value, reached = bisect_strength(measure, span, target, tolerance=tolerance)
    return MatchedDose(name, target, dose, value, reached)


def match_doses(
    samples: Sequence[SampleRef], names: Sequence[str], targets: Sequence[float]
) -> list[MatchedDose]:
    """:func:`match_dose` for every intervention of ``names`` at every target."""
    return [match_dose(samples, name, target) for name in names for target in targets]
