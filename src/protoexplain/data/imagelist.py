"""A dataset of explicitly listed images: file paths and/or PIL images, with optional labels.

For notebooks and scripts that hold images rather than an ImageFolder tree. It offers what the
engine and the loaders need from :class:`~protoexplain.data.ImageFolderDataset`: ``samples``
(name, label), ``classes``, ``load_image(i)``, ``on_error`` and ``dataset[i]``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from protoexplain.data.folder import check_on_error
from protoexplain.data.images import load_rgb, to_rgb
from protoexplain.errors import UserError

#: The one class of images listed without labels.
UNLABELLED = "unlabelled"

ImageItem = str | os.PathLike | Image.Image


def _default_classes(labels: Sequence[int | str]) -> list[str]:
    if all(isinstance(label, str) for label in labels):
        return sorted(set(labels))  # type: ignore[arg-type]
    return [str(i) for i in range(max(int(label) for label in labels) + 1)]


def _label_indices(labels: Sequence[int | str], classes: list[str]) -> list[int]:
    index_of = {name: i for i, name in enumerate(classes)}
    indices = []
    for position, label in enumerate(labels):
        index = index_of.get(label) if isinstance(label, str) else int(label)
        if index is None or not 0 <= index < len(classes):
            raise UserError(
                f"label {label!r} of image {position} is not one of the {len(classes)} classes "
                f"(first: {classes[:3]}); give a class name or an index below {len(classes)}"
            )
        indices.append(index)
    return indices


class ImageListDataset(Dataset):
    """The images in ``images`` (paths to files and/or PIL images), in that order.

    ``labels`` gives one class per image, as an index into ``classes`` or a class name; without
    labels every image belongs to the single class ``unlabelled``. ``classes`` defaults to the
    sorted label names, or ``"0"`` … ``"N"`` for indices. Every image is used as RGB by the rules
    of :func:`~protoexplain.data.load_rgb`. Files are read when used; ``on_error`` applies to them
    as in :class:`~protoexplain.data.ImageFolderDataset`. An in-memory image is named
    ``<image i>`` in the outputs, a file by its path as given.
    """

    def __init__(
        self,
        images: Sequence[ImageItem],
        labels: Sequence[int | str] | None = None,
        classes: Sequence[str] | None = None,
        transform: Callable[[Image.Image], Any] | None = None,
        on_error: str = "error",
    ) -> None:
        self.images = list(images)
        self.transform = transform
        self.on_error = check_on_error(on_error)
        if not self.images:
            raise UserError("no images given: pass a list of file paths and/or PIL images")
        for position, item in enumerate(self.images):
            if not isinstance(item, str | os.PathLike | Image.Image):
                raise UserError(
                    f"image {position} is a {type(item).__name__}; give a file path or a PIL image"
                )
        if labels is None:
            if classes is not None:
                raise UserError("classes were given without labels; give labels for the images")
            self.classes: list[str] = [UNLABELLED]
            self.targets: list[int] = [0] * len(self.images)
        else:
            if len(labels) != len(self.images):
                raise UserError(f"{len(labels)} labels given for {len(self.images)} images")
            self.classes = list(classes) if classes is not None else _default_classes(labels)
            self.targets = _label_indices(labels, self.classes)
        self.class_to_idx = {name: index for index, name in enumerate(self.classes)}
        self.samples: list[tuple[str, int]] = [
            (f"<image {i}>" if isinstance(item, Image.Image) else os.fspath(item), label)
            for i, (item, label) in enumerate(zip(self.images, self.targets, strict=True))
        ]

    def __len__(self) -> int:
        return len(self.images)

    def load_image(self, index: int) -> Image.Image:
        """The RGB image ``index`` at its native resolution (in-memory images converted by the same
        rules as files, as a copy)."""
        item = self.images[index]
        return to_rgb(item) if isinstance(item, Image.Image) else load_rgb(item)

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
        image = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index], index
