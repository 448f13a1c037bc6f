"""Draw one synthetic image from its factors with NumPy and OpenCV (fast, deterministic)."""

from __future__ import annotations

import colorsys
import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from protoexplain.data.synth_factors import PARTS

#: Part layout in object units (1 = half the object size): centre (x, y) and half-axes (a, b).
LAYOUT = {
    "body": ((0.0, 0.0), (0.50, 0.32)),
    "head": ((0.58, -0.28), (0.22, 0.22)),
    "wing": ((-0.08, -0.06), (0.30, 0.17)),
    "tail": ((-0.62, 0.06), (0.20, 0.11)),
}
DRAW_ORDER = ("tail", "body", "head", "wing")
_EQUAL_AREA = {"rectangle": math.sqrt(math.pi / 4), "triangle": math.sqrt(math.pi / 2)}
_EQUAL_AREA["diamond"] = _EQUAL_AREA["triangle"]
_SHIFT = 4  # sub-pixel bits for cv2.fillPoly


@dataclass
class Rendered:
    """An RGB image (H, W, 3 uint8), its part-label mask (0 = background, i+1 = PARTS[i]) and
    part boxes ``{part: (x0, y0, x1, y1)}`` (exclusive ends, -1 when the part is off-image)."""

    image: np.ndarray
    mask: np.ndarray
    boxes: dict[str, tuple[int, int, int, int]]


def shape_outline(shape: str, a: float, b: float) -> np.ndarray:
    """Polygon (N, 2) of ``shape`` with half-axes a, b, centred on 0; all shapes have area πab."""
    if shape == "ellipse":
        t = np.linspace(0.0, 2.0 * math.pi, 48, endpoint=False)
        return np.stack([a * np.cos(t), b * np.sin(t)], axis=1)
    k = _EQUAL_AREA[shape]
    a, b = a * k, b * k
    if shape == "rectangle":
        return np.array([[a, b], [-a, b], [-a, -b], [a, -b]])
    if shape == "triangle":
        return np.array([[a, 0.0], [-a, b], [-a, -b]])
    if shape == "diamond":
        return np.array([[a, 0.0], [0.0, b], [-a, 0.0], [0.0, -b]])
    raise ValueError(f"unknown shape {shape!r}")


def _start_at_axis(outline: np.ndarray) -> np.ndarray:
    """``outline`` (counter-clockwise, around 0) starting where it crosses the positive x axis."""
    nxt = np.roll(outline, -1, axis=0)
    for i, (p, q) in enumerate(zip(outline, nxt, strict=True)):
        if p[1] <= 0.0 < q[1] or (p[1] == 0.0 and p[0] > 0):
            t = -p[1] / (q[1] - p[1]) if q[1] != p[1] else 0.0
            point = p + t * (q - p)
            if point[0] > 0:
                return np.vstack([point, outline[i + 1 :], outline[: i + 1]])
    raise ValueError("outline does not cross the positive x axis")


def _resample(outline: np.ndarray, count: int) -> np.ndarray:
    """``count`` points spread evenly by arc length along the closed ``outline``."""
    closed = np.vstack([outline, outline[:1]])
    length = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    at = np.linspace(0.0, length[-1], count, endpoint=False)
    return np.stack([np.interp(at, length, closed[:, k]) for k in range(2)], axis=1)


def polygon_area(outline: np.ndarray) -> float:
    """Area of a simple polygon (shoelace formula; positive for counter-clockwise)."""
    x, y = outline[:, 0], outline[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def morph_outline(
    source: str, target: str, t: float, a: float, b: float, count: int = 192
) -> np.ndarray:
    """Outline ``t`` of the way from shape ``source`` to ``target`` (half-axes a, b), area πab.

    Both outlines are resampled to ``count`` points by arc length from their crossing of the
    positive x axis, interpolated point by point and scaled about 0 to keep the area. ``t = 0``
    and ``t = 1`` give the two shapes' own outlines.
    """
    if t <= 0.0:
        return shape_outline(source, a, b)
    if t >= 1.0:
        return shape_outline(target, a, b)
    start = _resample(_start_at_axis(shape_outline(source, a, b)), count)
    end = _resample(_start_at_axis(shape_outline(target, a, b)), count)
    mixed = (1.0 - t) * start + t * end
    return mixed * math.sqrt(math.pi * a * b / polygon_area(mixed))


def part_outline(factors: dict, part: str, a: float, b: float) -> np.ndarray:
    """The outline of ``part``: its shape, or a morph when ``factors`` holds ``{part}_morph`` =
    (target shape, t) (set by :mod:`.interventions`; never drawn by the generator)."""
    morph = factors.get(f"{part}_morph")
    if morph is None:
        return shape_outline(factors[f"{part}_shape"], a, b)
    target, t = morph
    return morph_outline(factors[f"{part}_shape"], target, float(t), a, b)


def pattern_mask(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean pattern on pattern coordinates (u, v) in periods: where the pattern darkens."""
    if texture == "plain":
        return np.zeros(u.shape, dtype=bool)
    fu, fv = u % 1.0, v % 1.0
    if texture == "stripes":
        return fu < 0.5
    if texture == "checks":
        return (fu < 0.5) ^ (fv < 0.5)
    if texture == "dots":
        return (fu - 0.5) ** 2 + (fv - 0.5) ** 2 < 0.09
    raise ValueError(f"unknown texture {texture!r}")


@functools.lru_cache(maxsize=8)
def _coordinates(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column index grids (float32) of a size × size image, read-only."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def _background(f: dict, size: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency mottled background around (bg_hue, bg_saturation, bg_value), darkened by
    the ``bg_texture`` pattern (none when plain)."""
    noise = rng.standard_normal((5, 5, 2)).astype(np.float32)
    smooth = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    hue = (f["bg_hue"] * 360.0 + 15.0 * smooth[:, :, 0]) % 360.0
    sat = np.full((size, size), f["bg_saturation"], dtype=np.float32)
    val = np.clip(f["bg_value"] + 0.12 * smooth[:, :, 1], 0.0, 1.0)
    if f["bg_texture"] != "plain":
        val = val * np.where(_background_pattern(f, size), 1.0 - f["bg_contrast"], 1.0)
    hsv = np.stack([hue, sat, val], axis=2).astype(np.float32)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _background_pattern(f: dict, size: int) -> np.ndarray:
    """Where the background's pattern darkens: the parts' patterns, over the whole image, with
    the period in units of the object's radius (as for a part) and its own angle and phase."""
    rows, cols = _coordinates(size)
    period = f["bg_period"] * f["scale"] * size / 2.0
    angle = math.radians(f["bg_angle"])
    u = (cols * math.cos(angle) + rows * math.sin(angle)) / period + f["bg_phase_u"]
    v = (rows * math.cos(angle) - cols * math.sin(angle)) / period + f["bg_phase_v"]
    return pattern_mask(f["bg_texture"], u, v)


def render(factors: dict, size: int, rng: np.random.Generator) -> Rendered:
    """Draw the image described by ``factors``; ``rng`` draws the nuisance (background noise,
    pattern phases)."""
    image = _background(factors, size, rng)
    mask = np.zeros((size, size), dtype=np.uint8)
    radius = factors["scale"] * size / 2.0
    cx, cy = factors["cx"] * size, factors["cy"] * size
    theta = math.radians(factors["rotation"])
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    phases = rng.uniform(0.0, 1.0, size=(len(PARTS), 2))
    boxes: dict[str, tuple[int, int, int, int]] = {}
    for part in DRAW_ORDER:
        index = PARTS.index(part)
        (px, py), (a, b) = LAYOUT[part]
        outline = part_outline(factors, part, a, b) + np.array([px, py])
        points = outline @ rot.T * radius + (cx, cy)
        x0 = max(math.floor(points[:, 0].min()) - 1, 0)
        y0 = max(math.floor(points[:, 1].min()) - 1, 0)
        x1 = min(math.ceil(points[:, 0].max()) + 2, size)
        y1 = min(math.ceil(points[:, 1].max()) + 2, size)
        if x1 <= x0 or y1 <= y0:
            boxes[part] = (-1, -1, -1, -1)
            continue
        cover = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        fixed = np.round((points - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(cover, [fixed], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
        inside = cover >= 128
        if not inside.any():
            boxes[part] = (-1, -1, -1, -1)
            continue
        rows, cols = np.nonzero(inside)
        boxes[part] = (x0 + int(cols.min()), y0 + int(rows.min()),
                       x0 + int(cols.max()) + 1, y0 + int(rows.max()) + 1)
        # pattern coordinates: object frame, in periods, with a random phase per part
        dx = _coordinates(size)[1][y0:y1, x0:x1] - np.float32(cx)
        dy = _coordinates(size)[0][y0:y1, x0:x1] - np.float32(cy)
        period = factors[f"{part}_period"] * radius
        u = (dx * rot[0, 0] + dy * rot[1, 0]) / period + phases[index, 0]
        v = (dx * rot[0, 1] + dy * rot[1, 1]) / period + phases[index, 1]
        dark = pattern_mask(factors[f"{part}_texture"], u, v)
        hue, sat = factors[f"{part}_hue"], factors[f"{part}_saturation"]
        value = factors[f"{part}_value"]
        base = _hsv(hue, sat, value)
        shade = _hsv(hue, sat, value * (1.0 - factors[f"{part}_contrast"]))
        colour = np.where(dark[:, :, None], shade, base)
        alpha = (cover.astype(np.float32) / 255.0)[:, :, None]
        region = image[y0:y1, x0:x1]
        image[y0:y1, x0:x1] = region + alpha * (colour - region)
        mask[y0:y1, x0:x1][inside] = index + 1
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return Rendered(pixels, mask, boxes)
