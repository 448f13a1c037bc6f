"""Write modified copies of an image folder, as the original workflow did, for inspection."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from protoexplain.data import save_image
from protoexplain.data.loader import LoadFailure
from protoexplain.errors import UserError
from protoexplain.explain.modifications import ModificationSetting
from protoexplain.outputs import locked_output
from protoexplain.progress import progress_bar

FORMATS = ("png", "jpg")


def setting_folder(setting: ModificationSetting) -> str:
    """``<name>_<strength>`` (strength in its shortest form, e.g. ``contrast_0.45``)."""
    return f"{setting.name}_{setting.strength:g}"


def output_names(paths: Sequence[Path], root: Path, suffix: str) -> list[Path]:
    """Each image's path relative to ``root`` with ``suffix``, unique even where letter case is
    ignored: images that would share a name (``a.jpg`` and ``a.png``) keep their old suffix in it
    (``a_jpg.png``, ``a_png.png``), and a number is added while a name is still taken."""
    names = [path.relative_to(root).with_suffix(suffix) for path in paths]
    counts: dict[str, int] = {}
    for name in names:
        counts[str(name).casefold()] = counts.get(str(name).casefold(), 0) + 1
    taken: set[str] = set()
    unique = []
    for name, path in zip(names, paths, strict=True):
        if counts[str(name).casefold()] > 1:
            name = name.with_name(f"{name.stem}_{path.suffix.lstrip('.')}{suffix}")
        candidate, number = name, 2
        while str(candidate).casefold() in taken:
            candidate = name.with_name(f"{name.stem}_{number}{suffix}")
            number += 1
        taken.add(str(candidate).casefold())
        unique.append(candidate)
    return unique


class _Writer(Dataset):
    def __init__(self, dataset: Any, settings: Sequence[ModificationSetting], out_dir: Path,
                 image_format: str) -> None:  # fmt: skip
        self.dataset, self.settings = dataset, list(settings)
        self.out_dir = out_dir
        paths = [Path(path) for path, _ in dataset.samples]
        self.names = output_names(paths, Path(dataset.root), f".{image_format}")

    def __len__(self) -> int:
        return len(self.dataset.samples)

    def __getitem__(self, index: int) -> int | LoadFailure:
        path = Path(self.dataset.samples[index][0])
        try:
            image = self.dataset.load_image(index)
        except UserError as error:
            return LoadFailure(index, str(path), str(error))
        for setting in self.settings:
            save_image(setting.apply(image),
                       self.out_dir / setting_folder(setting) / self.names[index])
        return len(self.settings)


def _keep(items: list) -> list:
    return items


def write_modified_folder(
    dataset: Any,
    out_dir: str | os.PathLike,
    settings: Sequence[ModificationSetting],
    image_format: str = "png",
    workers: int = 0,
    progress: bool = True,
) -> tuple[int, list[str]]:
    """Write ``out_dir/<name>_<strength>/<class>/<file>`` for every image and setting.

    PNG (lossless) by default; ``jpg`` at quality 95. Returns (files written, skipped images).
    """
    if image_format not in FORMATS:
        raise UserError(f"unknown image format {image_format!r}; use png or jpg")
    folders = [setting_folder(setting) for setting in settings]
    if len({folder.casefold() for folder in folders}) < len(folders):
        raise UserError(f"two settings would share an output folder ({', '.join(folders)}); "
                        "give strengths that differ in their first six digits")
    root = Path(dataset.root).resolve()
    if Path(out_dir).resolve().is_relative_to(root):
        raise UserError(f"{out_dir} lies inside the image folder {dataset.root}: the copies would "
                        "become extra classes of it; choose an output folder outside it")
    writer = _Writer(dataset, settings, Path(out_dir), image_format)
    loader = DataLoader(writer, batch_size=1, num_workers=workers, collate_fn=_keep)
    written, skipped = 0, []
    with locked_output(out_dir, "modify"):
        for (item,) in progress_bar(loader, unit="img", desc="modify", disable=not progress):
            if isinstance(item, LoadFailure):
                if getattr(dataset, "on_error", "error") == "error":
                    raise UserError(f"{item.message} (or use --on-error skip)")
                skipped.append(item.path)
            else:
                written += item
    return written, skipped
