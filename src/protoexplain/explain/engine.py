"""The explanation engine: local and global importance of characteristics per prototype.

Images are processed in chunks (a multiple of the batch size). Each finished chunk leaves a part
file of local rows and an updated per-rank state (running sums + list of finished chunks), both
written atomically, so a killed run resumes where it stopped and ends with the same files. With
torchrun, chunks are dealt round-robin to ranks; rank 0 merges the parts (in chunk order) and the
rank sums, then writes every output.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import pyarrow
import torch
import torch.distributed as dist
import torchvision
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from protoexplain import __version__
from protoexplain.data import ImageFolderDataset, eval_transform, make_loader
from protoexplain.device import resolve_device
from protoexplain.errors import UserError
from protoexplain.explain import stats
from protoexplain.explain.config import ExplainConfig
from protoexplain.explain.families.calibration import calibrated_config
from protoexplain.explain.finished import is_already_complete
from protoexplain.explain.inputs import (
    VersionedImages,
    image_versions,
    modification_input,
    modify_on_device,
)
from protoexplain.explain.localio import PartWriter, local_rows, merge_parts
from protoexplain.explain.modifications import (
    DEFAULT_FAMILY,
    ModificationSetting,
    resolve_settings,
)
from protoexplain.explain.result import GLOBAL_FILE, LOCAL_FILE, ExplainResult
from protoexplain.explain.scores import ScoreSums, poisson_weights, score_batch
from protoexplain.fileio import atomic_open, atomic_path, read_json, write_json
from protoexplain.models.protocol import PrototypeModel
from protoexplain.outputs import locked_output
from protoexplain.progress import progress_bar

PARTS_DIR = "parts"


def select_indices(total: int, max_images: int | None) -> np.ndarray:
    """All indices, or ``max_images`` spread evenly over the dataset (covers every class); 0 or
    None: all."""
    if not max_images or max_images >= total:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, max_images).round().astype(np.int64))


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _relative_names(dataset: Any) -> list[str]:
    root = getattr(dataset, "root", None)
    names = []
    for path, _ in dataset.samples:
        path = Path(path)
        names.append(path.relative_to(root).as_posix() if root else path.as_posix())
    return names


def model_hash(model: torch.nn.Module) -> str:
    """SHA-256 of the model's state dict (names and raw bytes): identifies the explained model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass
class _Plan:
    settings: list[ModificationSetting]
    indices: np.ndarray
    chunks: list[np.ndarray]
    names: list[str]
    fingerprint: str
    description: dict[str, Any]


def _plan(model: PrototypeModel, dataset, config: ExplainConfig, extra: dict[str, Any]) -> _Plan:
    config.check()
    settings = resolve_settings(config.modifications or None, config.strengths, config.family)
    missing = [s.name for s in settings if s.modification.apply_batch is None]
    if config.mode == "fast" and missing:
        raise UserError(f"modifications {missing} have no batched version; use --mode faithful")
    indices = select_indices(len(dataset), config.max_images)
    chunk = math.ceil(config.chunk_images / config.batch_size) * config.batch_size
    chunks = [indices[i : i + chunk] for i in range(0, len(indices), chunk)]
    names = _relative_names(dataset)
    image_digest = hashlib.sha256("\n".join(names[i] for i in indices).encode()).hexdigest()
    description = {
        "format": "protoexplain-explanation",
        **extra,
        "family": config.family,
        "modifications": [
            {"name": s.name, "strength": s.strength, "description": s.modification.description}
            for s in settings
        ],
        "strengths": {s.name: [t.strength for t in settings if t.name == s.name] for s in settings},
        "mode": config.mode,
        "modify_at": "model" if config.mode == "fast" else config.modify_at,
        "n_images": len(indices),
        "n_prototypes": int(model.num_prototypes),
        "local_top_k": config.local_top_k or None,
        "bootstrap_replicates": config.bootstrap,
        "bootstrap": "Poisson(1) weights per image, seeded by (seed, image index)",
        "seed": config.seed,
        "chunk_images": chunk,
        "images_sha256": image_digest,
        "model_sha256": model_hash(model),
        "versions": {
            "protoexplain": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "pyarrow": pyarrow.__version__,
        },
    }
    fingerprint = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()
    return _Plan(settings, indices, chunks, names, fingerprint, description)


def _state_path(parts: Path, rank: int, world: int) -> Path:
    return parts / f"state-rank{rank:03d}-of{world:03d}.safetensors"


def _load_state(path: Path, fingerprint: str) -> tuple[ScoreSums, set[int], list[str]] | None:
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
        if meta.get("fingerprint") != fingerprint:
            raise UserError(
                f"{path.parent.parent} holds an unfinished explanation with other settings, data "
                "or model; rerun with the same ones, or choose another OUT_DIR / delete it"
            )
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    if set(tensors) != set(ScoreSums.__dataclass_fields__):
        raise UserError(
            f"{path} was written by an older protoexplain whose running sums cannot be resumed; "
            f"delete {path.parent} to restart this explanation"
        )
    progress = json.loads(meta["progress"])
    return ScoreSums.from_tensors(tensors), set(progress["done"]), progress["skipped"]


def _save_state(path: Path, sums: ScoreSums, done: set[int], skipped: list[str], fp: str) -> None:
    progress = json.dumps({"done": sorted(done), "skipped": skipped})
    with atomic_path(path) as tmp:
        save_file(sums.to_tensors(), str(tmp), metadata={"fingerprint": fp, "progress": progress})


def _compute_shard(
    model: PrototypeModel,
    dataset,
    out_dir: Path,
    config: ExplainConfig,
    plan: _Plan,
    rank: int,
    world: int,
    device: torch.device,
) -> None:
    parts = out_dir / PARTS_DIR
    parts.mkdir(parents=True, exist_ok=True)
    state_file = _state_path(parts, rank, world)
    loaded = _load_state(state_file, plan.fingerprint)
    k, p = len(plan.settings), int(model.num_prototypes)
    sums, done, skipped = loaded or (ScoreSums.zeros(k, p, config.bootstrap), set(), [])
    todo = [c for c in range(rank, len(plan.chunks), world) if c not in done]
    if not todo:
        if loaded is None:  # fewer chunks than processes: record that this one had none
            _save_state(state_file, sums, done, skipped, plan.fingerprint)
        return
    chunk_of = np.full(len(dataset), -1, dtype=np.int64)
    for c in todo:
        chunk_of[plan.chunks[c]] = c
    spec = model.input_spec
    transform = eval_transform(spec.image_size, spec.mean, spec.std)
    faithful = config.mode == "faithful"
    prepare = modification_input(config.modify_at, spec.image_size) if faithful else None
    source = VersionedImages(dataset, plan.settings if faithful else [], transform, prepare)
    order = [int(i) for c in todo for i in plan.chunks[c]]
    loader = make_loader(
        source,
        batch_size=config.batch_size,
        workers=config.workers,
        sampler=order,
        pin_memory=device.type == "cuda",
    )
    prototype_class = model.main_class.cpu().numpy()
    classes = list(dataset.classes)
    names = [s.name for s in plan.settings]
    strengths = [s.strength for s in plan.settings]
    pending = iter(todo)
    current, writer = None, None

    def finish() -> None:
        writer.commit()
        done.add(current)
        _save_state(state_file, sums, done, skipped + loader.skipped, plan.fingerprint)

    bar = progress_bar(
        total=len(order),
        unit="img",
        desc=f"explain ({config.mode})",
        disable=not config.progress or rank != 0,
    )
    try:
        for batch in loader:
            chunk = int(chunk_of[int(batch.indices[0])])
            while current != chunk:
                if writer is not None:
                    finish()
                current = next(pending)
                writer = PartWriter(parts / f"part-{current:06d}.parquet")
            versions = batch.images.to(device, non_blocking=True)
            if not faithful:
                versions = modify_on_device(versions[:, 0], plan.settings, spec.mean, spec.std)
            similarity, delta = score_batch(model, versions)
            similarity, delta = similarity.float().cpu().numpy(), delta.float().cpu().numpy()
            indices = batch.indices.numpy()
            sums.add(similarity, delta, poisson_weights(indices, config.bootstrap, config.seed))
            image_names = [plan.names[i] for i in indices]
            image_classes = [classes[int(label)] for label in batch.labels]
            writer.write(
                local_rows(
                    image_names,
                    image_classes,
                    similarity,
                    delta,
                    prototype_class,
                    names,
                    strengths,
                    config.local_top_k or None,
                )
            )
            bar.update(len(indices))
        if writer is not None:
            finish()
        for current in pending:  # chunks whose images were all skipped
            writer = PartWriter(parts / f"part-{current:06d}.parquet")
            finish()
    except BaseException:
        if writer is not None and current not in done:
            writer.abort()
        raise
    finally:
        bar.close()


def _finalise(
    model: PrototypeModel,
    out_dir: Path,
    config: ExplainConfig,
    plan: _Plan,
    world: int,
    compare_with: Path | None,
) -> ExplainResult:
    parts = out_dir / PARTS_DIR
    total: ScoreSums | None = None
    done: set[int] = set()
    skipped: list[str] = []
    for rank in range(world):
        loaded = _load_state(_state_path(parts, rank, world), plan.fingerprint)
        if loaded is None:
            raise UserError(f"rank {rank} left no results in {parts}; rerun the same command")
        if total is None:
            total = loaded[0]
        else:
            total.merge(loaded[0])
        done |= loaded[1]
        skipped += loaded[2]
    missing = sorted(set(range(len(plan.chunks))) - done)
    if missing:
        raise UserError(f"chunks {missing[:5]} are unfinished in {parts}; rerun the same command")
    assert total is not None
    metadata = {"family": config.family, "explain": json.dumps(plan.description)}
    part_files = [parts / f"part-{c:06d}.parquet" for c in range(len(plan.chunks))]
    rows = merge_parts(part_files, out_dir / LOCAL_FILE, metadata)
    table = global_table(total, plan.settings, model.main_class.cpu().numpy(), config.family)
    with atomic_open(out_dir / GLOBAL_FILE, "w", newline="") as handle:
        table.to_csv(handle, index=False, float_format="%.9g")
    characteristics = stats.characteristic_stats(table)
    comparison = None
    if compare_with is not None:
        comparison = stats.compare_splits(table, pd.read_csv(Path(compare_with) / GLOBAL_FILE))
    n_images = total.count
    summary = {
        "n_images": n_images,
        "n_local_rows": rows,
        "skipped_images": sorted(set(skipped)),
        "family": config.family,
        "characteristics": characteristics,
        "comparison": {"other": str(compare_with), "tests": comparison} if comparison else None,
        "significance": "one-sample t-test of mean Δ over images per prototype; "
        "Benjamini–Hochberg per characteristic, q < 0.05",
    }
    write_json(out_dir / "stats.json", summary)
    with atomic_open(out_dir / "summary.txt", "w", encoding="utf-8") as handle:
        handle.write(stats.summary_text(characteristics, comparison, n_images))
    write_json(
        out_dir / "explain.json", {**plan.description, "skipped_images": sorted(set(skipped))}
    )
    shutil.rmtree(parts)
    return ExplainResult(out_dir, table, summary, n_images)


def global_table(
    sums: ScoreSums, settings: list[ModificationSetting], prototype_class: np.ndarray, family: str
) -> pd.DataFrame:
    """One row per (prototype, setting): global score, bootstrap interval, significance."""
    k, p = sums.weighted.shape
    n = sums.count
    low, high = sums.bootstrap_interval()
    mean, t_stat, p_value = stats.one_sample_t(sums.delta, sums.delta_m2, n)
    q_value = np.stack([stats.benjamini_hochberg(row) for row in p_value])
    prototype = np.tile(np.arange(p), k)
    frame = pd.DataFrame(
        {
            "prototype": prototype,
            "prototype_class": prototype_class[prototype],
            "family": family,
            "modification": np.repeat([s.name for s in settings], p),
            "strength": np.repeat([s.strength for s in settings], p),
            "weighted_delta": sums.weighted_delta().reshape(-1),
            "n_images": n,
            "ci_low": low.reshape(-1),
            "ci_high": high.reshape(-1),
            "mean_delta": mean.reshape(-1),
            "t_stat": t_stat.reshape(-1),
            "p_value": p_value.reshape(-1),
            "q_value": q_value.reshape(-1),
        }
    )
    return frame.sort_values(["prototype", "modification", "strength"], kind="stable").reset_index(
        drop=True
    )


def run_explain(
    model: PrototypeModel,
    dataset: ImageFolderDataset,
    out_dir: str | os.PathLike,
    config: ExplainConfig | None = None,
    *,
    compare_with: str | os.PathLike | None = None,
    describe: dict[str, Any] | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    overwrite: bool = False,
) -> ExplainResult | None:
    """Explain ``dataset`` with ``model`` into ``out_dir``; resumes an interrupted run.

    ``rank``/``world_size`` default to the torch.distributed process group (or 0/1). Every rank
    computes its chunks; rank 0 then writes the outputs and returns the result (others: None).
    A finished explanation with the same settings is returned as it is; one with other settings
    is refused unless ``overwrite``. Rank 0 holds the lock on ``out_dir`` throughout.
    ``config.calibrate`` (a ΔE) replaces the strengths by calibrated ones, recorded in
    ``explain.json``; ``config.on_error`` is for whoever opens ``dataset``.
    """
    config = config or ExplainConfig()
    config.check()
    out_dir = Path(out_dir)
    default_rank, default_world = _rank_world()
    rank = default_rank if rank is None else rank
    world = default_world if world_size is None else world_size
    extra = {"data_root": str(getattr(dataset, "root", "")), **(describe or {})}
    if config.calibrate:
        config, extra["calibration"] = calibrated_config(
            config, dataset, model.input_spec.image_size)
    plan = _plan(model, dataset, config, extra)
    # only rank 0 reads it; under torchrun the other ranks may get here before the split that
    # --compare-with names has been finalised by rank 0
    if rank == 0 and compare_with is not None and not (Path(compare_with) / GLOBAL_FILE).is_file():
        raise UserError(f"--compare-with {compare_with}: {GLOBAL_FILE} not found there")
    with locked_output(out_dir, "explain", rank=rank):
        if is_already_complete(out_dir, plan.description, overwrite):
            return _finished_result(out_dir) if rank == 0 else None
        return _explain_locked(model, dataset, out_dir, config, plan, rank, world, compare_with)


def _finished_result(out_dir: Path) -> ExplainResult:
    summary = read_json(out_dir / "stats.json")
    table = pd.read_csv(out_dir / GLOBAL_FILE)
    return ExplainResult(out_dir, table, summary, summary["n_images"], already_complete=True)


def _explain_locked(
    model: PrototypeModel, dataset, out_dir: Path, config: ExplainConfig, plan: _Plan, rank: int,
    world: int,
    compare_with: str | os.PathLike | None,
) -> ExplainResult | None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # rank 0 has cleared stale temporaries before anyone writes
    device = resolve_device(config.device)
    model = model.to(device).eval()
    _compute_shard(model, dataset, out_dir, config, plan, rank, world, device)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    if rank != 0:
        return None
    return _finalise(
        model, out_dir, config, plan, world, Path(compare_with) if compare_with else None
    )


@torch.inference_mode()
def explain_image(
    model: PrototypeModel,
    image: Image.Image,
    prototype: int | None = None,
    modifications: list[str] | None = None,
    strengths: dict[str, list[float]] | None = None,
    family: str = DEFAULT_FAMILY,
    device: str | torch.device = "cpu",
    modify_at: str = "native",
) -> pd.DataFrame:
    """Per-characteristic local importance for one PIL image (faithful path; ``modify_at`` as in
    :class:`ExplainConfig`).

    One row per (prototype, modification, strength), or only prototype ``prototype``.
    """
    settings = resolve_settings(modifications, strengths, family)
    spec = model.input_spec
    transform = eval_transform(spec.image_size, spec.mean, spec.std)
    prepared = modification_input(modify_at, spec.image_size)(image.convert("RGB"))
    versions = torch.stack([transform(v) for v in image_versions(prepared, settings)])
    model = model.to(resolve_device(device)).eval()
    similarity, delta = score_batch(model, versions[None].to(resolve_device(device)))
    similarity, delta = similarity[0].cpu().numpy(), delta[0].cpu().numpy()  # (P,), (K, P)
    prototypes = np.arange(len(similarity)) if prototype is None else np.array([prototype])
    if prototypes.max() >= len(similarity) or prototypes.min() < 0:
        raise UserError(f"prototype {prototype} does not exist; the model has {len(similarity)}")
    k = len(settings)
    s = np.repeat(similarity[prototypes], k)
    d = delta[:, prototypes].T.reshape(-1)
    return pd.DataFrame(
        {
            "prototype": np.repeat(prototypes, k),
            "prototype_class": model.main_class.cpu().numpy()[np.repeat(prototypes, k)],
            "modification": [s.name for s in settings] * len(prototypes),
            "strength": [s.strength for s in settings] * len(prototypes),
            "orig_similarity": s,
            "delta": d,
            "relative_delta": d / s,
        }
    )
