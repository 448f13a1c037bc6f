"""Factors of the synthetic data set and the presets that tie classes to them.

An image shows a "bird" made of parts (:data:`PARTS`) on a mottled, coloured background. Each
part has a hue, saturation (chroma), value (brightness), shape, texture, contrast (how much the
texture's pattern darkens the base colour: 0 invisible, 1 black) and pattern period. A preset
fixes some (part, factor) values per class; every other factor is drawn at random per image from
:data:`RANDOM_RANGES`, independently of the class.

The background (:data:`BACKGROUNDS`) is ``plain`` — dull (saturation 0.10–0.35) and unpatterned,
so saturation and pattern tell the bird from its surroundings — or ``like-parts``: saturation,
value, a texture pattern, its contrast and period drawn from the parts' own ranges, so that no free
factor separates figure from ground. The bird's factors are the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from protoexplain.choices import BACKGROUNDS
from protoexplain.errors import UserError

PARTS = ("body", "head", "wing", "tail")
SHAPES = ("ellipse", "rectangle", "triangle", "diamond")
TEXTURES = ("plain", "stripes", "dots", "checks")
CATEGORICAL = {"shape": SHAPES, "texture": TEXTURES}
PART_FACTORS = ("hue", "saturation", "value", "shape", "texture", "contrast", "period")

#: Ranges of the factors a class leaves free (uniform draws).
RANDOM_RANGES = {
    "hue": (0.0, 1.0),
    "saturation": (0.55, 0.95),
    "value": (0.6, 0.95),
    "contrast": (0.4, 0.8),
    "period": (0.16, 0.22),
}
#: Half-width of the jitter around a class-defined continuous value (hue wraps around).
JITTER = {"hue": 0.02, "saturation": 0.04, "value": 0.04, "contrast": 0.04, "period": 0.01}


@dataclass(frozen=True)
class ClassSpec:
    """One class: a name and the (part, factor) values it fixes."""

    name: str
    fixed: dict[tuple[str, str], float | str]


@dataclass(frozen=True)
class Preset:
    """A named set of classes; ``allowed`` restricts free categorical factors (e.g. textures)."""

    name: str
    description: str
    factor: str | None
    classes: tuple[ClassSpec, ...]
    allowed: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _isolated(
    name: str, factor: str, values: list, labels: list[str], description: str, **kw
) -> Preset:
    classes = tuple(
        ClassSpec(f"c{i}_{label}", {(part, factor): value for part in PARTS})
        for i, (value, label) in enumerate(zip(values, labels, strict=True))
    )
    return Preset(name, description, factor, classes, **kw)


def _mixed() -> Preset:
    hues = ((0.0, "red"), (0.25, "chartreuse"), (0.5, "cyan"), (0.75, "violet"))
    classes = []
    for head_hue, hue_name in hues:
        for body_shape, shape_name in (("ellipse", "round"), ("triangle", "pointed")):
            name = f"c{len(classes)}_{hue_name}-head_{shape_name}-body"
            fixed = {("head", "hue"): head_hue, ("body", "shape"): body_shape}
            classes.append(ClassSpec(name, fixed))
    return Preset(
        "mixed",
        "8 classes = head hue (red/chartreuse/cyan/violet) × body shape (round/pointed); "
        "everything else random. Classes with one head hue differ only in the body's shape, "
        "classes with one body shape only in the head's hue",
        None,
        tuple(classes),
    )


_PATTERNED = tuple(t for t in TEXTURES if t != "plain")
PRESETS: dict[str, Preset] = {
    "mixed": _mixed(),
    "hue": _isolated(
        "hue", "hue", [0.0, 0.25, 0.5, 0.75], ["red", "chartreuse", "cyan", "violet"],
        "4 classes differing only in the hue of every part",
    ),
    "shape": _isolated(
        "shape", "shape", list(SHAPES), list(SHAPES),
        "4 classes differing only in the shape of every part (all shapes have equal area)",
    ),
    "texture": _isolated(
        "texture", "texture", list(TEXTURES), list(TEXTURES),
        "4 classes differing only in the texture pattern of every part",
    ),
    "contrast": _isolated(
        "contrast", "contrast", [0.1, 0.35, 0.6, 0.85],
        ["contrast10", "contrast35", "contrast60", "contrast85"],
        "4 classes differing only in how strongly every part's pattern stands out (never plain)",
        allowed={"texture": _PATTERNED},
    ),
    "saturation": _isolated(
        "saturation", "saturation", [0.1, 0.37, 0.63, 0.9],
        ["saturation10", "saturation37", "saturation63", "saturation90"],
        "4 classes differing only in the chroma of every part's colour",
    ),
    "brightness": _isolated(
        "brightness", "value", [0.35, 0.55, 0.75, 0.95],
        ["value35", "value55", "value75", "value95"],
        "4 classes differing only in the brightness (HSV value) of every part",
    ),
}


def list_presets() -> list[str]:
    """Names of the synthetic presets."""
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a :class:`UserError` listing the choices otherwise."""
    if name not in PRESETS:
        raise UserError(f"unknown synthetic preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def check_background(background: str) -> None:
    """A :class:`UserError` unless ``background`` is one of :data:`BACKGROUNDS`."""
    if background not in BACKGROUNDS:
        choices = ", ".join(BACKGROUNDS)
        raise UserError(f"unknown background {background!r}; choose one of {choices}")


def sample_factors(
    preset: Preset, class_index: int, rng: np.random.Generator, background: str = "plain"
) -> dict:
    """Draw every factor of one image of class ``class_index`` (a flat dict of plain values).

    The draws for free factors happen in the same order whatever the class, so they are
    independent of it. A ``like-parts`` background draws its extra factors after the bird's, so
    the bird is the same as with a ``plain`` one.
    """
    check_background(background)
    spec = preset.classes[class_index]
    factors: dict[str, float | str] = {
        "cx": rng.uniform(0.44, 0.56),
        "cy": rng.uniform(0.44, 0.56),
        "scale": rng.uniform(0.85, 1.05),
        "rotation": rng.uniform(-45.0, 45.0),
        "bg_hue": rng.uniform(0.0, 1.0),
        "bg_saturation": rng.uniform(0.1, 0.35),
        "bg_value": rng.uniform(0.35, 0.75),
    }
    for part in PARTS:
        for factor in PART_FACTORS:
            if factor in CATEGORICAL:
                choices = preset.allowed.get(factor, CATEGORICAL[factor])
                value: float | str = choices[int(rng.integers(0, len(choices)))]
            else:
                value = rng.uniform(*RANDOM_RANGES[factor])
            jitter = rng.uniform(-1.0, 1.0)
            fixed = spec.fixed.get((part, factor))
            if fixed is not None:
                value = fixed
                if factor in JITTER:
                    value = float(fixed) + jitter * JITTER[factor]
                    value = value % 1.0 if factor == "hue" else value
            factors[f"{part}_{factor}"] = float(value) if factor not in CATEGORICAL else value
    factors.update(_background_factors(background, rng))
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in factors.items()}


def _background_factors(background: str, rng: np.random.Generator) -> dict[str, float | str]:
    """The background's pattern (none for ``plain``) and, for ``like-parts``, its saturation and
    value redrawn from the parts' ranges."""
    if background == "plain":
        return {"bg_texture": "plain", "bg_contrast": 0.0, "bg_period": 0.0, "bg_angle": 0.0,
                "bg_phase_u": 0.0, "bg_phase_v": 0.0}
    return {
        "bg_saturation": rng.uniform(*RANDOM_RANGES["saturation"]),
        "bg_value": rng.uniform(*RANDOM_RANGES["value"]),
        "bg_texture": TEXTURES[int(rng.integers(0, len(TEXTURES)))],
        "bg_contrast": rng.uniform(*RANDOM_RANGES["contrast"]),
        "bg_period": rng.uniform(*RANDOM_RANGES["period"]),
        "bg_angle": rng.uniform(0.0, 180.0),
        "bg_phase_u": rng.uniform(0.0, 1.0),
        "bg_phase_v": rng.uniform(0.0, 1.0),
    }
