"""Evaluation and ensembles: hand-checked accuracies, summed logits, models left untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from protoexplain.analysis.evaluate import (
    confusion_matrix,
    evaluate_models,
    save_evaluation,
    top_k_accuracy,
)
from protoexplain.cli import main
from protoexplain.data import ImageFolderDataset, eval_transform
from protoexplain.models import ModelSpec, ProtoPNet, save_model

SRC = str(Path(__file__).resolve().parents[1] / "src")
CLASSES = ["c0", "c1", "c2"]


def write_images(root: Path) -> None:
    rng = np.random.default_rng(11)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(2 + c):
            pixels = rng.integers(0, 256, (36, 30, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def tiny_model(seed: int) -> ProtoPNet:
    torch.manual_seed(seed)
    model = ProtoPNet(ModelSpec("small_cnn", 3, (6, 8, 1, 1), image_size=32, class_names=CLASSES))
    with torch.no_grad():
        model.last_layer.weight.copy_(torch.randn_like(model.last_layer.weight) * 5)
    return model.eval()


def direct_logits(model: ProtoPNet, root: Path) -> torch.Tensor:
    dataset = ImageFolderDataset(root, eval_transform(32))
    with torch.no_grad():
        return model(torch.stack([dataset[i][0] for i in range(len(dataset))]))


def test_accuracy_helpers_by_hand():
    logits = np.array([[3.0, 2.0, 1.0], [0.0, 1.0, 5.0], [1.0, 0.0, 2.0], [0.0, 2.0, 1.0]])
    labels = np.array([0, 1, 0, 2])
    # top-1 predictions 0, 2, 2, 1 → only the first is right
    assert top_k_accuracy(logits, labels, 1) == 0.25
    # top-2 sets {0,1} {2,1} {2,0} {1,2} → all four contain the label
    assert top_k_accuracy(logits, labels, 2) == 1.0
    assert top_k_accuracy(logits, labels, 5) == 1.0  # k above C means all classes
    np.testing.assert_array_equal(
        confusion_matrix(logits, labels, 3), [[1, 0, 1], [0, 0, 1], [0, 1, 0]]
    )


def test_ensemble_logits_are_the_sum_and_models_are_untouched(tmp_path):
    write_images(tmp_path / "data")
    models = [tiny_model(1), tiny_model(2)]
    models[1].train()  # evaluation must neither update batch-norm statistics nor keep eval mode
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    evaluation = evaluate_models(models, tmp_path / "data", names=["a", "b"], batch_size=2)
    for model, state in zip(models, before, strict=True):
        after = model.state_dict()
        assert state.keys() == after.keys()
        assert all(torch.equal(state[k], after[k]) for k in state)
    assert [m.training for m in models] == [False, True]
    models[1].eval()
    expected = [direct_logits(m, tmp_path / "data").numpy() for m in models]
    np.testing.assert_allclose(evaluation.logits[0], expected[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(evaluation.logits[1], expected[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(evaluation.ensemble_logits, expected[0] + expected[1], rtol=1e-5,
                               atol=1e-5)
    labels = np.repeat([0, 1, 2], [2, 3, 4])
    np.testing.assert_array_equal(evaluation.labels, labels)
    result = save_evaluation(evaluation, tmp_path / "out")
    ensemble_top1 = float(((expected[0] + expected[1]).argmax(axis=1) == labels).mean())
    assert result["ensemble"]["top1"] == pytest.approx(ensemble_top1)
    assert result["models"][0]["top1"] == pytest.approx(
        float((expected[0].argmax(axis=1) == labels).mean())
    )
    assert result["n_images"] == 9
    per_class = pd.read_csv(tmp_path / "out" / "per_class.csv")
    assert per_class["n"].tolist() == [2, 3, 4]
    confusion = pd.read_csv(tmp_path / "out" / "confusion.csv", index_col=0)
    assert list(confusion.columns) == CLASSES and confusion.to_numpy().sum() == 9
    assert per_class["correct"].tolist() == np.diag(confusion.to_numpy()).tolist()
    # one row per image, of the ensemble: names as the folder lists them, softmax by hand
    summed = (expected[0] + expected[1]).astype(np.float64)
    exp = np.exp(summed - summed.max(axis=1, keepdims=True))
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert predictions["image"].tolist() == [f"{CLASSES[c]}/{i}.png" for c in range(3)
                                             for i in range(2 + c)]
    assert predictions["true"].tolist() == [CLASSES[c] for c in labels]
    assert predictions["predicted"].tolist() == [CLASSES[c] for c in summed.argmax(axis=1)]
    assert predictions["correct"].tolist() == (summed.argmax(axis=1) == labels).tolist()
    np.testing.assert_allclose(predictions["probability"], exp.max(axis=1) / exp.sum(axis=1),
                               rtol=1e-5)
    assert result["data"] == str(tmp_path / "data")


def test_cli_evaluate_several_models_and_errors(tmp_path, capsys):
    write_images(tmp_path / "data")
    save_model(tiny_model(1), tmp_path / "m1")
    save_model(tiny_model(2), tmp_path / "m2")
    env = {**os.environ, "PYTHONPATH": SRC}
    result = subprocess.run(
        [sys.executable, "-m", "protoexplain", "evaluate", "m1", "m2", "data", "--out", "ev",
         "--device", "cpu"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    assert "ensemble (sum of logits)" in result.stdout
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert [m["model"] for m in metrics["models"]] == ["m1", "m2"]
    assert metrics["ensemble"]["models"] == ["m1", "m2"]
    save_model(
        ProtoPNet(ModelSpec("small_cnn", 2, (2, 8, 1, 1), image_size=32)), tmp_path / "two"
    )
    assert main(["evaluate", str(tmp_path / "two"), str(tmp_path / "data")]) == 2
    assert "2 classes" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "data")]) == 2
    assert "at least one model" in capsys.readouterr().err
