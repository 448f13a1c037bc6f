"""Tiny configs shared by the training and benchmark tests (small_cnn, 32 px, a few epochs)."""

from collections.abc import Iterator
from contextlib import contextmanager

from protoexplain.benchmark import FaithfulnessConfig, quick_config


def tiny_faithfulness_config(**overrides) -> FaithfulnessConfig:
    """The faithfulness benchmark on ``hue`` at its smallest: seconds, not minutes."""
    settings = dict(
        presets=("hue",), image_size=32, train_per_class=4, test_per_class=2, epochs=2,
        last_layer_epochs=1, calibration_images=2, prototype_depth=8, dose_targets=(5.0,),
        batch_size=8,
    )
    return quick_config(**{**settings, **overrides})


TINY_TRAIN_CONFIG = """
seed = {seed}
[data]
train = "{data}/train"
test = "{data}/test"
augmentation = "none"
validation_fraction = 0.25
[model]
backbone = "small_cnn"
weights = "none"
image_size = 32
prototypes_per_class = 2
prototype_depth = 16
[batch]
train = 8
test = 16
push = 8
[schedule]
epochs = 3
warm_epochs = 1
push_start = 2
push_every = 10
last_layer_epochs = {last_layer_epochs}
"""

TINY_PIPNET_CONFIG = """
seed = {seed}
[data]
train = "{data}/train"
test = "{data}/test"
augmentation = "{augmentation}"
validation_fraction = 0.25
[model]
architecture = "pipnet"
backbone = "small_cnn"
weights = "none"
image_size = 32
num_prototypes = 6
[batch]
train = 8
test = 16
[pipnet]
pretrain_epochs = {pretrain_epochs}
epochs = 3
finetune_epochs = 1
freeze_epochs = 2
pretrain_batch = 8
"""


@contextmanager
def stopped_before_step(trainer_class: type, index: int) -> Iterator[None]:
    """Inside the block, a run of ``trainer_class`` stops (KeyboardInterrupt) before step
    ``index``, as if the user pressed Ctrl-C after step ``index - 1`` was checkpointed."""
    original = trainer_class._train_step

    def stop(self, number, step):
        if number == index:
            raise KeyboardInterrupt
        return original(self, number, step)

    trainer_class._train_step = stop
    try:
        yield
    finally:
        trainer_class._train_step = original
