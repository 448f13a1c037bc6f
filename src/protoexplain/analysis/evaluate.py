"""Accuracy of one model or an ensemble (sum of logits), per class, with a confusion matrix.

Evaluation runs under ``torch.inference_mode`` and restores each model's train/eval mode: it never
changes a model.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from protoexplain.data import ImageFolderDataset, eval_transform, make_loader
from protoexplain.errors import UserError
from protoexplain.fileio import atomic_open, write_json
from protoexplain.models import PrototypeModel, model_device
from protoexplain.progress import progress_bar
from protoexplain.tomlconfig import setting


@dataclass
class EvaluateConfig:
    """Settings of the evaluate step (``protoexplain evaluate``, the pipeline's ``[evaluate]``)."""

    batch_size: int = setting(100, "images per batch")
    workers: int = setting(0, "data-loading worker processes")

    def check(self) -> None:
        """Raise :class:`UserError` for values that cannot work."""
        if self.batch_size < 1 or self.workers < 0:
            raise UserError(f"batch-size must be at least 1 and workers 0 or more (got "
                            f"{self.batch_size}, {self.workers})")


@dataclass
class Evaluation:
    """Logits of every model (M, N, C) on the images, their labels (N,) and the class names;
    ``images``: each image's path relative to ``data_root`` (POSIX), in the same order."""

    logits: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    model_names: list[str]
    images: list[str] = field(default_factory=list)
    data_root: str | None = None

    @property
    def ensemble_logits(self) -> np.ndarray:
        """(N, C) sum of the members' logits."""
        return self.logits.sum(axis=0)


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows whose label is among the ``k`` largest logits."""
    k = min(k, logits.shape[1])
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts: rows true class, columns predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, logits.argmax(axis=1)), 1)
    return matrix


def check_classes(
    model: PrototypeModel, dataset_classes: Sequence[str], name: str, root: Path
) -> None:
    """Stop when a model and a data folder differ in class count; warn when names differ."""
    if len(dataset_classes) != model.num_classes:
        raise UserError(
            f"{root} has {len(dataset_classes)} class folders but {name} has "
            f"{model.num_classes} classes; use a data folder with one folder per class of the model"
        )
    differing = [(index, folder, known) for index, (folder, known)
                 in enumerate(zip(dataset_classes, model.class_names, strict=True))
                 if folder != known]
    if differing:
        index, folder, known = differing[0]
        warnings.warn(
            f"{len(differing)} class folders of {root} are named differently from the classes "
            f"of {name} (first: folder {index} is {folder!r}, the model's class {index} is "
            f"{known!r}); labels follow the sorted folder order",
            stacklevel=2,
        )


@torch.inference_mode()
def predict_logits(
    model: PrototypeModel,
    root: str | Path,
    *,
    batch_size: int = 100,
    workers: int = 0,
    progress: bool = False,
    desc: str = "evaluate",
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(N, C) logits, (N,) labels, the class names and the images' paths relative to ``root``, in
    dataset order (unreadable images skipped with ``on_error="skip"`` are left out)."""
    spec = model.input_spec
    dataset = ImageFolderDataset(root, eval_transform(spec.image_size, spec.mean, spec.std))
    check_classes(model, dataset.classes, desc, Path(root))
    device = model_device(model)
    logits = torch.zeros(len(dataset), model.num_classes)
    seen = torch.zeros(len(dataset), dtype=torch.bool)
    was_training = model.training
    model.eval()
    try:
        loader = make_loader(dataset, batch_size=batch_size, workers=workers)
        for batch in progress_bar(loader, desc=desc, unit="batch", disable=not progress):
            logits[batch.indices] = model(batch.images.to(device)).float().cpu()
            seen[batch.indices] = True
    finally:
        model.train(was_training)
    labels = np.asarray(dataset.targets)
    kept = seen.numpy()
    images = [Path(path).relative_to(dataset.root).as_posix()
              for (path, _), keep in zip(dataset.samples, kept, strict=True) if keep]
    return logits[seen].numpy(), labels[kept], dataset.classes, images


def evaluate_models(
    models: Sequence[PrototypeModel],
    root: str | Path,
    *,
    names: Sequence[str] | None = None,
    batch_size: int = 100,
    workers: int = 0,
    progress: bool = False,
) -> Evaluation:
    """Logits of every model on the images of ``root`` (same images, same order)."""
    names = list(names) if names is not None else [f"model{i}" for i in range(len(models))]
    if len({m.num_classes for m in models}) > 1:
        raise UserError("the models have different class counts; an ensemble needs equal classes")
    all_logits, labels, classes, images = [], None, [], []
    for model, name in zip(models, names, strict=True):
        logits, labels, classes, images = predict_logits(
            model, root, batch_size=batch_size, workers=workers, progress=progress, desc=name
        )
        all_logits.append(logits)
    return Evaluation(np.stack(all_logits), labels, list(classes), names, images, str(root))


def metrics(evaluation: Evaluation) -> dict:
    """The content of ``metrics.json``: top-1/top-5 per model and of the ensemble."""
    labels = evaluation.labels

    def scores(logits: np.ndarray) -> dict:
        return {
            "top1": top_k_accuracy(logits, labels, 1),
            "top5": top_k_accuracy(logits, labels, 5),
        }

    models = [
        {"model": name, **scores(logits)}
        for name, logits in zip(evaluation.model_names, evaluation.logits, strict=True)
    ]
    ensemble = None
    if len(models) > 1:
        ensemble = {"models": evaluation.model_names, **scores(evaluation.ensemble_logits)}
    return {"models": models, "ensemble": ensemble, "n_images": len(labels),
            "data": evaluation.data_root}


def predictions(evaluation: Evaluation) -> pd.DataFrame:
    """One row per image (of the ensemble when there are several models): ``image, true,
    predicted`` (class names), ``correct`` and ``probability`` (softmax of the predicted class)."""
    logits = evaluation.ensemble_logits.astype(np.float64)
    predicted = logits.argmax(axis=1)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probability = shifted[np.arange(len(predicted)), predicted] / shifted.sum(axis=1)
    names = np.asarray(evaluation.class_names, dtype=object)
    return pd.DataFrame({
        "image": evaluation.images or [""] * len(predicted),
        "true": names[evaluation.labels], "predicted": names[predicted],
        "correct": predicted == evaluation.labels, "probability": probability,
    })


def save_evaluation(evaluation: Evaluation, out_dir: str | Path) -> dict:
    """Write ``metrics.json``, ``per_class.csv``, ``confusion.csv`` and ``predictions.csv`` (of
    the ensemble when there are several models); return the metrics."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = metrics(evaluation)
    logits = evaluation.ensemble_logits
    names = evaluation.class_names
    matrix = confusion_matrix(logits, evaluation.labels, len(names))
    counts = matrix.sum(axis=1)
    correct = np.diag(matrix)
    accuracy = np.divide(correct, counts, out=np.full(len(names), np.nan), where=counts > 0)
    per_class = pd.DataFrame(
        {
            "class": names,
            "n": counts,
            "correct": correct,
            "accuracy": accuracy,
        }
    )
    with atomic_open(out / "per_class.csv", "w", newline="") as handle:
        per_class.to_csv(handle, index=False)
    with atomic_open(out / "confusion.csv", "w", newline="") as handle:
        pd.DataFrame(matrix, index=pd.Index(names, name="true"), columns=names).to_csv(handle)
    with atomic_open(out / "predictions.csv", "w", newline="") as handle:
        predictions(evaluation).to_csv(handle, index=False)
    write_json(out / "metrics.json", result)
    return result
