"""Phase table, schedule and learning-rate rule of method §3."""

import warnings

import pytest
import torch

from protoexplain.models import ModelSpec, ProtoPNet
from protoexplain.training.config import RunConfig
from protoexplain.training.losses import LossWeights, protopnet_loss
from protoexplain.training.phases import (
    PARAMETER_GROUPS,
    build_phases,
    build_schedule,
    make_joint_scheduler,
    make_optimizer,
    push_epochs,
    set_trainable,
)

EXPECTED_TRAINABLE = {
    "warm": {"add_on_layers", "prototype_vectors"},
    "joint": {"features", "add_on_layers", "prototype_vectors"},
    "last_layer": {"last_layer"},
}


def _model():
    torch.manual_seed(0)
    spec = ModelSpec("small_cnn", num_classes=2, prototype_shape=(4, 8, 1, 1), image_size=32)
    return ProtoPNet(spec)


def _values(model):
    return {
        name: [p.detach().clone() for p in
               ([getattr(model, name)] if name == "prototype_vectors"
                else getattr(model, name).parameters())]
        for name in PARAMETER_GROUPS
    }


@pytest.mark.parametrize("phase_name", ["warm", "joint", "last_layer"])
def test_a_step_changes_exactly_the_phase_groups(phase_name):
    model = _model()
    phase = build_phases(RunConfig())[phase_name]
    set_trainable(model, phase)
    model.train(phase.batch_norm_updates)
    optimizer = make_optimizer(model, phase)
    before = _values(model)
    x, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 0, 1])
    out = model.forward_details(x)
    loss, _ = protopnet_loss(out.logits, out.min_distances, labels, model.prototype_class,
                             model.last_layer.weight, LossWeights())
    loss.backward()
    optimizer.step()
    after = _values(model)
    for name in PARAMETER_GROUPS:
        changed = any(not torch.equal(a, b) for a, b in zip(before[name], after[name], strict=True))
        assert changed == (name in EXPECTED_TRAINABLE[phase_name]), name


def test_optimizer_groups_have_spec_learning_rates():
    phases = build_phases(RunConfig())
    joint = make_optimizer(_model(), phases["joint"])
    assert [(g["lr"], g["weight_decay"]) for g in joint.param_groups] == [
        (1e-4, 1e-3), (3e-3, 1e-3), (3e-3, 0.0)
    ]
    warm = make_optimizer(_model(), phases["warm"])
    assert [(g["lr"], g["weight_decay"]) for g in warm.param_groups] == [(3e-3, 1e-3), (3e-3, 0.0)]
    assert make_optimizer(_model(), phases["last_layer"]).param_groups[0]["lr"] == 1e-4


def test_steplr_stepped_before_each_joint_epoch_decays_at_9_14_19():
    config = RunConfig()
    config.schedule.epochs = 21
    optimizer = make_optimizer(_model(), build_phases(config)["joint"])
    scheduler = make_joint_scheduler(optimizer, config.joint)
    seen = {}
    for step in build_schedule(config.schedule):
        if step.kind == "joint":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scheduler.step()
            seen[step.epoch] = optimizer.param_groups[0]["lr"]
    expected = {e: 1e-4 for e in range(5, 9)} | {e: 1e-5 for e in range(9, 14)}
    expected |= {e: 1e-6 for e in range(14, 19)} | {19: 1e-7, 20: 1e-7}
    assert seen.keys() == expected.keys()
    for epoch, lr in expected.items():
        assert seen[epoch] == pytest.approx(lr), epoch


def test_schedule_warm_joint_push_and_last_layer():
    config = RunConfig()
    steps = build_schedule(config.schedule)
    assert [s.epoch for s in steps if s.kind == "warm"] == [0, 1, 2, 3, 4]
    assert push_epochs(config.schedule) == [10, 20, 30]
    after_first_push = steps[steps.index(next(s for s in steps if s.kind == "push")) + 1:][:21]
    assert [s.kind for s in after_first_push] == ["last_layer"] * 20 + ["joint"]
    assert len(steps) == 31 + 3 + 60
    config.schedule.epochs = 25
    assert push_epochs(config.schedule) == [10, 20, 24]
    assert not any(s.kind == "last_layer" for s in build_schedule(config.schedule, "linear"))
