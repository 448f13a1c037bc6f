"""``protoexplain run`` on a tiny PIP-Net config: trains, evaluates, explains, writes a report."""

from __future__ import annotations

import json

import pandas as pd

from protoexplain.models import PIPNet, load_model
from protoexplain.pipeline import load_pipeline_config, run_pipeline

TINY_PIPNET = """
[dataset]
source = "synthetic"
preset = "mixed"
size = 32
train_per_class = 3
test_per_class = 1
seed = 1

[train]
seed = 0
[train.data]
augmentation = "none"
validation_fraction = 0.25
[train.model]
architecture = "pipnet"
backbone = "small_cnn"
weights = "none"
image_size = 32
num_prototypes = 4
[train.batch]
train = 16
test = 32
[train.pipnet]
pretrain_epochs = 1
epochs = 2
finetune_epochs = 1
freeze_epochs = 1
pretrain_batch = 16

[nearest]
k = 2

[explain]
splits = ["test"]
batch_size = 16
modifications = ["hue", "shape"]

[report]
max_prototype_pages = 2
"""


def test_run_trains_explains_and_reports_a_pipnet(tmp_path) -> None:
    path = tmp_path / "pipnet.toml"
    path.write_text(TINY_PIPNET, encoding="utf-8")
    config, _ = load_pipeline_config(path)
    run = tmp_path / "run"
    outcomes = run_pipeline(config, run, device="cpu", log=lambda line: None)
    assert {o.name: o.status for o in outcomes} == {
        "data": "ran", "train": "ran", "prune": "disabled", "evaluate": "ran",
        "nearest": "ran", "explain": "ran", "report": "ran"}
    model = load_model(run / "train" / "model")
    assert isinstance(model, PIPNet) and model.num_prototypes == 4
    description = json.loads((run / "train" / "model" / "model.json").read_text())
    assert description["architecture"] == "PIPNet"
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert metrics["n_images"] == 8 and 0.0 <= metrics["models"][0]["top1"] <= 1.0
    scores = pd.read_csv(run / "explain" / "test" / "global_scores.csv")
    assert sorted(scores["prototype"].unique()) == [0, 1, 2, 3]
    assert set(scores["modification"]) == {"hue", "shape"}
    nearest = pd.read_csv(run / "nearest" / "nearest.csv")
    assert len(nearest) == 4 * 2 and (nearest["distance"] <= 0).all()  # −presence
    assert (run / "report" / "index.html").is_file()
