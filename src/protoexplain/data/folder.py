"""ImageFolder-layout datasets (``root/<class>/<image>``) that always decode to RGB."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from protoexplain.data.images import is_image_file, load_rgb
from protoexplain.errors import UserError

ON_ERROR_POLICIES = ("error", "skip")


def _visible(name: str) -> bool:
    return not name.startswith(".") and not name.startswith("__")


def check_on_error(on_error: str) -> str:
    """Validate an unreadable-image policy name (``error`` or ``skip``)."""
    if on_error not in ON_ERROR_POLICIES:
        raise UserError(f"unknown on_error policy {on_error!r}: use 'error' or 'skip'")
    return on_error


def find_classes(root: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``root`` (hidden and ``__x`` folders ignored)."""
    entries = os.scandir(root)
    return sorted(entry.name for entry in entries if entry.is_dir() and _visible(entry.name))


def _contains(outer: Path, inner: Path) -> bool:
    return inner == outer or outer in inner.parents


def list_images(folder: Path, root: Path | None = None) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted), ignoring hidden files and folders.

    Symbolic links are followed, also out of the dataset, except a linked folder that would read
    images twice: one that resolves to ``folder`` or a folder above it (a loop), one already
    visited, or one elsewhere inside ``root`` (another class's folder). Those are skipped with
    one warning naming the first.
    """
    top = folder.resolve()
    dataset = (root or folder).resolve()
    visited = {top}
    skipped: list[Path] = []

    def keep(current: str, name: str) -> bool:
        if not _visible(name):
            return False
        path = Path(current) / name
        real = path.resolve()
        loops = path.is_symlink() and (
            _contains(real, top) or (_contains(dataset, real) and not _contains(top, real))
        )
        if real in visited or loops:
            skipped.append(path)
            return False
        visited.add(real)
        return True

    found = []
    for current, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if keep(current, d))
        found.extend(Path(current) / name for name in files if is_image_file(name))
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} linked folder(s) under {folder} that loop back or lead to "
            f"folders read elsewhere (first: {skipped[0]}); each image is read once",
            stacklevel=2,
        )
    return sorted(found)


class ImageFolderDataset(Dataset):
    """Images in ``root/<class>/...``; labels follow the sorted class-folder names.

    ``dataset[i]`` is ``(transform(image), label, i)``. ``on_error`` says what loaders built with
    :func:`protoexplain.data.make_loader` do with unreadable images: ``error`` (stop with a
    one-line message naming the file) or ``skip`` (warn once and count it). ``classes`` enforces a
    class list (e.g. the training classes when opening a test folder).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable[[Image.Image], Any] | None = None,
        on_error: str = "error",
        classes: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.transform = transform
        self.on_error = check_on_error(on_error)
        if not self.root.is_dir():
            raise UserError(f"image folder {self.root} does not exist or is not a folder")
        found = find_classes(self.root)
        if not found:
            raise UserError(
                f"image folder {self.root} has no class sub-folders; expected root/<class>/<image>"
            )
        if classes is not None and list(classes) != found:
            missing = sorted(set(classes) - set(found))
            extra = sorted(set(found) - set(classes))
            raise UserError(
                f"image folder {self.root} has {len(found)} classes but {len(classes)} were "
                f"expected (missing: {missing[:5]}, unexpected: {extra[:5]}); use the same classes"
            )
        self.classes: list[str] = found
        self.class_to_idx = {name: index for index, name in enumerate(found)}
        self.samples: list[tuple[Path, int]] = [
            (path, label)
            for label, name in enumerate(found)
            for path in list_images(self.root / name, self.root)
        ]
        if not self.samples:
            raise UserError(
                f"image folder {self.root} contains no images (looked for .jpg, .png, …)"
            )
        self.targets: list[int] = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def load_image(self, index: int) -> Image.Image:
        """The RGB image of sample ``index`` at its native resolution."""
        return load_rgb(self.samples[index][0])

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
        image = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.samples[index][1], index
