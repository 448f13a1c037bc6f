"""Push and nearest patches against a brute-force search written here."""

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from protoexplain.cli import main
from protoexplain.data import ImageFolderDataset, eval_transform, make_loader
from protoexplain.fileio import read_json
from protoexplain.imaging import draw_box, heatmap_overlay, to_uint8
from protoexplain.models import ModelSpec, ProtoPNet, save_model
from protoexplain.training import (
    find_nearest_patches,
    high_activation_boxes,
    push_prototypes,
    save_push_artifacts,
)

SIZE = 32


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("push_images")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir()
        for i in range(5):
            pixels = rng.integers(0, 256, size=(SIZE + 3 * i, SIZE, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _model(num_classes=2, per_class=3):
    torch.manual_seed(1)
    spec = ModelSpec(
        "small_cnn", num_classes=num_classes, prototype_shape=(per_class * num_classes, 8, 1, 1),
        image_size=SIZE, class_names=[str(c) for c in range(num_classes)],
    )
    model = ProtoPNet(spec).eval()
    with torch.no_grad():  # bring prototypes near the latent range so distances differ
        model.prototype_vectors.mul_(0.5).add_(0.25)
    return model


def _dataset(folder):
    return ImageFolderDataset(folder, eval_transform(SIZE))


def _brute_force(model, dataset, k, own_class_only):
    """Every (prototype, image) pair, one image at a time, sorted by (distance, index)."""
    rows = []
    with torch.no_grad():
        for index in range(len(dataset)):
            image, label, _ = dataset[index]
            latent = model.latent(image[None])[0]
            maps = model.distance_maps(image[None])[0]
            for j in range(model.num_prototypes):
                if own_class_only and int(model.prototype_class[j]) != label:
                    continue
                flat = int(maps[j].flatten().argmin())
                h, w = divmod(flat, maps.shape[2])
                rows.append((j, float(maps[j, h, w]), index, h, w, latent[:, h, w].clone()))
    best = {}
    for j in range(model.num_prototypes):
        mine = sorted((r for r in rows if r[0] == j), key=lambda r: (r[1], r[2]))
        best[j] = mine[:k]
    return best


@pytest.mark.parametrize("own_class_only", [False, True])
def test_nearest_patches_equal_brute_force(folder, own_class_only):
    model, dataset = _model(), _dataset(folder)
    loader = make_loader(dataset, batch_size=3)
    found = find_nearest_patches(model, loader, k=3, own_class_only=own_class_only)
    expected = _brute_force(model, dataset, 3, own_class_only)
    for j, entries in expected.items():
        for slot, (_, distance, index, h, w, _) in enumerate(entries):
            assert int(found.image_index[j, slot]) == index
            assert (int(found.cell_h[j, slot]), int(found.cell_w[j, slot])) == (h, w)
            assert float(found.distance[j, slot]) == pytest.approx(distance, rel=1e-4, abs=1e-5)


def test_missing_entries_are_inf_and_minus_one(folder):
    model, dataset = _model(), _dataset(folder)
    found = find_nearest_patches(model, make_loader(dataset, batch_size=4), k=7,
                                 own_class_only=True)
    assert torch.isinf(found.distance[:, 5:]).all()
    assert (found.image_index[:, 5:] == -1).all()
    assert (found.image_index[:, :5] >= 0).all()


def test_push_picks_global_closest_own_class_patch(folder, caplog):
    model, dataset = _model(num_classes=3), _dataset(folder)  # class 2 has no images
    expected = _brute_force(model, dataset, 1, True)
    before = model.prototype_vectors.detach().clone()
    with caplog.at_level(logging.WARNING):
        result = push_prototypes(model, dataset, batch_size=4)
    assert "left unchanged" in caplog.text
    for j in range(model.num_prototypes):
        vector = model.prototype_vectors[j, :, 0, 0].detach()
        if int(model.prototype_class[j]) == 2:
            assert torch.equal(vector, before[j, :, 0, 0])
            assert not bool(result.pushed[j]) and int(result.image_index[j]) == -1
            continue
        (_, _, index, h, w, latent) = expected[j][0]
        assert torch.allclose(vector, latent, atol=1e-6)
        assert int(result.image_index[j]) == index
        assert (int(result.cell_h[j]), int(result.cell_w[j])) == (h, w)
        box = model.receptive_field().box(h, w, SIZE)
        assert tuple(result.rf_boxes[j].tolist()) == box


def test_high_activation_box_is_tight_box_of_top_pixels():
    maps = torch.zeros(1, 4, 4)
    maps[0, 1, 2] = 10.0
    box = high_activation_boxes(maps, 16)[0].tolist()
    up = torch.nn.functional.interpolate(maps[None], size=(16, 16), mode="bicubic",
                                         align_corners=False)[0, 0].numpy()
    rows, cols = np.nonzero(up >= np.percentile(up, 95))
    assert box == [rows.min(), rows.max() + 1, cols.min(), cols.max() + 1]


def test_artifacts_follow_the_contract(folder, tmp_path):
    model, dataset = _model(num_classes=3), _dataset(folder)
    result = push_prototypes(model, dataset, batch_size=4)
    out = save_push_artifacts(result, model, dataset, tmp_path)
    records = pd.read_csv(out / "records.csv")
    assert list(records.columns) == [
        "prototype", "class_index", "class_name", "pushed", "image_index", "image_path",
        "cell_h", "cell_w", "distance", "rf_h0", "rf_h1", "rf_w0", "rf_w1",
        "ha_h0", "ha_h1", "ha_w0", "ha_w1",
    ]
    assert len(records) == model.num_prototypes
    pushed = records[records.pushed]
    assert all((folder / p).is_file() for p in pushed.image_path)
    rf = np.load(out / "boxes_rf.npy")
    assert rf.shape == (model.num_prototypes, 6)
    assert (rf[:, 5] == model.prototype_class.numpy()).all()
    for j in pushed.prototype:
        for kind in ("crop", "source", "box", "heatmap"):
            assert (out / f"p{j:04d}_{kind}.png").is_file()
        crop = Image.open(out / f"p{j:04d}_crop.png")
        row = records.iloc[j]
        assert crop.size == (row.ha_w1 - row.ha_w0, row.ha_h1 - row.ha_h0)
    assert not (out / f"p{model.num_prototypes - 1:04d}_crop.png").exists()


def test_threaded_images_equal_a_serial_reference_and_no_images_skips_them(folder, tmp_path):
    """Each prototype's PNGs, written in threads grouped by source image, equal what is computed
    here one prototype at a time; ``images=False`` writes the same records and no PNG."""
    model, dataset = _model(num_classes=2, per_class=4), _dataset(folder)
    result = push_prototypes(model, dataset, batch_size=3)
    assert len(set(result.image_index.tolist())) < model.num_prototypes  # images are shared
    out = save_push_artifacts(result, model, dataset, tmp_path / "with")
    for j in range(model.num_prototypes):
        image = np.asarray(dataset.load_image(int(result.image_index[j])).resize(
            (SIZE, SIZE), Image.Resampling.BILINEAR))
        h0, h1, w0, w1 = result.ha_boxes[j].tolist()
        up = torch.nn.functional.interpolate(
            result.similarity_maps[j][None, None].float(), size=(SIZE, SIZE), mode="bicubic",
            align_corners=False)[0, 0].numpy()
        expected = {
            "source": image,
            "crop": image[h0:h1, w0:w1],
            "box": draw_box(image, (h0, h1, w0, w1), (255, 255, 0), 2),
            "heatmap": to_uint8(heatmap_overlay(image / 255.0, up)),
        }
        for kind, pixels in expected.items():
            written = np.asarray(Image.open(out / f"p{j:04d}_{kind}.png"))
            assert np.array_equal(written, pixels), (j, kind)
    bare = save_push_artifacts(result, model, dataset, tmp_path / "without", images=False)
    assert not list(bare.glob("*.png"))
    for name in ("records.csv", "boxes_rf.npy", "boxes_ha.npy"):
        assert (bare / name).read_bytes() == (out / name).read_bytes()


def test_cli_push_no_images_writes_records_only(folder, tmp_path, capsys):
    model = _model(num_classes=2)
    model.spec.class_names = ["a", "b"]
    save_model(model, tmp_path / "model")
    assert main(["push", str(tmp_path / "model"), str(folder), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--no-images"]) == 0
    prototypes = tmp_path / "out" / "prototypes"
    assert not list(prototypes.glob("*.png"))
    assert len(pd.read_csv(prototypes / "records.csv")) == model.num_prototypes
    assert read_json(prototypes / "push.json")["images"] is False
    assert "records in" in capsys.readouterr().out
