"""Linked folders in an image dataset: loops and links into other classes are read once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from protoexplain.data import ImageFolderDataset


def _images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        Image.new("RGB", (8, 8), (index * 40, 0, 0)).save(folder / f"img{index}.png")


@pytest.fixture
def linked_dataset(tmp_path) -> Path:
    root = tmp_path / "data"
    _images(root / "c0", 3)
    _images(root / "c1", 4)
    _images(tmp_path / "elsewhere" / "more", 2)
    os.symlink("..", root / "c0" / "loop")  # back to the dataset root
    os.symlink(".", root / "c1" / "self")  # onto its own folder
    os.symlink("../c1", root / "c0" / "other_class")  # another class's images
    os.symlink(tmp_path / "elsewhere", root / "c1" / "outside")  # outside the root: followed
    return root


def test_loops_and_links_into_other_classes_are_not_read(linked_dataset):
    with pytest.warns(UserWarning, match="linked folder"):
        dataset = ImageFolderDataset(linked_dataset)
    counts = {name: dataset.targets.count(label) for name, label in dataset.class_to_idx.items()}
    assert counts == {"c0": 3, "c1": 4 + 2}
    real = [path.resolve() for path, _ in dataset.samples]
    assert len(set(real)) == len(real) == 9


def test_a_dataset_without_links_gives_no_warning(tmp_path, recwarn):
    _images(tmp_path / "data" / "c0", 2)
    _images(tmp_path / "data" / "c1", 1)
    dataset = ImageFolderDataset(tmp_path / "data")
    assert len(dataset) == 3
    assert not [w for w in recwarn if "linked folder" in str(w.message)]
