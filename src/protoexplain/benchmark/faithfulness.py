"""Faithfulness benchmark: do explanations recover the factor that defines the classes?

For each isolated synthetic preset (classes differ in one factor only) a small ProtoPNet is
trained, then explained with every modification family; we report how often each prototype's
most important characteristic is the true factor, and the true factor's mean rank, for the
trained model and for three controls: ``control_trunk`` (same trunk, re-initialised prototypes
and last layer), ``control_patches`` (same trunk, prototypes set to randomly chosen latent patches
of training images instead of learned ones) and ``control_random`` (everything re-initialised,
trunk included).
Calibrated variants also give dose–response curves (importance against mean ΔE2000).
"""

from __future__ import annotations

import copy
import json
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from protoexplain import __version__
from protoexplain.benchmark.plots import plot_dose_response
from protoexplain.benchmark.ranking import TRUE_FACTOR, factor_ranks, summarise_ranks
from protoexplain.benchmark.significance import add_significance
from protoexplain.benchmark.tables import markdown_table, recommend
from protoexplain.data import ImageFolderDataset, eval_transform, generate_synthetic, make_loader
from protoexplain.device import resolve_device
from protoexplain.errors import UserError
from protoexplain.explain import explain_dataset
from protoexplain.explain.families.calibration import DEFAULT_TARGET, calibrate_strengths
from protoexplain.fileio import atomic_open, read_json_if_intact, write_json
from protoexplain.models import ProtoPNet, PrototypeModel, load_model
from protoexplain.progress import progress_bar
from protoexplain.training import config_from_dict, train

#: Benchmarked variants: name → (modification family, calibrated strengths?).
VARIANTS = {
    "paper": ("paper", False),
    "paper+calibrated": ("paper", True),
    "perceptual": ("perceptual", False),
    "perceptual+calibrated": ("perceptual", True),
}
ROW_COLUMNS = (
    "preset", "family", "model", "accuracy", "top1_share", "mean_rank", "n_prototypes", "tops",
)
#: Columns of ``faithfulness.csv``: the rows plus the share's 95 % interval and, for controls, the
#: p-value that the trained model ranks the true factor first more often (:mod:`.significance`).
RESULT_COLUMNS = (
    "preset", "family", "model", "accuracy", "top1_share", "top1_low", "top1_high",
    "p_trained_greater", "mean_rank", "n_prototypes", "tops",
)
DOSE_COLUMNS = (
    "preset", "family", "model", "modification", "target", "strength", "delta_e", "importance",
)
IMPORTANCE_COLUMNS = ("preset", "family", "model", "modification", "importance")


@dataclass(frozen=True)
class FaithfulnessConfig:
    """Sizes of the benchmark (the defaults are the full run; see :func:`quick_config`).

    The training recipe suits ``small_cnn`` from scratch (see the demo config): no warm-up, a
    trunk learning rate without decay, and two pushes (after epoch ``epochs // 2`` and after the
    last epoch), each followed by ``last_layer_epochs`` last-layer epochs. ``workers``: data-loader
    processes for training and for the faithful modifications; the results do not depend on it.
    """

    presets: tuple[str, ...] = ("hue", "shape", "texture", "contrast", "saturation")
    background: str = "plain"
    image_size: int = 64
    train_per_class: int = 400
    test_per_class: int = 25
    prototypes_per_class: int = 10
    prototype_depth: int = 32
    epochs: int = 30
    warm_epochs: int = 0
    last_layer_epochs: int = 8
    batch_size: int = 32
    features_lr: float = 3e-3
    last_layer_lr: float = 1e-3
    calibration_images: int = 16
    calibration_target: float = DEFAULT_TARGET
    dose_targets: tuple[float, ...] = field(default=(2.5, DEFAULT_TARGET, 10.0))
    seed: int = 0
    workers: int = 0
    smoke: bool = False


def quick_config(**overrides: Any) -> FaithfulnessConfig:
    """A few-minute configuration on two CPU cores (``--quick``)."""
    quick = FaithfulnessConfig(
        train_per_class=16, test_per_class=4, prototypes_per_class=4, prototype_depth=16, epochs=4,
        last_layer_epochs=2, calibration_images=4, smoke=True,
    )
    return replace(quick, **overrides)


def training_config(config: FaithfulnessConfig, data: Path) -> dict:
    """The training run's config (as for ``config_from_dict``) on the ImageFolder tree ``data``."""
    first_push = max(config.epochs // 2 - 1, 0)
    return {
        "seed": config.seed,
        "data": {
            "train": str(data / "train"), "test": str(data / "test"),
            "augmentation": "none", "validation_fraction": 0.0, "workers": config.workers,
        },
        "model": {
            "backbone": "small_cnn", "weights": "none", "image_size": config.image_size,
            "prototypes_per_class": config.prototypes_per_class,
            "prototype_depth": config.prototype_depth, "add_on": "regular",
        },
        "batch": {"train": config.batch_size, "test": 100, "push": 100},
        "schedule": {
            "epochs": config.epochs, "warm_epochs": config.warm_epochs,
            "push_start": first_push, "push_every": max(config.epochs - 1 - first_push, 1),
            "push_at_end": True, "last_layer_epochs": config.last_layer_epochs,
        },
        "joint": {
            "features_lr": config.features_lr, "features_weight_decay": 0.0, "lr_step": 1000,
        },
        "last_layer": {"lr": config.last_layer_lr},
    }


def control_model(model: ProtoPNet, seed: int) -> ProtoPNet:
    """Trunk control: a copy of ``model`` with its trained trunk and add-on layers, but prototypes
    drawn anew (uniform [0, 1), as at initialisation) and the last layer reset to +1 / −0.5."""
    control = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fresh = torch.rand(control.prototype_vectors.shape, generator=generator)
        control.prototype_vectors.copy_(fresh.to(control.prototype_vectors))
    control.set_class_connections(-0.5)
    return control.eval()


@torch.no_grad()
def patch_control_model(
    model: ProtoPNet, train_root: Path, seed: int, images: int = 64
) -> ProtoPNet:
    """Patch control: a copy of ``model`` whose prototypes are latent patches drawn uniformly at
    random (image and cell) from ``images`` random training images, last layer +1 / −0.5.

    Like pushed prototypes they lie on the data (each is some image's patch), but nothing chose
    them: it separates what training selected from what any patch of these images responds to.
    """
    spec = model.spec
    dataset = ImageFolderDataset(
        train_root, transform=eval_transform(spec.image_size, spec.mean, spec.std)
    )
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(dataset), generator=generator)[:images].tolist()
    control = copy.deepcopy(model).eval()
    device = control.prototype_vectors.device
    latent = control.latent(torch.stack([dataset[i][0] for i in chosen]).to(device)).cpu()
    count, _, height, width = latent.shape
    cells = torch.randint(0, count * height * width, (model.num_prototypes,), generator=generator)
    image, rest = cells // (height * width), cells % (height * width)
    patches = latent[image, :, rest // width, rest % width]
    control.prototype_vectors.copy_(patches.reshape(control.prototype_vectors.shape))
    control.set_class_connections(-0.5)
    return control.eval()


def random_model(model: ProtoPNet, seed: int) -> ProtoPNet:
    """Random control: a model of the same architecture with nothing trained (random trunk,
    add-on layers and prototypes as at initialisation, last layer +1 / −0.5)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        control = ProtoPNet(model.spec)
    control.set_class_connections(-0.5)
    return control.to(model.prototype_vectors.device).eval()


def benchmark_models(model: ProtoPNet, train_root: Path, seed: int) -> dict[str, ProtoPNet]:
    """The trained ``model`` and its three controls, keyed by their names in the tables."""
    return {
        "trained": model,
        "control_trunk": control_model(model, seed + 1),
        "control_patches": patch_control_model(model, train_root, seed + 3),
        "control_random": random_model(model, seed + 2),
    }


def train_preset(
    preset: str, config: FaithfulnessConfig, out: Path, device: torch.device,
    weights: str = "none",
) -> tuple[ProtoPNet, float, Path]:
    """Generate ``preset``'s data under ``out/data/`` and train on it under ``out/runs/`` (trunk
    ``weights``: none or a local file); return the model, its test accuracy and the data folder."""
    data = out / "data" / preset
    generate_synthetic(
        data, preset, seed=config.seed, size=config.image_size,
        train_per_class=config.train_per_class, test_per_class=config.test_per_class,
        progress=False, background=config.background,
    )
    model, accuracy = train_model(data, out / "runs" / preset, config, device, weights)
    return model, accuracy, data


def train_model(
    data: Path, run: Path, config: FaithfulnessConfig, device: torch.device,
    weights: str = "none",
) -> tuple[ProtoPNet, float]:
    """Train on the ImageFolder tree ``data`` (``train/``, ``test/``) into the run folder ``run``;
    return the model and its test accuracy. An interrupted run continues from its last
    checkpoint, a finished one is reused."""
    settings = training_config(config, data)
    settings["model"]["weights"] = weights
    model_dir = train(config_from_dict(settings, f"benchmark {run.name}"), run, device=device,
                      resume=True)
    model = load_model(model_dir).eval()
    return model, test_accuracy(model, data / "test", device)


def result_row(
    preset: str, family: str, kind: str, accuracy: float, ranks: pd.DataFrame
) -> dict:
    """One row of ``faithfulness.csv`` (before :func:`.significance.add_significance`)."""
    tops = ranks["top"].value_counts()
    return {
        "preset": preset, "family": family, "model": kind, "accuracy": accuracy,
        **summarise_ranks(ranks),
        "tops": " ".join(f"{name}:{count}" for name, count in tops.items()),
    }


@torch.inference_mode()
def test_accuracy(model: PrototypeModel, root: Path, device: torch.device) -> float:
    """Top-1 accuracy of ``model`` on the ImageFolder tree ``root``."""
    spec = model.input_spec
    transform = eval_transform(spec.image_size, spec.mean, spec.std)
    dataset = ImageFolderDataset(root, transform=transform)
    model = model.to(device).eval()
    correct = 0
    for batch in make_loader(dataset, batch_size=100):
        logits = model(batch.images.to(device))
        correct += int((logits.argmax(1).cpu() == batch.labels).sum())
    return correct / len(dataset)


def _sample(root: Path, count: int, seed: int) -> list[Image.Image]:
    files = sorted(root.glob("*/*.png"))
    chosen = np.random.default_rng(seed).choice(len(files), min(count, len(files)), replace=False)
    return [Image.open(files[i]).convert("RGB") for i in sorted(chosen)]


def _calibrated_strengths(
    sample: list[Image.Image], family: str, targets: tuple[float, ...]
) -> tuple[dict[str, dict[float, float]], dict[float, dict]]:
    """``{modification: {target: strength}}`` and the calibration records per target."""
    by_name: dict[str, dict[float, float]] = {}
    records = {}
    for target in targets:
        calibration = calibrate_strengths(sample, family, target)
        records[target] = calibration.to_dict()
        for result in calibration.results:
            by_name.setdefault(result.name, {})[target] = result.strength
    return by_name, records


def _at_target(scores: pd.DataFrame, chosen: dict[str, dict[float, float]], target: float):
    wanted = scores["modification"].map(lambda name: chosen[name][target])
    return scores[np.isclose(scores["strength"], wanted)].drop_duplicates(
        ["prototype", "modification"]
    )


def _dose_rows(preset, variant, kind, scores, chosen, records) -> list[dict]:
    rows = []
    for target, record in records.items():
        delta_e = {r["name"]: r["delta_e"] for r in record["modifications"]}
        subset = _at_target(scores, chosen, target)
        for name, group in subset.groupby("modification"):
            rows.append({
                "preset": preset, "family": variant, "model": kind, "modification": name,
                "target": target, "strength": chosen[name][target], "delta_e": delta_e[name],
                "importance": float(group["weighted_delta"].mean()),
            })
    return rows


@dataclass
class _PresetResult:
    preset: str
    calibration: dict
    rows: list[dict] = field(default_factory=list)
    per_prototype: list[pd.DataFrame] = field(default_factory=list)
    importance: list[dict] = field(default_factory=list)
    dose: list[dict] = field(default_factory=list)

    def save(self, path: Path, config: FaithfulnessConfig) -> None:
        """Write this preset's results and the settings that produced them (atomically)."""
        write_json(path, {
            "config": result_settings(config), "preset": self.preset,
            "calibration": {fam: {str(t): rec for t, rec in by_target.items()}
                            for fam, by_target in self.calibration.items()},
            "rows": self.rows, "importance": self.importance, "dose": self.dose,
            "per_prototype": [frame.to_dict(orient="list") for frame in self.per_prototype],
        })

    @classmethod
    def load(cls, path: Path, config: FaithfulnessConfig) -> _PresetResult | None:
        """The results saved at ``path`` if they were made with ``config``, else None."""
        saved = read_json_if_intact(path)
        if not isinstance(saved, dict) or saved.get("config") != result_settings(config):
            return None
        calibration = {fam: {float(t): rec for t, rec in by_target.items()}
                       for fam, by_target in saved["calibration"].items()}
        return cls(saved["preset"], calibration, saved["rows"],
                   [pd.DataFrame(frame) for frame in saved["per_prototype"]],
                   saved["importance"], saved["dose"])


#: Settings that change no preset's result: which presets run together, worker processes, and
#: whether the run is a smoke run (that changes only the recommendation).
NEUTRAL_SETTINGS = ("presets", "workers", "smoke")


def result_settings(config: FaithfulnessConfig) -> dict:
    """The settings a preset's results depend on, as JSON stores them (all but
    :data:`NEUTRAL_SETTINGS`): saved results are reused, and runs pooled, only when they agree."""
    settings = json.loads(json.dumps(asdict(config)))
    for neutral in NEUTRAL_SETTINGS:
        settings.pop(neutral)
    return settings


def _explain_preset(
    preset: str, config: FaithfulnessConfig, data: Path, models: dict, accuracy: float,
    device: torch.device,
) -> _PresetResult:
    factor = TRUE_FACTOR[preset]
    sample = _sample(data / "train", config.calibration_images, config.seed)
    targets = tuple(sorted({*config.dose_targets, config.calibration_target}))
    calibrated = {
        fam: _calibrated_strengths(sample, fam, targets) for fam in ("paper", "perceptual")
    }
    test = ImageFolderDataset(data / "test")
    out = _PresetResult(preset, {fam: rec for fam, (_, rec) in calibrated.items()})
    for kind, model in models.items():
        for variant, (family, use_calibration) in VARIANTS.items():
            strengths = None
            if use_calibration:
                chosen = calibrated[family][0]
                strengths = {name: sorted(set(v.values())) for name, v in chosen.items()}
            result = explain_dataset(
                model, test, family=family, strengths=strengths, mode="faithful", bootstrap=0,
                device=str(device), batch_size=config.batch_size, seed=config.seed,
                workers=config.workers,
            )
            scores = result.global_scores
            if use_calibration:
                records = out.calibration[family]
                out.dose += _dose_rows(preset, variant, kind, scores, chosen, records)
                scores = _at_target(scores, chosen, config.calibration_target)
            ranks = factor_ranks(scores, factor)
            out.rows.append(result_row(preset, variant, kind, accuracy, ranks))
            out.per_prototype.append(ranks.assign(preset=preset, family=variant, model=kind))
            means = scores.groupby("modification")["weighted_delta"].mean()
            out.importance += [
                {"preset": preset, "family": variant, "model": kind, "modification": name,
                 "importance": float(value)}
                for name, value in means.items()
            ]
    return out


def run_faithfulness(
    config: FaithfulnessConfig, out_dir: str | Path, device: str = "auto", progress: bool = True
) -> dict:
    """Run the benchmark into ``out_dir``; return a summary (files written, recommended family).

    The output files are rewritten after each preset; ``benchmark.json`` lists the presets done.
    Run again into the same folder after an interruption, it reuses the presets whose results
    were saved (``presets/<preset>.json``, same settings) and resumes an interrupted training.
    """
    unknown = sorted(set(config.presets) - set(TRUE_FACTOR))
    if unknown or not config.presets:
        raise UserError(f"unknown presets {unknown}; choose from {sorted(TRUE_FACTOR)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    started = time.perf_counter()
    results: list[_PresetResult] = []
    presets = progress_bar(config.presets, desc="faithfulness", unit="preset", disable=not progress)
    for preset in presets:
        saved = out / "presets" / f"{preset}.json"
        result = _PresetResult.load(saved, config)
        if result is None:
            model, accuracy, data = train_preset(preset, config, out, torch_device)
            models = benchmark_models(model, data / "train", config.seed)
            result = _explain_preset(preset, config, data, models, accuracy, torch_device)
            result.save(saved, config)
        results.append(result)
        # Rewrite the tables after every preset, so that an interrupted run keeps what it did.
        summary = _write_outputs(config, out, results, time.perf_counter() - started, torch_device)
    return summary


def _write_outputs(
    config: FaithfulnessConfig, out: Path, results: list[_PresetResult], seconds: float,
    device: torch.device,
) -> dict:
    table = pd.DataFrame([r for res in results for r in res.rows], columns=list(ROW_COLUMNS))
    table = add_significance(table)[list(RESULT_COLUMNS)]
    dose = pd.DataFrame([r for res in results for r in res.dose], columns=list(DOSE_COLUMNS))
    importance = pd.DataFrame(
        [r for res in results for r in res.importance], columns=list(IMPORTANCE_COLUMNS)
    )
    per_prototype = pd.concat([p for res in results for p in res.per_prototype])
    per_prototype = per_prototype[["preset", "family", "model", "prototype", "rank", "top"]]
    with atomic_open(out / "faithfulness.csv", newline="") as handle:
        table.to_csv(handle, index=False)
    with atomic_open(out / "per_prototype.csv", newline="") as handle:
        per_prototype.to_csv(handle, index=False)
    with atomic_open(out / "dose_response.csv", newline="") as handle:
        dose.to_csv(handle, index=False)
    with atomic_open(out / "importance.csv", newline="") as handle:
        importance.to_csv(handle, index=False)
    recommendation = recommend(table, smoke=config.smoke)
    done = [res.preset for res in results]
    with atomic_open(out / "faithfulness.md", encoding="utf-8") as handle:
        handle.write(markdown_table(table, recommendation))
    figures = [plot_dose_response(dose, preset, out / f"dose_{preset}.png")
               for preset in done]
    summary = {
        "config": asdict(config),
        "recommended_family": recommendation.family,
        "recommendation": recommendation.reason,
        "presets_done": done,
        "wall_seconds": round(seconds, 1),
        "device": str(device),
        "versions": {"protoexplain": __version__, "torch": torch.__version__,
                     "python": platform.python_version()},
        "calibration": {
            res.preset: {fam: {str(t): rec for t, rec in by_target.items()}
                         for fam, by_target in res.calibration.items()}
            for res in results
        },
        "files": ["faithfulness.csv", "faithfulness.md", "per_prototype.csv",
                  "importance.csv", "dose_response.csv", *[f.name for f in figures]],
    }
    write_json(out / "benchmark.json", summary)
    return summary
