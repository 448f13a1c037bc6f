"""Global analysis: each prototype's k nearest images, one best patch per image (method §5).

The search is the one vectorised :func:`protoexplain.training.find_nearest_patches` (which also
keeps each neighbour's distance map, so boxes need no second pass). This module adds
``nearest.csv`` (``rank`` starts at 1; boxes are high-activation boxes in pixels of the model's
input size, end exclusive) and, per (prototype, rank), the patch and the heatmap overlay with the
box drawn in. ``distance`` is ProtoPNet's squared L2 distance; for other architectures −similarity.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from protoexplain.analysis.evaluate import check_classes
from protoexplain.analysis.heatmap import boxes, crop, draw_box, save_png, upsample
from protoexplain.analysis.local import prepare_image
from protoexplain.data import ImageFolderDataset, eval_transform, make_loader
from protoexplain.errors import UserError
from protoexplain.fileio import atomic_open
from protoexplain.imaging import heatmap_overlay
from protoexplain.models import PrototypeModel, model_device
from protoexplain.models.nearness import nearness_to_similarity
from protoexplain.outputs import locked_output
from protoexplain.progress import progress_bar
from protoexplain.tomlconfig import setting
from protoexplain.training import find_nearest_patches

NEAREST_COLUMNS = [
    "prototype", "prototype_class", "rank", "image", "image_index", "image_class",
    "distance", "cell_h", "cell_w", "h0", "h1", "w0", "w1",
]


@dataclass
class NearestConfig:
    """Settings of the nearest step (``protoexplain nearest``, the pipeline's ``[nearest]``)."""

    k: int = setting(5, "nearest images per prototype")
    images: bool = setting(True, "write each neighbour's patch and heatmap beside nearest.csv")
    batch_size: int = setting(75, "images per batch")
    workers: int = setting(0, "data-loading worker processes")

    def check(self) -> None:
        """Raise :class:`UserError` for values that cannot work."""
        if min(self.k, self.batch_size) < 1 or self.workers < 0:
            raise UserError(f"k and batch-size must be at least 1 and workers 0 or more (got k="
                            f"{self.k}, batch-size={self.batch_size}, workers={self.workers})")


@dataclass
class Neighbours:
    """(P, k) arrays, best first: dataset index (−1 where fewer than k images), distance, best
    cell; ``similarity_maps`` (P, k, H', W') of each neighbour image."""

    image_index: np.ndarray
    distance: np.ndarray
    cell_h: np.ndarray
    cell_w: np.ndarray
    similarity_maps: np.ndarray


def open_dataset(model: PrototypeModel, root: str | Path) -> ImageFolderDataset:
    """The images of ``root`` with the model's evaluation transform, class count checked."""
    spec = model.input_spec
    dataset = ImageFolderDataset(root, eval_transform(spec.image_size, spec.mean, spec.std))
    check_classes(model, dataset.classes, "the model", Path(root))
    return dataset


def find_neighbours(
    model: PrototypeModel,
    dataset: ImageFolderDataset,
    k: int,
    *,
    batch_size: int = 75,
    workers: int = 0,
    progress: bool = False,
) -> Neighbours:
    """The ``k`` nearest images of every prototype among all images of ``dataset``."""
    if k < 1:
        raise UserError(f"--k must be at least 1 (got {k})")
    loader = make_loader(dataset, batch_size=batch_size, workers=workers)
    was_training = model.training
    try:
        found = find_nearest_patches(model, loader, k, False, keep_maps=True, progress=progress)
    finally:
        model.train(was_training)
    with torch.inference_mode():
        maps = found.maps.to(model_device(model))
        similarity = nearness_to_similarity(model, maps)
    return Neighbours(
        image_index=found.image_index.numpy().astype(np.int64),
        distance=found.distance.float().numpy(),
        cell_h=found.cell_h.numpy().astype(np.int64),
        cell_w=found.cell_w.numpy().astype(np.int64),
        similarity_maps=similarity.float().cpu().numpy(),
    )


def nearest_table(
    model: PrototypeModel,
    dataset: ImageFolderDataset,
    neighbours: Neighbours,
    out_dir: str | Path | None = None,
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """The rows of ``nearest.csv``; with ``out_dir``, also the patch and heatmap images."""
    size = model.input_spec.image_size
    j, r = np.nonzero(neighbours.image_index >= 0)
    maps = neighbours.similarity_maps[j, r]
    ha = boxes(maps, size) if len(j) else np.zeros((0, 4), dtype=np.int64)
    index = neighbours.image_index[j, r]
    if out_dir is not None:
        uses: dict[int, list[int]] = defaultdict(list)
        for row, image_index in enumerate(index.tolist()):
            uses[image_index].append(row)
        for image_index in progress_bar(sorted(uses), desc="nearest images", disable=not progress):
            picture = prepare_image(dataset.load_image(image_index), size).permute(1, 2, 0).numpy()
            rows = uses[image_index]
            for row, activation in zip(rows, upsample(maps[rows], size), strict=True):
                stem = Path(out_dir) / f"p{j[row]:04d}_r{r[row] + 1:02d}"
                save_png(f"{stem}_patch.png", crop(picture, ha[row]))
                save_png(f"{stem}_heatmap.png",
                         draw_box(heatmap_overlay(picture, activation), ha[row]))
    labels = np.asarray(dataset.targets)
    return pd.DataFrame(
        {
            "prototype": j,
            "prototype_class": model.main_class.cpu().numpy()[j],
            "rank": r + 1,
            "image": [dataset.samples[i][0].relative_to(dataset.root).as_posix() for i in index],
            "image_index": index,
            "image_class": labels[index],
            "distance": neighbours.distance[j, r],
            "cell_h": neighbours.cell_h[j, r],
            "cell_w": neighbours.cell_w[j, r],
            "h0": ha[:, 0],
            "h1": ha[:, 1],
            "w0": ha[:, 2],
            "w1": ha[:, 3],
        },
        columns=NEAREST_COLUMNS,
    )


NEAREST_IMAGE = re.compile(r"^p\d{4}_r\d{2}_(patch|heatmap)\.png$")


def remove_nearest_images(out_dir: str | Path) -> int:
    """Remove what an earlier ``nearest`` wrote into ``out_dir``, its table first (a rerun with a
    smaller ``k`` must not leave old ranks beside the new); return how many images."""
    folder = Path(out_dir)
    (folder / "nearest.csv").unlink(missing_ok=True)
    old = [path for path in folder.glob("p*_r*_*.png") if NEAREST_IMAGE.match(path.name)]
    for path in old:
        path.unlink()
    return len(old)


def save_nearest(table: pd.DataFrame, out_dir: str | Path) -> Path:
    """Write ``nearest.csv`` into ``out_dir``."""
    path = Path(out_dir) / "nearest.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", newline="") as handle:
        table.to_csv(handle, index=False)
    return path


def write_nearest(
    model: PrototypeModel, dataset: ImageFolderDataset, out_dir: str | Path,
    config: NearestConfig, *, progress: bool = False,
) -> tuple[pd.DataFrame, Path]:
    """Find every prototype's ``config.k`` nearest images of ``dataset`` and write them into
    ``out_dir`` (locked; what an earlier run left there is replaced); the table and its path."""
    config.check()
    neighbours = find_neighbours(model, dataset, config.k, batch_size=config.batch_size,
                                 workers=config.workers, progress=progress)
    with locked_output(out_dir, "nearest"):
        remove_nearest_images(out_dir)
        table = nearest_table(model, dataset, neighbours, out_dir if config.images else None,
                              progress=progress)
        return table, save_nearest(table, out_dir)
