"""Robust RGB loading, ImageFolderDataset, loaders with unreadable images, transforms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data.distributed import DistributedSampler

from helpers_data import random_rgb
from protoexplain.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageFolderDataset,
    eval_transform,
    load_rgb,
    make_loader,
    train_transform,
)
from protoexplain.errors import UserError


@pytest.fixture
def rgb():
    return random_rgb(np.random.default_rng(0), 12, 16)


def test_load_rgb_converts_every_mode(tmp_path, rgb):
    gray = rgb[:, :, 0]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "gray.png")), np.dstack([gray] * 3))

    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "pal.png")
    with Image.open(tmp_path / "pal.png") as palette_image:
        want = np.asarray(palette_image.convert("RGB"))
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "pal.png")), want)

    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    got = np.asarray(load_rgb(tmp_path / "cmyk.jpg")).astype(int)
    assert got.shape == rgb.shape and np.abs(got - rgb).mean() < 8


def test_alpha_is_composited_on_white(tmp_path, rgb):
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, :8] = 255
    alpha[:, 8:12] = 128
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "rgba.png")
    got = np.asarray(load_rgb(tmp_path / "rgba.png")).astype(int)
    assert np.array_equal(got[:, :8], rgb[:, :8])
    assert (got[:, 12:] == 255).all()
    half = rgb[:, 8:12].astype(float) * 128 / 255 + 255 * (127 / 255)
    assert np.abs(got[:, 8:12] - half).max() <= 1.5


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896], [65535, 1000, 50000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    got = np.asarray(load_rgb(tmp_path / "deep.png"))
    want = np.rint(values.astype(float) * 255 / 65535).astype(np.uint8)
    assert np.array_equal(got[:, :, 0], want) and np.array_equal(got[:, :, 2], want)


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated"])
def test_unreadable_files_raise_user_error_naming_the_file(tmp_path, rgb, content):
    path = tmp_path / "bad_one.png"
    if content == "truncated":
        Image.fromarray(random_rgb(np.random.default_rng(1), 64, 64)).save(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=r"bad_one\.png") as caught:
        load_rgb(path)
    assert "\n" not in str(caught.value)


def _tree(root, rgb, bad: bool = False):
    for name in ("b_class", "a_class"):
        (root / name).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.roll(rgb, k, axis=1)).save(root / name / f"img{k}.png")
    (root / "a_class" / ".DS_Store").write_bytes(b"junk")
    (root / "a_class" / "notes.txt").write_text("not an image")
    (root / "a_class" / "._img0.png").write_bytes(b"mac resource fork")
    (root / ".ipynb_checkpoints").mkdir()
    Image.fromarray(rgb).save(root / ".ipynb_checkpoints" / "x.png")
    (root / "b_class" / ".ipynb_checkpoints").mkdir()
    Image.fromarray(rgb).save(root / "b_class" / ".ipynb_checkpoints" / "img0-checkpoint.png")
    if bad:
        (root / "b_class" / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")


def test_dataset_lists_classes_and_ignores_stray_files(tmp_path, rgb):
    _tree(tmp_path, rgb)
    ds = ImageFolderDataset(tmp_path, transform=eval_transform(8))
    assert ds.classes == ["a_class", "b_class"]
    assert [p.name for p, _ in ds.samples] == ["img0.png", "img1.png", "img2.png"] * 2
    assert ds.targets == [0, 0, 0, 1, 1, 1]
    image, label, index = ds[4]
    assert image.shape == (3, 8, 8) and label == 1 and index == 4
    assert ds.load_image(0).size == (16, 12)
    with pytest.raises(UserError, match="3 were expected"):
        ImageFolderDataset(tmp_path, classes=["a_class", "b_class", "c_class"])


@pytest.mark.parametrize("kind", ["missing", "empty", "no_images"])
def test_dataset_root_errors(tmp_path, kind):
    root = tmp_path / "root"
    if kind != "missing":
        root.mkdir()
    if kind == "no_images":
        (root / "cls").mkdir()
        (root / "cls" / "readme.txt").write_text("x")
    with pytest.raises(UserError, match="root"):
        ImageFolderDataset(root)


def test_corrupt_image_with_workers_gives_one_line_error(tmp_path, rgb):
    _tree(tmp_path, rgb, bad=True)
    ds = ImageFolderDataset(tmp_path, transform=eval_transform(8))
    loader = make_loader(ds, batch_size=2, workers=2)
    with pytest.raises(UserError) as caught:
        for _ in loader:
            pass
    message = str(caught.value)
    assert type(caught.value) is UserError
    assert "img1.png" in message and "b_class" in message
    assert "\n" not in message and "Traceback" not in message


def test_skip_policy_with_workers_counts_and_warns_once(tmp_path, rgb):
    _tree(tmp_path, rgb, bad=True)
    ds = ImageFolderDataset(tmp_path, transform=eval_transform(8), on_error="skip")
    loader = make_loader(ds, batch_size=2, workers=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # two epochs: still one warning for the file
            seen = [i for batch in loader for i in batch.indices.tolist()]
            assert sorted(seen) == [0, 1, 2, 3, 5]
    messages = [str(w.message) for w in caught if "img1.png" in str(w.message)]
    assert len(messages) == 1
    assert loader.skipped == [str(tmp_path / "b_class" / "img1.png")]


def test_loader_batches_and_distributed_sampler(tmp_path, rgb):
    _tree(tmp_path, rgb)
    ds = ImageFolderDataset(tmp_path, transform=eval_transform(8))
    batches = list(make_loader(ds, batch_size=4))
    assert [b.images.shape[0] for b in batches] == [4, 2]
    assert batches[0].labels.dtype == torch.long
    assert torch.equal(torch.cat([b.labels for b in batches]), torch.tensor(ds.targets))
    halves = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=False)
        loader = make_loader(ds, batch_size=2, sampler=sampler, workers=1)
        halves.append([i for b in loader for i in b.indices.tolist()])
    assert sorted(halves[0] + halves[1]) == list(range(6)) and len(halves[0]) == 3
    generator = torch.Generator().manual_seed(3)
    shuffled = [i for b in make_loader(ds, batch_size=6, shuffle=True, generator=generator)
                for i in b.indices.tolist()]
    assert sorted(shuffled) == list(range(6))


def test_eval_transform_is_plain_resize_and_normalise(rgb):
    image = Image.fromarray(rgb)
    got = eval_transform(10)(image)
    resized = np.asarray(image.resize((10, 10), Image.BILINEAR)).astype(np.float32) / 255
    want = (resized - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert got.shape == (3, 10, 10)
    assert np.allclose(got.numpy(), want.transpose(2, 0, 1), atol=1e-5)


def test_train_transform_shapes_and_seeded_randomness(rgb):
    image = Image.fromarray(random_rgb(np.random.default_rng(5), 40, 30))
    transform = train_transform(16, augment=True)
    torch.manual_seed(0)
    first = [transform(image) for _ in range(4)]
    torch.manual_seed(0)
    again = [transform(image) for _ in range(4)]
    assert all(t.shape == (3, 16, 16) for t in first)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], first[1])
    plain = train_transform(16, augment=False)(image)
    assert torch.equal(plain, eval_transform(16)(image))
