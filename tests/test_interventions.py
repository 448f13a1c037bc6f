"""Interventions re-render a synthetic image from its seed with chosen factors changed."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from protoexplain.data.interventions import INTERVENTIONS, get_intervention, rerender
from protoexplain.data.synth import render_sample
from protoexplain.data.synth_factors import PARTS, SHAPES
from protoexplain.data.synth_render import morph_outline, polygon_area, shape_outline
from protoexplain.errors import UserError


@pytest.mark.parametrize(("preset", "seed", "background"), [
    ("mixed", 0, "plain"), ("shape", 3, "plain"), ("texture", 7, "like-parts"),
])
def test_rerender_without_change_is_byte_identical(preset, seed, background):
    for class_index, index in ((0, 0), (1, 5), (3, 2)):
        factors, drawn = render_sample(preset, class_index, "test", index, seed, 64, background)
        again, redrawn = rerender(preset, class_index, "test", index, seed, 64, background, {})
        assert again == factors
        assert redrawn.image.tobytes() == drawn.image.tobytes()
        assert redrawn.mask.tobytes() == drawn.mask.tobytes()


def _near(mask: np.ndarray, pixels: int = 2) -> np.ndarray:
    """``mask`` grown by ``pixels`` (the anti-aliased rim of a part's edge)."""
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


@pytest.mark.parametrize("name", ["head.hue", "wing.saturation", "tail.brightness",
                                  "body.texture", "body.shape->triangle", "head.shape->diamond"])
def test_part_intervention_changes_only_that_part(name):
    intervention = get_intervention(name)
    part = intervention.parts[0]
    label = PARTS.index(part) + 1
    changed_any = False
    for class_index, index in ((0, 1), (2, 4), (5, 0)):
        _, drawn = render_sample("mixed", class_index, "test", index, 1, 96)
        dose = intervention.extreme if intervention.characteristic != "shape" else 1.0
        _, redrawn = rerender("mixed", class_index, "test", index, 1, 96,
                              interventions={name: dose})
        changed = (drawn.image != redrawn.image).any(axis=2)
        allowed = _near((drawn.mask == label) | (redrawn.mask == label))
        assert not (changed & ~allowed).any(), name
        changed_any |= bool(changed.any())
    assert changed_any, f"{name} changed no pixel"


def test_global_hue_turns_the_background_too():
    _, drawn = render_sample("hue", 0, "test", 0, 0, 64)
    _, redrawn = rerender("hue", 0, "test", 0, 0, 64, interventions={"hue": 0.5})
    background = drawn.mask == 0
    assert (drawn.image[background] != redrawn.image[background]).any()
    assert (drawn.mask == redrawn.mask).all()


def test_texture_to_plain_removes_the_pattern():
    factors, drawn = render_sample("texture", 1, "test", 0, 0, 96)  # class 1: stripes everywhere
    assert all(factors[f"{part}_texture"] == "stripes" for part in PARTS)
    changed, redrawn = rerender("texture", 1, "test", 0, 0, 96, interventions={"texture": 1.0})
    assert all(changed[f"{part}_texture"] == "plain" for part in PARTS)
    body = (drawn.mask == PARTS.index("body") + 1) & ~_near(drawn.mask != 1)
    # a plain part is one colour inside (its rim aside); the striped one had two
    assert len(np.unique(redrawn.image[body], axis=0)) == 1
    assert len(np.unique(drawn.image[body], axis=0)) >= 2


@pytest.mark.parametrize(("source", "target"), [
    (s, t) for s in SHAPES for t in SHAPES if s != t
])
def test_morph_keeps_the_area_and_ends_at_the_target(source, target):
    a, b = 0.5, 0.32
    for t in (0.1, 0.5, 0.9):
        assert polygon_area(morph_outline(source, target, t, a, b)) == pytest.approx(
            math.pi * a * b, rel=1e-9)
    end = shape_outline(target, a, b)
    assert np.array_equal(morph_outline(source, target, 1.0, a, b), end)
    # continuity: just before the end, every point lies on the target's boundary up to the
    # resampling (192 points on an outline of length < 3; chords of the 48-gon ellipse), well
    # under 0.5 % of the smaller half-axis (0.1 px for a 128 px image)
    near_end = morph_outline(source, target, 1.0 - 1e-6, a, b).astype(np.float32)
    contour = end.astype(np.float32).reshape(-1, 1, 2)
    distance = [abs(cv2.pointPolygonTest(contour, (float(x), float(y)), True))
                for x, y in near_end]
    assert max(distance) < 0.005 * b


def test_registry_and_dose_are_validated():
    assert {"hue", "head.hue", "body.shape->triangle", "shape->ellipse"} <= set(INTERVENTIONS)
    with pytest.raises(UserError, match="unknown intervention"):
        get_intervention("beak.hue")
    with pytest.raises(UserError, match="outside"):
        rerender("mixed", 0, "test", 0, 0, 64, interventions={"saturation": 1.5})
