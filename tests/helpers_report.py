"""A small pipeline run folder for the report tests: a real tiny model, push records and crops,
explanations of train and test, evaluation (metrics, confusion, predictions), nearest patches and
a training log; class names that need escaping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from protoexplain.fileio import write_json
from protoexplain.models import ModelSpec, ProtoPNet, save_model

CLASSES = ["alpha bird", "<script>alert(1)</script>", "gamma & co"]
MODS = ["hue", "shape", "texture", "contrast"]
P = 6
SIZE = 32


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.uint8(array)).save(path)


def _crop(j: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct crops: saturated red, colour noise, grey stripes (no hue at all), tinted grey…"""
    kinds = [
        np.full((12, 12, 3), (220, 30, 30)),
        np.full((12, 12, 3), (220, 30, 30)),
        rng.integers(0, 256, (12, 12, 3)),
        np.tile((np.arange(12) % 2 * 255)[None, :, None], (12, 1, 3)),
        np.full((12, 12, 3), (128, 118, 100)),
        np.full((12, 12, 3), (40, 200, 90)),
    ]
    return kinds[j]


def build_run(root: Path, *, with_test: bool = True, family: str | None = None) -> dict:
    """A pipeline run folder with a real tiny model and explain/evaluation/nearest outputs;
    ``family``: the modification family the global scores name (none named by default)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = ModelSpec(backbone="small_cnn", num_classes=len(CLASSES), prototype_shape=(P, 16, 1, 1),
                     class_names=CLASSES, image_size=SIZE)
    model = ProtoPNet(spec)
    with torch.no_grad():
        model.prototype_vectors[1] = model.prototype_vectors[0]  # a redundant pair: 0 and 1
    model_dir = root / "train" / "model"
    save_model(model, model_dir)
    protos = model_dir / "prototypes"
    records = []
    for j in range(P):
        _png(protos / f"p{j:04d}_crop.png", _crop(j, rng))
        _png(protos / f"p{j:04d}_source.png", rng.integers(0, 256, (SIZE, SIZE, 3)))
        records.append({"prototype": j, "class_index": j // 2, "class_name": CLASSES[j // 2],
                        "pushed": True, "image_index": j,
                        "image_path": f"{CLASSES[j // 2]}/s{j}.png",
                        "cell_h": 0, "cell_w": 1, "distance": 0.1,
                        "rf_h0": 0, "rf_h1": 16, "rf_w0": 8, "rf_w1": 32,
                        "ha_h0": 2, "ha_h1": 14, "ha_w0": 10, "ha_w1": 22})
    pd.DataFrame(records).to_csv(protos / "records.csv", index=False)

    data = root / "data" / "test"
    images = []
    for c, name in enumerate(CLASSES):
        for k in range(2):
            rel = f"{name.replace('/', '_')}/img{k}.png"
            _png(data / rel, rng.integers(0, 256, (40, 48, 3)))
            images.append((rel, c))

    # hue relies strongly on prototypes 0/1; prototype 3 (stripes) relies on hue → misleading
    base = {j: np.array([0.3, 0.2, 0.1, 0.05]) for j in range(P)}
    base[0] = base[1] = np.array([2.0, 0.5, 0.2, 0.1])
    base[3] = np.array([1.5, 0.1, 0.1, 0.1])
    splits = ["train", "test"] if with_test else ["train"]
    for s, split in enumerate(splits):
        out = root / "explain" / split
        out.mkdir(parents=True)
        rows, local = [], []
        for j in range(P):
            for m, mod in enumerate(MODS):
                strengths = [0.05, 0.1, 0.2] if mod == "hue" else [1.0]
                for strength in strengths:
                    value = base[j][m] * strength / (0.1 if mod == "hue" else 1.0) + 0.01 * s
                    rows.append({"prototype": j, "prototype_class": j // 2, "modification": mod,
                                 "strength": strength, "weighted_delta": value, "n_images": 6,
                                 "ci_low": value - 0.1, "ci_high": value + 0.1})
                    for i, (rel, c) in enumerate(images):
                        delta = value + 0.05 * (i - 2.5)
                        local.append({"image": rel, "class": CLASSES[c], "prototype": j,
                                      "prototype_class": j // 2, "modification": mod,
                                      "strength": strength, "orig_similarity": 1.0 + 0.1 * j + i,
                                      "delta": delta, "relative_delta": delta / 2})
        table = pd.DataFrame(rows)
        if family is not None:
            table["family"] = family
        table.to_csv(out / "global_scores.csv", index=False)
        pd.DataFrame(local).to_parquet(out / "local_scores.parquet", row_group_size=50)
        write_json(out / "stats.json", {})
        write_json(out / "explain.json", {"model": str(model_dir), "data": str(data)})
    evaluation = root / "evaluation"
    write_json(evaluation / "metrics.json", {"models": [{"model": str(model_dir), "top1": 0.5,
                                                          "top5": 1.0}], "ensemble": None,
                                             "n_images": 6})
    pd.DataFrame({"class": CLASSES, "n": 2, "correct": 1, "accuracy": 0.5}).to_csv(
        evaluation / "per_class.csv", index=False)
    # one mistake per class: image → (predicted class, probability of the prediction)
    wrong = {images[1][0]: (2, 0.9), images[2][0]: (0, 0.6), images[5][0]: (0, 0.7)}
    predictions = [{"image": rel, "true": CLASSES[c], "predicted": CLASSES[wrong.get(rel, (c,))[0]],
                    "correct": rel not in wrong, "probability": wrong.get(rel, (c, 0.8))[1]}
                   for rel, c in images]
    pd.DataFrame(predictions).to_csv(evaluation / "predictions.csv", index=False)
    confusion = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    for row in predictions:
        confusion[CLASSES.index(row["true"]), CLASSES.index(row["predicted"])] += 1
    pd.DataFrame(confusion, index=pd.Index(CLASSES, name="true"), columns=CLASSES).to_csv(
        evaluation / "confusion.csv")
    log = [  # two logged last-layer iterations in epoch 0: the table shows the later one
        (0, 0, "joint", 0, 2.5, 0.40, 0.30, 0.35), (1, 0, "push", 0, None, None, 0.32, 0.33),
        (2, 0, "last_layer", 0, 1.9, 0.50, 0.45, 0.40),
        (3, 0, "last_layer", 1, 1.7, 0.55, 0.50, 0.42), (4, 1, "joint", 0, 1.2, 0.70, 0.48, 0.52),
    ]
    pd.DataFrame([{"step": st, "epoch": ep, "phase": ph, "iteration": it, "lr": 1e-4,
                   "loss": loss, "ce": loss, "cluster": 0.1, "separation": 0.2, "l1": 3.0,
                   "train_acc": tr, "val_acc": va, "test_acc": te, "seconds": 1.0}
                  for st, ep, ph, it, loss, tr, va, te in log]).to_csv(
        root / "train" / "metrics.csv", index=False)
    nearest = root / "nearest"
    near_rows = []
    for j in range(P):
        for rank in (1, 2):
            _png(nearest / f"p{j:04d}_r{rank:02d}_patch.png", rng.integers(0, 256, (10, 10, 3)))
            near_rows.append({"prototype": j, "prototype_class": j // 2, "rank": rank,
                              "image": images[rank][0], "image_index": rank, "image_class": 0,
                              "distance": 0.1 * rank, "cell_h": 0, "cell_w": 0,
                              "h0": 0, "h1": 10, "w0": 0, "w1": 10})
    pd.DataFrame(near_rows).to_csv(nearest / "nearest.csv", index=False)
    return {"model_dir": model_dir, "data": data, "model": model}
