"""Offline augmentation of an ImageFolder tree (the original 30 copies per image, method §1)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from protoexplain.data.augmentation import PIPELINES, augment_image, derive_rng
from protoexplain.data.folder import ImageFolderDataset, check_on_error
from protoexplain.data.images import load_rgb, save_image
from protoexplain.errors import UserError
from protoexplain.outputs import locked_output
from protoexplain.progress import progress_bar


@dataclass
class AugmentSummary:
    """What :func:`augment_folder` did."""

    out_dir: Path
    images: int = 0
    written: int = 0
    existing: int = 0
    skipped: list[str] = field(default_factory=list)


def augmented_name(source: Path, pipeline: str, copy: int) -> str:
    """File name of one augmented copy: ``<stem>_<pipeline>_<copy:02d><ext>``."""
    return f"{source.stem}_{pipeline}_{copy:02d}{source.suffix.lower()}"


def augment_folder(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    seed: int = 0,
    copies_per_pipeline: int = 10,
    on_error: str = "error",
    quality: int = 95,
    progress: bool = True,
) -> AugmentSummary:
    """Write ``copies_per_pipeline`` copies per pipeline of every image (originals not included).

    Each copy's randomness derives from (seed, image path relative to ``in_dir``, pipeline, copy),
    so output does not depend on order or on interruptions; existing outputs are kept (resume).
    """
    check_on_error(on_error)
    if copies_per_pipeline < 1:
        raise UserError(f"copies per pipeline must be at least 1, got {copies_per_pipeline}")
    dataset = ImageFolderDataset(in_dir, on_error=on_error)
    out = Path(out_dir)
    if out.resolve() == dataset.root.resolve():
        raise UserError(f"output folder {out} is the input folder; choose another folder")
    with locked_output(out, "augment"):
        return _write_copies(dataset, out, seed, copies_per_pipeline, on_error, quality, progress)


def _write_copies(
    dataset: ImageFolderDataset, out: Path, seed: int, copies_per_pipeline: int, on_error: str,
    quality: int, progress: bool,
) -> AugmentSummary:
    summary = AugmentSummary(out)
    for path, _ in progress_bar(dataset.samples, desc="augment", unit="img", disable=not progress):
        relative = path.relative_to(dataset.root)
        targets = [
            (pipeline, copy, out / relative.parent / augmented_name(path, pipeline, copy))
            for pipeline in PIPELINES
            for copy in range(copies_per_pipeline)
        ]
        summary.images += 1
        todo = [t for t in targets if not t[2].exists()]
        summary.existing += len(targets) - len(todo)
        if not todo:
            continue
        try:
            image = load_rgb(path)
        except UserError as error:
            if on_error == "error":
                raise
            warnings.warn(f"skipping unreadable image: {error}", stacklevel=2)
            summary.skipped.append(str(path))
            continue
        for pipeline, copy, target in todo:
            rng = derive_rng(seed, relative.as_posix(), pipeline, copy)
            save_image(augment_image(image, pipeline, rng), target, quality=quality)
            summary.written += 1
    return summary
