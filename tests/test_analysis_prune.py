"""Pruning: exactly the prototypes a hand computation says, same similarities afterwards,
artefacts renumbered consistently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from protoexplain.analysis.nearest import Neighbours
from protoexplain.analysis.prune import PruneConfig, prune_model_folder, prune_report
from protoexplain.cli import main
from protoexplain.data import ImageFolderDataset, eval_transform
from protoexplain.errors import UserError
from protoexplain.models import ModelSpec, ProtoPNet, load_model, save_model
from protoexplain.training import push_prototypes, save_push_artifacts


def test_prune_report_by_hand():
    neighbours = Neighbours(
        image_index=np.array([[0, 1, 2], [3, 4, -1], [2, 3, 4]]),
        distance=np.zeros((3, 3)), cell_h=np.zeros((3, 3), int), cell_w=np.zeros((3, 3), int),
        similarity_maps=np.zeros((3, 3, 1, 1)),
    )
    labels = np.array([0, 0, 1, 1, 0])
    report = prune_report(neighbours, labels, np.array([0, 1, 1]), k=3, tau=2)
    # p0 (class 0): images 0, 1, 2 → classes 0, 0, 1 → 2 own → kept
    # p1 (class 1): images 3, 4, none → classes 1, 0 → 1 own → pruned (a missing slot never counts)
    # p2 (class 1): images 2, 3, 4 → classes 1, 1, 0 → 2 own → kept
    assert report["own_class_neighbours"].tolist() == [2, 1, 2]
    assert report["kept"].tolist() == [True, False, True]
    assert report["new_index"].tolist() == [0, -1, 1]


def noise(rng: np.random.Generator) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))


def write_duplicated_images(root: Path) -> None:
    """Image a: two copies in blue/, one in red/; image b: three copies in red/; plus fillers.

    A prototype equal to a latent patch of ``a`` has exactly the three copies of ``a`` as its
    three nearest images (distance 0; every other image is different), and likewise for ``b``.
    """
    rng = np.random.default_rng(3)
    a, b = noise(rng), noise(rng)
    for folder in ("blue", "red"):
        (root / folder).mkdir(parents=True)
    a.save(root / "blue" / "a1.png")
    a.save(root / "blue" / "a2.png")
    a.save(root / "red" / "a3.png")
    for i in range(3):
        b.save(root / "red" / f"b{i}.png")
    noise(rng).save(root / "blue" / "f1.png")
    noise(rng).save(root / "red" / "f2.png")


def designed_model(root: Path) -> ProtoPNet:
    """p0 (blue) ← patch of a, p1 (blue) ← patch of b, p2 (red) ← a, p3 (red) ← b.

    Hand computation with k = 3, τ = 2: p0 sees a1, a2, a3 → 2 blue → kept; p1 sees b0–b2 → 0 blue
    → pruned; p2 sees a1–a3 → 1 red → pruned; p3 sees b0–b2 → 3 red → kept.
    """
    torch.manual_seed(0)
    spec = ModelSpec("small_cnn", 2, (4, 8, 1, 1), image_size=32, class_names=["blue", "red"])
    model = ProtoPNet(spec).eval()
    dataset = ImageFolderDataset(root, eval_transform(32))
    index = {path.name: i for i, (path, _) in enumerate(dataset.samples)}
    with torch.no_grad():
        z_a = model.latent(dataset[index["a1.png"]][0][None])[0]
        z_b = model.latent(dataset[index["b0.png"]][0][None])[0]
        for j, (z, (h, w)) in enumerate([(z_a, (0, 0)), (z_b, (1, 1)), (z_a, (0, 1)),
                                         (z_b, (1, 0))]):
            model.prototype_vectors[j, :, 0, 0] = z[:, h, w]
    return model


EXPECTED_KEPT = [0, 3]


def similarity_maps(model: ProtoPNet, root: Path) -> torch.Tensor:
    dataset = ImageFolderDataset(root, eval_transform(32))
    with torch.no_grad():
        return model.similarity_maps(torch.stack([dataset[i][0] for i in range(len(dataset))]))


def test_prune_removes_the_hand_computed_prototypes_and_keeps_similarities(tmp_path):
    write_duplicated_images(tmp_path / "data")
    model = designed_model(tmp_path / "data")
    save_model(model, tmp_path / "model")
    report = prune_model_folder(
        tmp_path / "model", tmp_path / "data", tmp_path / "pruned",
        PruneConfig(k=3, tau=2, last_layer_epochs=0),
    )
    assert report["own_class_neighbours"].tolist() == [2, 0, 1, 3]
    assert report.loc[report["kept"], "prototype"].tolist() == EXPECTED_KEPT
    pruned = load_model(tmp_path / "pruned")
    assert pruned.num_prototypes == 2
    assert pruned.prototype_class.tolist() == [0, 1]
    before = similarity_maps(model, tmp_path / "data")
    after = similarity_maps(pruned, tmp_path / "data")
    torch.testing.assert_close(after, before[:, EXPECTED_KEPT])
    # no last-layer epochs: the kept columns are the old ones
    torch.testing.assert_close(pruned.last_layer.weight, model.last_layer.weight[:, EXPECTED_KEPT])
    written = pd.read_csv(tmp_path / "pruned" / "prune_report.csv")
    assert written["new_index"].tolist() == [0, -1, -1, 1]
    assert list(written.columns) == [
        "prototype", "prototype_class", "kept", "own_class_neighbours", "k", "tau", "new_index"
    ]


def test_cli_prune_renumbers_push_artifacts_and_retrains_the_last_layer(tmp_path, capsys):
    write_duplicated_images(tmp_path / "data")
    model = designed_model(tmp_path / "data")
    designed = model.prototype_vectors.detach().clone()
    dataset = ImageFolderDataset(tmp_path / "data", eval_transform(32))
    result = push_prototypes(model, dataset, batch_size=4, device="cpu")
    with torch.no_grad():  # keep the designed vectors; push only provides real artefacts
        model.prototype_vectors.copy_(designed)
    save_model(model, tmp_path / "model")
    save_push_artifacts(result, model, dataset, tmp_path / "model")
    old = tmp_path / "model" / "prototypes"
    code = main(["prune", str(tmp_path / "model"), str(tmp_path / "data"), "--k", "3", "--tau",
                 "2", "--last-layer-epochs", "1", "--batch-size", "4", "--device", "cpu"])
    assert code == 0
    assert "pruned 2 of 4 prototypes" in capsys.readouterr().out
    out = Path(f"{tmp_path / 'model'}-pruned")
    new = out / "prototypes"
    records = pd.read_csv(new / "records.csv")
    old_records = pd.read_csv(old / "records.csv")
    assert records["prototype"].tolist() == [0, 1]
    assert records["old_prototype"].tolist() == EXPECTED_KEPT
    pd.testing.assert_frame_equal(
        records.drop(columns=["prototype", "old_prototype"]),
        old_records.drop(columns="prototype").iloc[EXPECTED_KEPT].reset_index(drop=True),
    )
    for new_index, old_index in enumerate(EXPECTED_KEPT):
        for kind in ("crop", "source", "box", "heatmap"):
            assert (new / f"p{new_index:04d}_{kind}.png").read_bytes() == (
                old / f"p{old_index:04d}_{kind}.png"
            ).read_bytes()
    assert not (new / "p0002_crop.png").exists()
    for name in ("boxes_rf.npy", "boxes_ha.npy"):
        np.testing.assert_array_equal(np.load(new / name), np.load(old / name)[EXPECTED_KEPT])
    pruned = load_model(out)
    assert pruned.num_prototypes == 2
    assert not torch.equal(pruned.last_layer.weight, model.last_layer.weight[:, EXPECTED_KEPT])
    torch.testing.assert_close(
        similarity_maps(pruned, tmp_path / "data"),
        similarity_maps(model, tmp_path / "data")[:, EXPECTED_KEPT],
    )


def test_prune_settings_are_checked():
    with pytest.raises(UserError, match="τ"):
        PruneConfig(k=3, tau=4)
