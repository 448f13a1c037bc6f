"""Correctness benchmark: do the explanations describe the model? (``benchmark correctness``)

Per seed and isolated preset (hue, shape, texture) the faithfulness benchmark's small ProtoPNet is
trained and its three controls are built (:func:`.faithfulness.benchmark_models`). For every
model, prototype and characteristic two importances are measured at each ΔE2000 target:

- the method's (:func:`protoexplain.explain.explain_dataset`, each family at its calibrated
  strength for that target);
- the interventional reference I_int (:mod:`.interventional`): the same images re-rendered with
  one generating factor changed, at the dose matched to the same target (:mod:`.doses`).

On the ``mixed`` preset two more models are trained on identical images labelled two ways (head
hue; body shape) for M3 and, with part-local interventions, M4. The metrics are in
:mod:`.correctness_metrics`. Results are saved per seed, preset and model
(``seed-N/results/<preset>/``, atomically) and reused when run again with the same settings.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from protoexplain.benchmark.doses import match_doses
from protoexplain.benchmark.faithfulness import (
    FaithfulnessConfig,
    benchmark_models,
    train_model,
    train_preset,
)
from protoexplain.benchmark.interventional import SampleRef, interventional_importances
from protoexplain.benchmark.stacked import StackedModels
from protoexplain.data import ImageFolderDataset, generate_synthetic
from protoexplain.data.synth_factors import SHAPES, get_preset
from protoexplain.errors import UserError
from protoexplain.explain import explain_dataset
from protoexplain.explain.families.calibration import calibrate_strengths
from protoexplain.fileio import read_json_if_intact, write_json

#: The characteristics compared, in table order (modification names of both families).
CHARACTERISTICS = ("hue", "saturation", "brightness", "contrast", "shape", "texture")
#: Part-local characteristics of the reference on ``mixed`` (M4).
PART_CHARACTERISTICS = ("head.hue", "body.shape")
FAMILIES = ("paper", "perceptual", "paper-lightness")
#: Smallest image size accepted (the quick run's; smaller ones are not tested).
MIN_SIZE = 32
PRESETS = ("hue", "shape", "texture")
#: The two labellings of the ``mixed`` images (M3): view name → part of the class name kept.
MIXED_VIEWS = {"mixed-hue": 1, "mixed-shape": 2}
#: Columns of ``per_prototype.csv``.
COLUMNS = ("seed", "preset", "model", "prototype", "family", "target", "characteristic",
           "method", "reference")


@dataclass(frozen=True)
class CorrectnessConfig:
    """Sizes of the benchmark (the defaults are the full run; see :func:`quick_correctness`).

    Training is the faithfulness benchmark's recipe (:class:`.FaithfulnessConfig`: 400 images
    per class, 30 epochs, 8 last-layer epochs after each of the two pushes); 200 test images per
    preset; the ``mixed`` models at 64 px (``small_cnn`` sees 31 px per latent cell, and at 128 px
    its body-shape model does not learn). The full run fits in an hour on two CPU cores (measured
    in ``docs/correctness.md``).
    ``targets``: mean ΔE2000 at which doses and strengths are matched, fixed before any agreement
    is seen; ``headline``: the target of the main tables. ``parts_size``, ``parts_train_per_class``,
    ``parts_test_per_class``: image size and images of the ``mixed`` models (M3, M4; 8 classes);
    ``contrast``: whether to run them. ``bootstrap``: replicates of the clustered intervals.
    ``workers``: data-loader processes (results do not depend on it).
    """

    presets: tuple[str, ...] = PRESETS
    seeds: tuple[int, ...] = (0, 1, 2)
    background: str = "plain"
    image_size: int = 64
    train_per_class: int = 400
    test_per_class: int = 50
    prototypes_per_class: int = 10
    prototype_depth: int = 32
    epochs: int = 30
    last_layer_epochs: int = 8
    batch_size: int = 32
    calibration_images: int = 8
    targets: tuple[float, ...] = field(default=(2.5, 5.0, 10.0))
    headline: float = 5.0
    contrast: bool = True
    parts_size: int = 64
    parts_train_per_class: int = 100
    parts_test_per_class: int = 25
    bootstrap: int = 1000
    workers: int = 0

    def check(self) -> None:
        """A :class:`UserError` for settings the benchmark cannot run with."""
        unknown = sorted(set(self.presets) - set(PRESETS))
        if unknown:
            raise UserError(f"unknown presets {unknown}; choose from {', '.join(PRESETS)} "
                            "(and mixed)")
        if not self.presets and not self.contrast:
            raise UserError("nothing to measure: name a preset or keep the mixed models")
        if self.parts_size < MIN_SIZE or self.image_size < MIN_SIZE:
            raise UserError(f"image sizes {self.image_size} and {self.parts_size} px: use at "
                            f"least {MIN_SIZE} px (the quick run's size)")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"seeds {list(self.seeds)}: give one or more different seeds")
        if self.headline not in self.targets:
            raise UserError(f"the headline target {self.headline} is not among {self.targets}")

    def training(self, seed: int, parts: bool = False) -> FaithfulnessConfig:
        """The faithfulness benchmark's settings that train this benchmark's models (of the
        ``mixed`` preset when ``parts``)."""
        return replace(
            FaithfulnessConfig(), presets=self.presets, background=self.background,
            image_size=self.parts_size if parts else self.image_size,
            train_per_class=self.parts_train_per_class if parts else self.train_per_class,
            test_per_class=self.parts_test_per_class if parts else self.test_per_class,
            prototypes_per_class=self.prototypes_per_class,
            prototype_depth=self.prototype_depth, epochs=self.epochs,
            last_layer_epochs=self.last_layer_epochs, batch_size=self.batch_size,
            calibration_images=self.calibration_images, seed=seed, workers=self.workers,
        )


def quick_correctness(**overrides) -> CorrectnessConfig:
    """Under a minute on two CPU cores (``--quick``): one seed, 32 px, one target."""
    quick = CorrectnessConfig(
        seeds=(0,), image_size=32, train_per_class=8, test_per_class=4, prototypes_per_class=2,
        prototype_depth=8, epochs=2, last_layer_epochs=1, batch_size=8, calibration_images=2,
        targets=(5.0,), parts_size=32, parts_train_per_class=4, parts_test_per_class=2,
        bootstrap=100,
    )
    return replace(quick, **overrides)


#: Settings that change no saved result: which presets and seeds run together, the bootstrap,
#: and worker processes.
NEUTRAL_SETTINGS = ("presets", "seeds", "bootstrap", "workers")


def result_settings(config: CorrectnessConfig, seed: int) -> dict:
    """What one seed's saved results depend on, as JSON stores it."""
    settings = json.loads(json.dumps(asdict(config)))
    for neutral in NEUTRAL_SETTINGS:
        settings.pop(neutral)
    return {**settings, "seed": seed, "families": list(FAMILIES)}


def interventions_for(preset: str) -> list[str]:
    """The interventions of the reference on ``preset`` (part-local ones on ``mixed``)."""
    names = ["hue", "saturation", "brightness", "contrast", "texture",
             *(f"shape->{target}" for target in SHAPES)]
    if preset == "mixed":
        names += ["head.hue", *(f"body.shape->{target}" for target in SHAPES)]
    return names


def _characteristic(intervention: str) -> str:
    """``shape->triangle`` → ``shape``, ``body.shape->ellipse`` → ``body.shape``."""
    return intervention.split("->")[0]


def sample_refs(
    dataset: ImageFolderDataset, preset: str, split: str, seed: int, size: int, background: str,
    indices: Sequence[int] | None = None,
) -> list[SampleRef]:
    """Where the generated images of ``dataset`` (all, or ``indices``) come from."""
    classes = [c.name for c in get_preset(preset).classes]
    chosen = range(len(dataset)) if indices is None else indices
    refs = []
    for i in chosen:
        path = Path(dataset.samples[i][0])
        refs.append(SampleRef(preset, classes.index(path.parent.name), split, int(path.stem),
                              seed, size, background))
    return refs


def calibration_indices(train: ImageFolderDataset, seed: int, count: int) -> list[int]:
    """The training images (indices, sorted) on which strengths and doses are calibrated."""
    chosen = np.random.default_rng(seed).choice(len(train), min(count, len(train)), replace=False)
    return sorted(int(i) for i in chosen)


def method_importances(
    models: dict, test: ImageFolderDataset, family: str, chosen: dict[str, dict[str, float]],
    config: CorrectnessConfig, device: torch.device, seed: int,
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """{model: {target: {modification: [importance per prototype]}}} of ``family`` at the
    strengths ``chosen`` ({modification: {target: strength}}): all models explained together
    (:class:`.StackedModels`), each image modified once."""
    stack = StackedModels(list(models.values()))
    strengths = {name: sorted(set(by_target.values())) for name, by_target in chosen.items()}
    scores = explain_dataset(
        stack, test, family=family, modifications=list(chosen), strengths=strengths,
        mode="faithful", bootstrap=0, device=str(device), batch_size=config.batch_size,
        seed=seed, workers=config.workers,
    ).global_scores
    found: dict[str, dict] = {kind: {} for kind in models}
    for target, by_name in _at_targets(scores, chosen).items():
        for name, values in by_name.items():
            for kind, part in zip(models, stack.split(values), strict=True):
                found[kind].setdefault(target, {})[name] = part
    return found


class _Measure:
    """One seed's measurements on one data set: calibration, reference and method, saved under
    ``folder`` and reused when their settings match."""

    def __init__(self, folder: Path, settings: dict, config: CorrectnessConfig,
                 device: torch.device) -> None:
        self.folder, self.settings, self.config, self.device = folder, settings, config, device

    def _cached(self, name: str, compute) -> dict:
        path = self.folder / f"{name}.json"
        saved = read_json_if_intact(path)
        if isinstance(saved, dict) and saved.get("settings") == self.settings:
            return saved
        result = {"settings": self.settings, **compute()}
        write_json(path, result)
        return result

    def calibration(self, data: Path, preset: str, seed: int, size: int) -> dict:
        """Strengths per family and intervention doses matched at every target."""
        def compute() -> dict:
            train = ImageFolderDataset(data / "train")
            chosen = calibration_indices(train, seed, self.config.calibration_images)
            images = [train.load_image(i).convert("RGB") for i in chosen]
            refs = sample_refs(train, preset, "train", seed, size, self.config.background,
                               chosen)
            strengths: dict[str, dict[str, dict[str, float]]] = {}
            records: dict[str, dict[str, dict]] = {}
            for family in FAMILIES:
                for target in self.config.targets:
                    calibration = calibrate_strengths(images, family, target)
                    records.setdefault(family, {})[str(target)] = calibration.to_dict()
                    for result in calibration.results:
                        strengths.setdefault(family, {}).setdefault(result.name, {})[
                            str(target)] = result.strength
            doses = match_doses(refs, interventions_for(preset), self.config.targets)
            return {"strengths": strengths, "modifications": records,
                    "doses": [dose.to_dict() for dose in doses]}
        return self._cached("calibration", compute)

    def reference(self, models: dict, refs: list[SampleRef], calibration: dict) -> dict:
        """{model: {target: {characteristic: [I_int per prototype]}}}."""
        def compute() -> dict:
            doses = {f"{d['intervention']}@{d['target']}": {d["intervention"]: d["dose"]}
                     for d in calibration["doses"]}
            tables = interventional_importances(models, refs, doses, device=self.device,
                                                batch_size=self.config.batch_size)
            return {"reference": {kind: _by_characteristic(table) for kind, table
                                  in tables.items()}}
        return self._cached("reference", compute)["reference"]

    def method(self, models: dict, test: ImageFolderDataset, calibration: dict) -> dict:
        """{model: {family: {target: {characteristic: [importance per prototype]}}}}: all models
        explained together (:class:`.StackedModels`), each image modified once."""
        def compute() -> dict:
            found: dict[str, dict] = {kind: {} for kind in models}
            for family in FAMILIES:
                by_kind = method_importances(models, test, family,
                                             calibration["strengths"][family], self.config,
                                             self.device, self.settings["seed"])
                for kind, by_target in by_kind.items():
                    found[kind][family] = by_target
            return {"method": found}
        return self._cached("method", compute)["method"]


def _by_characteristic(table: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """The reference's rows (labels ``intervention@target``) as {target: {characteristic:
    importances}}, morphs toward the four outlines averaged into one shape importance."""
    table = table.assign(
        target=table["intervention"].str.split("@").str[1],
        characteristic=table["intervention"].str.split("@").str[0].map(_characteristic),
    )
    means = table.groupby(["target", "characteristic", "prototype"])["importance"].mean()
    found: dict[str, dict[str, list[float]]] = {}
    for (target, characteristic), values in means.groupby(level=[0, 1]):
        found.setdefault(target, {})[characteristic] = values.to_numpy().tolist()
    return found


def _at_targets(scores: pd.DataFrame, chosen: dict[str, dict[str, float]]) -> dict:
    """Global scores at each target's calibrated strength: {target: {name: importances}}."""
    found: dict[str, dict[str, list[float]]] = {}
    for name, by_target in chosen.items():
        rows = scores[scores["modification"] == name]
        for target, strength in by_target.items():
            at = rows[np.isclose(rows["strength"], strength)].drop_duplicates("prototype")
            values = at.sort_values("prototype")["weighted_delta"]
            found.setdefault(target, {})[name] = values.to_numpy().tolist()
    return found


def _rows(seed: int, preset: str, kind: str, method: dict, reference: dict) -> list[dict]:
    rows = []
    for target, by_characteristic in reference.items():
        for family in FAMILIES:
            for characteristic, values in by_characteristic.items():
                ours = method[family][target].get(characteristic)
                for prototype, value in enumerate(values):
                    rows.append({
                        "seed": seed, "preset": preset, "model": kind, "prototype": prototype,
                        "family": family, "target": float(target),
                        "characteristic": characteristic,
                        "method": np.nan if ours is None else ours[prototype],
                        "reference": value,
                    })
    return rows


def preset_job(preset: str, seed: int, config: CorrectnessConfig, out: Path,
                device: torch.device, bar) -> tuple[list[dict], dict, dict]:
    """Rows, accuracies and calibration of one isolated preset and seed (4 models)."""
    root = out / f"seed-{seed}"
    measure = _Measure(root / "results" / preset, result_settings(config, seed), config, device)
    model, accuracy, data = train_preset(preset, config.training(seed), root, device)
    models = benchmark_models(model, data / "train", seed)
    calibration = measure.calibration(data, preset, seed, config.image_size)
    test = ImageFolderDataset(data / "test")
    refs = sample_refs(test, preset, "test", seed, config.image_size, config.background)
    reference = measure.reference(models, refs, calibration)
    method = measure.method(models, test, calibration)
    rows = []
    for kind in models:
        rows += _rows(seed, preset, kind, method[kind], reference[kind])
    bar.update(len(models))
    return rows, {preset: accuracy}, calibration


def _mixed_views(data: Path) -> dict[str, Path]:
    """ImageFolder trees of the ``mixed`` images labelled by head hue and by body shape (hard
    links, or copies where links fail), built once beside ``data``."""
    views = {}
    for view, part in MIXED_VIEWS.items():
        root = data.parent / view
        views[view] = root
        if (root / "complete").is_file():
            continue
        shutil.rmtree(root, ignore_errors=True)
        for image in sorted(data.glob("*/*/*.png")):
            split, name = image.parent.parent.name, image.parent.name
            target = root / split / name.split("_")[part] / f"{name}-{image.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(image, target)
            except OSError:
                shutil.copyfile(image, target)
        (root / "complete").write_text("", encoding="utf-8")
    return views


def mixed_job(seed: int, config: CorrectnessConfig, out: Path, device: torch.device,
               bar) -> tuple[list[dict], dict, dict]:
    """Rows, accuracies and calibration of the two ``mixed`` models of one seed (M3, M4)."""
    root = out / f"seed-{seed}"
    size = config.parts_size
    training = config.training(seed, parts=True)
    data = root / "data" / "mixed"
    generate_synthetic(data, "mixed", seed=seed, size=size,
                       train_per_class=training.train_per_class,
                       test_per_class=training.test_per_class, progress=False,
                       background=config.background)
    measure = _Measure(root / "results" / "mixed", result_settings(config, seed), config, device)
    models, accuracy = {}, {}
    for view, view_data in _mixed_views(data).items():
        models[view], accuracy[view] = train_model(view_data, root / "runs" / view, training,
                                                   device)
    calibration = measure.calibration(data, "mixed", seed, size)
    refs = sample_refs(ImageFolderDataset(data / "test"), "mixed", "test", seed, size,
                       config.background)
    reference = measure.reference(models, refs, calibration)
    test = ImageFolderDataset(data / "test")
    method = measure.method(models, test, calibration)
    rows = []
    for view in models:
        rows += _rows(seed, view, "trained", method[view], reference[view])
    bar.update(len(models))
    return rows, accuracy, calibration
