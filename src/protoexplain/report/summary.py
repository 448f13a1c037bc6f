"""The overview's figures (matplotlib, each made again only when its data changed) and the view
of misclassified test images (thumbnails with Pillow)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from protoexplain.report import figures, runinfo
from protoexplain.report.images import file_key, keyed_name, load_image, write_thumbnail
from protoexplain.report.localexp import resolve_image
from protoexplain.report.prototypes import THUMBS, FileNamer

#: Bump when a summary figure is drawn differently, so that reruns draw it again.
FIGURE_VERSION = "1"
ERROR_THUMB_SIDE = 96


def _digest(frame: pd.DataFrame) -> str:
    """A hash of a table's values, index and columns."""
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    parts = (hashed.tobytes(), repr(list(frame.columns)).encode("utf-8"))
    return hashlib.sha1(b"".join(parts)).hexdigest()


def _figure(
    folder: Path, stem: str, data: pd.DataFrame, draw: Callable[[], Figure],
    formats: tuple[str, ...], used: set[str],
) -> dict[str, str]:
    """``figures/<stem>-<hash>.<format>`` for each format, drawn only when one is missing."""
    names = {fmt: keyed_name(stem, FIGURE_VERSION, _digest(data), suffix=f".{fmt}")
             for fmt in formats}
    used.update(names.values())
    if not all((folder / name).is_file() for name in names.values()):
        first = next(iter(names.values()))
        figures.save_figure(draw(), folder / first.rsplit(".", 1)[0], formats)
    return {fmt: f"{folder.name}/{name}" for fmt, name in names.items()}


def summary_figures(
    folder: Path, formats: tuple[str, ...], main_split: str | None,
    matrices: dict[str, pd.DataFrame], training_log: pd.DataFrame | None,
    confusion: pd.DataFrame | None,
) -> tuple[dict[str, dict[str, str]], set[str]]:
    """The overview's figures (name → format → relative path) and every file name they use."""
    used: set[str] = set()
    made: dict[str, dict[str, str]] = {}
    main = matrices.get(main_split) if main_split else None
    if main is not None and len(main):
        made["heatmap"] = _figure(folder, "heatmap", main,
                                  lambda: figures.score_heatmap(main), formats, used)
    if "train" in matrices and "test" in matrices:
        both = matrices["train"].add_suffix(" train").join(
            matrices["test"].add_suffix(" test"), how="outer")
        made["train_test"] = _figure(
            folder, "train_test", both,
            lambda: figures.train_test_scatter(matrices["train"], matrices["test"]), formats, used)
    if training_log is not None and len(training_log):
        made["training"] = _figure(folder, "training", training_log,
                                   lambda: figures.training_curves(training_log), formats, used)
    if confusion is not None and len(confusion) > runinfo.TABLE_CLASSES:
        made["confusion"] = _figure(folder, "confusion", confusion,
                                    lambda: figures.confusion_heatmap(confusion), formats, used)
    return made, used


def misclassified_view(
    predictions: pd.DataFrame | None, limit: int, data_root: Path | None, out: Path,
    namer: FileNamer,
) -> dict | None:
    """The misclassified test images to list (most confident mistakes first, at most ``limit``),
    with thumbnails where the image is found; ``None`` without ``predictions.csv``."""
    if predictions is None:
        return None
    shown, wrong, total = runinfo.misclassified(predictions, limit)
    rows = []
    for k, row in enumerate(shown.itertuples(index=False)):
        path = resolve_image(str(row.image), data_root)
        thumb = (f"{THUMBS}/" + keyed_name(f"error{k:04d}", file_key(path), ERROR_THUMB_SIDE)
                 if path is not None else None)
        target = namer.target(thumb)
        if target is not None:
            image = load_image(path)
            write_thumbnail(np.asarray(image), Path(target), ERROR_THUMB_SIDE)
        rows.append({"image": str(row.image), "true": str(row.true),
                     "predicted": str(row.predicted), "probability": float(row.probability),
                     "thumb": thumb})
    return {"rows": rows, "total_wrong": wrong, "total": total}
