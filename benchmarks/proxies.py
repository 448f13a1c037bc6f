"""Better proxies? Candidate modifications of one characteristic against the reference.

Usage: python benchmarks/proxies.py CORRECTNESS_DIR [OUT_JSON] [--characteristic shape|contrast]
[--device cpu] (default OUT_JSON: ./<characteristic>_proxies.json; about a minute per seed on two
CPU cores)

CORRECTNESS_DIR is a finished ``protoexplain benchmark correctness`` output (any seeds;
``--no-mixed`` is enough). For each of its seeds and isolated presets, the trained model and its
three controls are explained with every candidate modification of the characteristic, at the
strength whose mean ΔE2000 on the run's own calibration images matches each of the run's targets.
A candidate's family is a base family with that one modification replaced: the base family's rows
of the run's ``per_prototype.csv`` are copied with the method's importance of the characteristic
swapped for the candidate's. M1 (every characteristic) and M2 are then computed for each base
family and each candidate on the same models with the benchmark's clustered intervals. Issue 16's
rule: a candidate is better only when it beats its base family on the characteristic's M1 and on
M2's top-1 agreement with non-overlapping intervals.

Shape candidates (base: perceptual; all keep every pixel's colour, only move pixels):
- ``elastic 4x4`` / ``elastic 8x8``: a smooth random displacement field (a fixed-seed Gaussian
  draw on a 4 × 4 or 8 × 8 grid of control points, bicubic upsampling), local bends of the
  outline at the scale of the whole bird or of one part; strength = RMS displacement in pixels;
- ``outline-following``: the 4 × 4 field weighted by closeness to strong edges (a Gaussian-blurred
  map of the largest colour steps), so that outlines move and flat or finely patterned interiors
  move less.

Contrast candidates (bases: paper, whose blend toward grey also removes colour, and perceptual):
- ``perceptual contrast`` (paper base only): the perceptual family's global lightness contrast
  around the mean L, chroma and hue kept, taken from the run's own perceptual rows;
- ``local contrast σ 8`` / ``σ 16``: lightness pulled toward its local mean (a Gaussian blur of
  L with σ 8 or 16 px), ``L' = B + k·(L − B)``, chroma and hue kept: the pattern's amplitude
  shrinks and each region keeps its own lightness, as the generator's pattern-contrast
  intervention does. Smaller σ cannot reach the headline ΔE 5 on the benchmark's 64-px images
  (at k = 0, σ 4 gives 3.6–3.9 and σ 2 less; the global flattening 8.3–8.8).
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from protoexplain.benchmark.agreement import per_factor, per_prototype
from protoexplain.benchmark.correctness import (
    CHARACTERISTICS,
    CorrectnessConfig,
    calibration_indices,
    method_importances,
)
from protoexplain.benchmark.correctness_metrics import profiles
from protoexplain.benchmark.correctness_run import saved_config
from protoexplain.benchmark.faithfulness import benchmark_models
from protoexplain.data import ImageFolderDataset
from protoexplain.device import resolve_device
from protoexplain.explain.families.calibration import (
    StrengthRange,
    bisect_strength,
    mean_delta_e,
    to_lab,
)
from protoexplain.explain.families.perceptual import image_to_lch, lch_to_image
from protoexplain.explain.modifications import get_modification, register_modification
from protoexplain.fileio import read_json, write_json
from protoexplain.models import load_model
from protoexplain.progress import progress_bar

FAMILY = "proxy-study"
EDGE_BLUR = 2.0  # σ in pixels of the edge-closeness weight

Modify = Callable[[Image.Image, float], Image.Image]


@functools.lru_cache(maxsize=16)
def smooth_field(height: int, width: int, grid: int) -> np.ndarray:
    """(H, W, 2) float32 displacement with unit RMS: a fixed-seed draw on ``grid`` × ``grid``
    control points, upsampled bicubically (the same for every image of a size; read-only)."""
    coarse = np.random.default_rng(0).standard_normal((grid, grid, 2)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    field /= np.sqrt(np.mean(np.sum(field**2, axis=2)))
    field.flags.writeable = False
    return field


def edge_closeness(pixels: np.ndarray) -> np.ndarray:
    """(H, W) weight in [0, 1]: closeness to the image's strongest colour steps."""
    channels = pixels.astype(np.float32)
    step = np.maximum(np.abs(np.diff(channels, axis=0, append=channels[-1:])).max(2),
                      np.abs(np.diff(channels, axis=1, append=channels[:, -1:])).max(2))
    strong = (step > 0.25 * np.quantile(step, 0.99)).astype(np.float32)
    near = cv2.GaussianBlur(strong, (0, 0), EDGE_BLUR)
    return near / max(float(near.max()), 1e-6)


def displaced(pixels: np.ndarray, field: np.ndarray) -> np.ndarray:
    """``pixels`` resampled at (x, y) + ``field`` (bilinear, mirrored border)."""
    height, width = pixels.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return cv2.remap(pixels, xs + field[..., 0], ys + field[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT_101)


def elastic(grid: int, follow_outline: bool = False):
    """A shape modification: the ``grid`` field scaled to RMS ``strength`` pixels (weighted by
    :func:`edge_closeness` when ``follow_outline``)."""
    def apply(image: Image.Image, strength: float) -> Image.Image:
        pixels = np.asarray(image.convert("RGB"))
        if strength <= 0:
            return Image.fromarray(pixels)
        field = smooth_field(*pixels.shape[:2], grid)
        if follow_outline:
            weight = edge_closeness(pixels)[..., None]
            field = field * weight / np.sqrt(np.mean(np.sum((field * weight) ** 2, axis=2)))
        return Image.fromarray(displaced(pixels, strength * field))
    return apply


def local_contrast(sigma: float) -> Modify:
    """A contrast modification: CIELAB lightness pulled toward its Gaussian-blurred (σ
    ``sigma`` px) local mean by the factor ``strength`` (1 = unchanged); chroma and hue kept."""
    def apply(image: Image.Image, strength: float) -> Image.Image:
        lch = image_to_lch(image)
        lightness = lch[..., 0]
        local = cv2.GaussianBlur(lightness, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
        lch[..., 0] = local + strength * (lightness - local)
        return lch_to_image(lch)
    return apply


@dataclass(frozen=True)
class Study:
    """Candidate modifications of one characteristic, each tried in place of that
    characteristic's modification of every base family.

    ``candidates``: label → new modification (strength searched over ``search``);
    ``borrowed``: label → (base family, family whose own modification is swapped in)."""

    characteristic: str
    bases: tuple[str, ...]
    search: StrengthRange
    candidates: dict[str, Modify]
    borrowed: dict[str, tuple[str, str]] = field(default_factory=dict)

    def name(self, label: str) -> str:
        """The registered modification name of candidate ``label``."""
        return f"{self.characteristic}_{list(self.candidates).index(label)}"

    def register(self) -> None:
        """Each candidate as a modification of the study's family."""
        for label, function in self.candidates.items():
            register_modification(self.name(label), family=FAMILY, default_strength=1.0,
                                  description=label)(function)

    def families(self) -> list[str]:
        """Every base family and every candidate family, in table order."""
        found = []
        for base in self.bases:
            found.append(base)
            found += [f"{base}+{label}" for label in self.candidates]
            found += [f"{b}+{label}" for label, (b, _) in self.borrowed.items() if b == base]
        return found


STUDIES = {
    "shape": Study(
        "shape", ("perceptual",), StrengthRange(0.0, 16.0),  # RMS displacement, the warp's range
        {"elastic 4x4": elastic(4), "elastic 8x8": elastic(8),
         "outline-following": elastic(4, follow_outline=True)},
    ),
    "contrast": Study(
        "contrast", ("paper", "perceptual"), StrengthRange(1.0, 0.0),
        {"local contrast σ 8": local_contrast(8.0), "local contrast σ 16": local_contrast(16.0)},
        borrowed={"perceptual contrast": ("paper", "perceptual")},
    ),
}


def calibrated(study: Study, images: list[Image.Image], targets: tuple[float, ...]) -> dict:
    """{modification name: {target: (strength, its mean ΔE2000, target reached)}} of every
    candidate of ``study`` on ``images``."""
    labs = [to_lab(image) for image in images]
    chosen: dict[str, dict[str, tuple[float, float, bool]]] = {}
    for label in study.candidates:
        name = study.name(label)
        modification = get_modification(name, FAMILY)
        for target in targets:
            chosen.setdefault(name, {})[str(target)] = bisect_strength(
                lambda s, m=modification: mean_delta_e(images, m, s, labs), study.search, target)
    return chosen


def candidate_rows(study: Study, run: Path, config: CorrectnessConfig, seed: int, preset: str,
                   device) -> tuple[list, dict]:
    """Rows (seed, preset, model, prototype, target, name, candidate) of one preset and seed,
    and the candidates' calibration (:func:`calibrated`)."""
    root = run / f"seed-{seed}"
    data = root / "data" / preset
    model = load_model(root / "runs" / preset / "model").eval()
    models = benchmark_models(model, data / "train", seed)
    train = ImageFolderDataset(data / "train")
    images = [train.load_image(i).convert("RGB")
              for i in calibration_indices(train, seed, config.calibration_images)]
    chosen = calibrated(study, images, config.targets)
    strengths = {name: {target: result[0] for target, result in by_target.items()}
                 for name, by_target in chosen.items()}
    found = method_importances(models, ImageFolderDataset(data / "test"), FAMILY, strengths,
                               config, device, seed)
    rows = []
    for kind, by_target in found.items():
        for target, by_name in by_target.items():
            for name, values in by_name.items():
                rows += [{"seed": seed, "preset": preset, "model": kind, "prototype": p,
                          "target": float(target), "name": name, "candidate": v}
                         for p, v in enumerate(values)]
    return rows, chosen


def _swapped(base: pd.DataFrame, characteristic: str, swap: pd.DataFrame) -> pd.DataFrame:
    """``base`` with the method's importance of ``characteristic`` taken from ``swap``'s
    ``candidate`` column (matched by seed, preset, model, prototype and target)."""
    keys = ["seed", "preset", "model", "prototype", "target"]
    copy = base.merge(swap[[*keys, "candidate"]], on=keys, how="left")
    chosen = copy["characteristic"] == characteristic
    copy.loc[chosen, "method"] = copy.loc[chosen, "candidate"]
    return copy.drop(columns="candidate")


def with_candidates(study: Study, table: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """``table`` plus, per base family and candidate, a copy of the base family's rows with the
    characteristic's importance replaced (family ``BASE+LABEL``)."""
    added = [table]
    for base in study.bases:
        rows = table[table["family"] == base]
        for label in study.candidates:
            swap = candidates[candidates["name"] == study.name(label)]
            added.append(_swapped(rows, study.characteristic, swap).assign(
                family=f"{base}+{label}"))
    for label, (base, source) in study.borrowed.items():
        own = table[(table["family"] == source)
                    & (table["characteristic"] == study.characteristic)]
        swap = own.rename(columns={"method": "candidate"})
        added.append(_swapped(table[table["family"] == base], study.characteristic, swap)
                     .assign(family=f"{base}+{label}"))
    return pd.concat(added, ignore_index=True)


def summarise(table: pd.DataFrame, families: list[str], target: float, replicates: int) -> dict:
    """M1 (every characteristic) and M2 (pooled) of each family on the same models."""
    found = {}
    for family in families:
        models = profiles(table, family, target)
        found[family] = {"m1": per_factor(models, CHARACTERISTICS, replicates, seed=0),
                         "m2": per_prototype(models, replicates, seed=1)}
    return found


def _interval(entry: dict, key: str, percent: bool = False) -> str:
    form = "{:.0%}" if percent else "{:.2f}"
    return (f"{form.format(entry[key])} ({form.format(entry['low'])}–"
            f"{form.format(entry['high'])})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("correctness_dir", type=Path,
                        help="a finished 'protoexplain benchmark correctness' output folder")
    parser.add_argument("out", type=Path, nargs="?", default=None,
                        help="JSON file to write (default: ./<characteristic>_proxies.json)")
    parser.add_argument("--characteristic", choices=sorted(STUDIES), default="shape",
                        help="which characteristic's candidates to try (default: shape)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (default: cpu)")
    args = parser.parse_args()
    study = STUDIES[args.characteristic]
    out = args.out or Path(f"{study.characteristic}_proxies.json")
    record = args.correctness_dir / "correctness.json"
    table_path = args.correctness_dir / "per_prototype.csv"
    if not record.is_file() or not table_path.is_file():
        raise SystemExit(f"proxies: {args.correctness_dir} holds no finished correctness "
                         "run (correctness.json, per_prototype.csv); run 'protoexplain benchmark "
                         "correctness' first")
    settings = read_json(record)["config"]
    config = saved_config(settings)
    device = resolve_device(args.device)
    study.register()
    table = pd.read_csv(table_path)
    table = table[table["preset"].isin(config.presets)]
    seeds = sorted(int(seed) for seed in set(table["seed"]))
    jobs = [(seed, preset) for seed in seeds for preset in config.presets]
    rows, strengths = [], {}
    for seed, preset in progress_bar(jobs, desc=f"{study.characteristic} proxies", unit="preset"):
        found, chosen = candidate_rows(study, args.correctness_dir, config, seed, preset, device)
        rows += found
        strengths.setdefault(str(seed), {})[preset] = {
            label: {target: dict(zip(("strength", "delta_e", "reached"), result, strict=True))
                    for target, result in chosen[study.name(label)].items()}
            for label in study.candidates}
    combined = with_candidates(study, table, pd.DataFrame(rows))
    summary = summarise(combined, study.families(), config.headline, config.bootstrap)
    print(f"seeds {seeds}, target ΔE {config.headline}; ρ / share (95 % interval clustered by "
          "model)")
    print(f"{'family':<36}{'M1 ' + study.characteristic:>20}{'M1 texture':>20}{'M2 top-1':>20}")
    for family, entry in summary.items():
        print(f"{family:<36}{_interval(entry['m1'][study.characteristic], 'rho'):>20}"
              f"{_interval(entry['m1']['texture'], 'rho'):>20}"
              f"{_interval(entry['m2']['method_top1'], 'value', percent=True):>20}")
    write_json(out, {"correctness_config": settings, "characteristic": study.characteristic,
                     "bases": list(study.bases), "candidates": list(study.candidates),
                     "borrowed": {k: list(v) for k, v in study.borrowed.items()},
                     "strengths": strengths, "summary": json.loads(json.dumps(summary))})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
