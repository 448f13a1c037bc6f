"""PIP-Net training: loss terms against hand computations, the schedule, resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers_training import TINY_PIPNET_CONFIG, stopped_before_step
from protoexplain.data import generate_synthetic
from protoexplain.fileio import read_json
from protoexplain.models import PIPNet, load_model
from protoexplain.training import load_config, train
from protoexplain.training.config import PIPNetConfig
from protoexplain.training.pipnet_losses import (
    PHASE_LOSSES,
    alignment_loss,
    classification_loss,
    tanh_loss,
)
from protoexplain.training.pipnet_train import PIPNetTrainer, pipnet_phases, pipnet_schedule

TINY = TINY_PIPNET_CONFIG.replace("{seed}", "2").replace("{augmentation}", "online").replace(
    "{pretrain_epochs}", "2"
)


def test_alignment_loss_by_hand() -> None:
    same = torch.zeros(1, 3, 2, 2)
    same[:, 1] = 1.0  # every location one-hot on prototype 1, in both views
    assert alignment_loss(same, same).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((2, 4, 3, 3), 0.25)
    assert alignment_loss(uniform, uniform).item() == pytest.approx(math.log(4), rel=1e-6)
    # one location, presence (0.5, 0.5) against (1, 0): dot product 0.5 both ways
    a = torch.tensor([0.5, 0.5]).view(1, 2, 1, 1)
    b = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    assert alignment_loss(a, b).item() == pytest.approx(math.log(2), rel=1e-6)


def test_alignment_targets_are_detached() -> None:
    a = torch.tensor([0.6, 0.4]).view(1, 2, 1, 1).requires_grad_()
    b = torch.tensor([0.3, 0.7]).view(1, 2, 1, 1)
    alignment_loss(a, b).backward()
    # only the a→sg(b) half reaches a: d/da of −½·log(a·b) = −½·b/(a·b)
    expected = -0.5 * torch.tensor([0.3, 0.7]) / (0.6 * 0.3 + 0.4 * 0.7)
    assert torch.allclose(a.grad.view(-1), expected, atol=1e-6)


def test_tanh_loss_by_hand() -> None:
    pooled1 = torch.tensor([[0.2, 0.0], [0.5, 0.1]])
    pooled2 = torch.tensor([[1.0, 0.3], [0.0, 0.3]])
    view1 = (math.log(math.tanh(0.7)) + math.log(math.tanh(0.1))) / 2
    view2 = (math.log(math.tanh(1.0)) + math.log(math.tanh(0.6))) / 2
    assert tanh_loss(pooled1, pooled2).item() == pytest.approx(-(view1 + view2) / 2, rel=1e-5)


def test_classification_loss_by_hand() -> None:
    scores = torch.tensor([[1.0, 2.0], [0.5, 0.0]])
    labels = torch.tensor([1, 0])
    total = 0.0
    for row, label in zip(scores.tolist(), labels.tolist(), strict=True):
        z = [math.log(1 + s**2) for s in row]
        total += -(z[label] - math.log(sum(math.exp(v) for v in z)))
    got = classification_loss(scores, labels, torch.tensor([2.0])).item()
    assert got == pytest.approx(total / 2, rel=1e-6)


def test_schedule_and_phases_as_data() -> None:
    config = PIPNetConfig(pretrain_epochs=2, epochs=5, finetune_epochs=1, freeze_epochs=3)
    kinds = [(s.kind, s.epoch) for s in pipnet_schedule(config)]
    assert kinds == [("pretrain", 1), ("pretrain", 2), ("finetune", 1), ("frozen", 2),
                     ("frozen", 3), ("train", 4), ("train", 5)]
    no_pretrain = PIPNetConfig(pretrain_epochs=0, epochs=2, finetune_epochs=3, freeze_epochs=0)
    assert [s.kind for s in pipnet_schedule(no_pretrain)] == ["train", "train"]
    phases = pipnet_phases(config)
    assert phases["pretrain"].trainable == ("features", "add_on")
    assert phases["finetune"].trainable == ("classification",)
    assert PHASE_LOSSES["pretrain"].align_weight(1, 4) == pytest.approx(0.25)
    assert PHASE_LOSSES["train"].align_weight(1, 4) == 5.0


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pipnet_data")
    generate_synthetic(root / "synth", "mixed", seed=0, size=32, train_per_class=3,
                       test_per_class=1, progress=False)
    path = root / "pipnet.toml"
    path.write_text(TINY.format(data=(root / "synth").as_posix()), encoding="utf-8")
    return path


def test_interrupted_run_resumes_to_the_uninterrupted_weights(config_file, tmp_path) -> None:
    config = load_config(config_file)
    final = train(config, tmp_path / "full", device="cpu")
    model = load_model(final)
    assert isinstance(model, PIPNet) and model.num_prototypes == 6
    metrics = read_json(tmp_path / "full" / "checkpoints/last/training.json")["progress"]
    assert [row["phase"] for row in metrics["metrics"]] == [
        "pretrain", "pretrain", "finetune", "frozen", "train"]
    assert model.classification.normalization_multiplier.item() == 2.0  # never trained
    assert (model.classification.weight >= 0).all()

    with stopped_before_step(PIPNetTrainer, 3), pytest.raises(KeyboardInterrupt):
        train(load_config(config_file), tmp_path / "cut", device="cpu")
    train(load_config(config_file), tmp_path / "cut", device="cpu", resume=True)
    expected = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    got = load_file(str(tmp_path / "cut" / "model" / "model.safetensors"))
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
