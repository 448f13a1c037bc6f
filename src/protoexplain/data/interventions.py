"""Interventions: re-render a synthetic image from its seed with some factors changed.

An intervention ``do(f)`` changes one generating factor of the bird (and, for the global ones,
its background counterpart) and draws the image again from the same seed, so that the nuisance
(position, background noise, pattern phases) is the same. Without a change the re-rendering is
byte-identical to the generated image (the factors come from the seed, not from the rounded
``factors.csv``).

Names: a characteristic (``hue``, ``saturation``, ``brightness``, ``contrast``, ``texture``,
``shape->TARGET``) acts on every part and the background; ``PART.characteristic`` (e.g.
``head.hue``, ``body.shape->triangle``) on one part only. Doses run from an identity value (no
change) to an extreme one, as a modification's strength does:

- ``hue``: turn of the hue circle (0 … 0.5);
- ``saturation``, ``brightness``, ``contrast``: factor on saturation, HSV value, pattern contrast
  (1 … 0);
- ``texture``: 0 keeps the pattern, any dose above 0 makes the part plain;
- ``shape->TARGET``: fraction of a continuous, area-keeping outline morph toward TARGET (0 … 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from protoexplain.data.synth import render_sample
from protoexplain.data.synth_factors import PARTS, SHAPES
from protoexplain.data.synth_render import Rendered
from protoexplain.errors import UserError

#: Characteristic → the part factor it changes and the background factor that mirrors it.
FACTOR_OF = {
    "hue": ("hue", "bg_hue"),
    "saturation": ("saturation", "bg_saturation"),
    "brightness": ("value", "bg_value"),
    "contrast": ("contrast", "bg_contrast"),
    "texture": ("texture", "bg_texture"),
    "shape": ("shape", None),
}


@dataclass(frozen=True)
class Intervention:
    """One registered intervention: the characteristic it mirrors, the parts it changes (all
    parts for a global one, which also changes the background) and its dose range."""

    name: str
    characteristic: str
    parts: tuple[str, ...]
    background: bool
    identity: float
    extreme: float
    target: str | None = None

    def change(self, dose: float) -> Callable[[dict], dict]:
        """The factor change at ``dose`` (for :func:`~protoexplain.data.synth.render_sample`)."""
        low, high = sorted((self.identity, self.extreme))
        if not low <= dose <= high:
            raise UserError(
                f"dose {dose} of intervention {self.name!r} is outside [{low}, {high}]"
            )

        def apply(factors: dict) -> dict:
            factor, counterpart = FACTOR_OF[self.characteristic]
            keys = [f"{part}_{factor}" for part in self.parts]
            if self.background and counterpart is not None:
                keys.append(counterpart)
            for key in keys:
                factors[key] = _changed(self.characteristic, factors[key], dose)
            if self.characteristic == "shape" and dose > 0:
                for part in self.parts:
                    factors[f"{part}_morph"] = (self.target, dose)
            return factors

        return apply


def _changed(characteristic: str, value, dose: float):
    if characteristic == "hue":
        return (value + dose) % 1.0
    if characteristic in ("saturation", "brightness", "contrast"):
        return value * dose
    if characteristic == "texture":
        return "plain" if dose > 0 else value
    return value  # shape: drawn through the morph


_RANGES = {"hue": (0.0, 0.5), "saturation": (1.0, 0.0), "brightness": (1.0, 0.0),
           "contrast": (1.0, 0.0), "texture": (0.0, 1.0), "shape": (0.0, 1.0)}


def _registry() -> dict[str, Intervention]:
    found: dict[str, Intervention] = {}
    scopes = [("", PARTS, True), *((f"{part}.", (part,), False) for part in PARTS)]
    for prefix, parts, background in scopes:
        for characteristic, (identity, extreme) in _RANGES.items():
            targets = SHAPES if characteristic == "shape" else (None,)
            for target in targets:
                suffix = f"->{target}" if target else ""
                name = f"{prefix}{characteristic}{suffix}"
                found[name] = Intervention(name, characteristic, parts, background, identity,
                                           extreme, target)
    return found


INTERVENTIONS: dict[str, Intervention] = _registry()


def get_intervention(name: str) -> Intervention:
    """The intervention called ``name``; a :class:`UserError` naming the forms otherwise."""
    if name not in INTERVENTIONS:
        raise UserError(
            f"unknown intervention {name!r}; use a characteristic ({', '.join(_RANGES)}, shape "
            f"as shape->{'|'.join(SHAPES)}), optionally after a part and a dot "
            f"({', '.join(PARTS)}), e.g. head.hue or body.shape->triangle"
        )
    return INTERVENTIONS[name]


def rerender(
    preset: str, class_index: int, split: str, index: int, seed: int, size: int,
    background: str = "plain", interventions: dict[str, float] | None = None,
) -> tuple[dict, Rendered]:
    """Re-render one generated image with ``interventions`` (name → dose) applied in order."""
    changes = [get_intervention(name).change(dose) for name, dose in (interventions or {}).items()]

    def change(factors: dict) -> dict:
        for apply in changes:
            factors = apply(factors)
        return factors

    return render_sample(preset, class_index, split, index, seed, size, background, change)
