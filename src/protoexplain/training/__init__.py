"""Training: typed TOML config, losses, phases as data, the loop, push, distributed helpers."""

from protoexplain.training.artifacts import save_push_artifacts
from protoexplain.training.config import (
    RunConfig,
    config_from_dict,
    default_config_text,
    dump_config,
    load_config,
)
from protoexplain.training.last_layer import train_last_layer
from protoexplain.training.loop import train
from protoexplain.training.nearest import NearestPatches, find_nearest_patches
from protoexplain.training.push import PushResult, high_activation_boxes, push_prototypes

__all__ = [
    "NearestPatches",
    "PushResult",
    "RunConfig",
    "config_from_dict",
    "default_config_text",
    "dump_config",
    "find_nearest_patches",
    "high_activation_boxes",
    "load_config",
    "push_prototypes",
    "save_push_artifacts",
    "train",
    "train_last_layer",
]
