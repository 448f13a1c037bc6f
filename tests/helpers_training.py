"""A tiny training config shared by the training tests (small_cnn, 32 px, a few epochs)."""

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
