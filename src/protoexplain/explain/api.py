"""The Python API of the engine: explain a dataset or a list of images, on disk or in memory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from protoexplain.data.imagelist import ImageItem, ImageListDataset
from protoexplain.explain.engine import ExplainConfig, run_explain
from protoexplain.explain.result import ExplainResult
from protoexplain.models.protocol import PrototypeModel


def explain_dataset(
    model: PrototypeModel,
    dataset: Any,
    modifications: list[str] | None = None,
    strengths: dict[str, list[float]] | None = None,
    out_dir: str | os.PathLike | None = None,
    **options: Any,
) -> ExplainResult:
    """Explain every image of ``dataset``; ``options`` are :class:`ExplainConfig` fields.

    ``dataset`` is an :class:`~protoexplain.data.ImageFolderDataset`, an
    :class:`~protoexplain.data.ImageListDataset` or anything with ``samples``, ``classes`` and
    ``load_image(i)``. With ``out_dir`` the files are written there (and a finished explanation
    with the same settings is reused); without, the result holds both tables in memory and nothing
    is left on disk. Progress bars are off unless ``progress=True``.
    """
    options.setdefault("progress", False)
    config = ExplainConfig(modifications=modifications, strengths=dict(strengths or {}), **options)
    if out_dir is not None:
        result = run_explain(model, dataset, out_dir, config, rank=0, world_size=1)
        assert result is not None
        return result
    with tempfile.TemporaryDirectory(prefix="protoexplain-") as tmp:
        result = run_explain(model, dataset, Path(tmp) / "explain", config, rank=0, world_size=1)
        assert result is not None
        local = pd.read_parquet(result.local_scores_path)
    return replace(result, out_dir=None, local=local)


def explain_images(
    model: PrototypeModel,
    images: Sequence[ImageItem],
    labels: Sequence[int | str] | None = None,
    modifications: list[str] | None = None,
    strengths: dict[str, list[float]] | None = None,
    out_dir: str | os.PathLike | None = None,
    on_error: str = "error",
    **options: Any,
) -> ExplainResult:
    """Explain a list of images (file paths and/or PIL images) as :func:`explain_dataset` does.

    ``labels`` (class indices or names of the model's classes) only fill the local table's
    ``class`` column; without them it reads ``unlabelled``. ``on_error`` is for unreadable files
    (``error`` or ``skip``).
    """
    classes = list(model.class_names) if labels is not None else None
    dataset = ImageListDataset(images, labels, classes=classes, on_error=on_error)
    return explain_dataset(model, dataset, modifications, strengths, out_dir, **options)
