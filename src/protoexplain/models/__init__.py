"""Prototype models: the contract, backbones, receptive fields, the modules, checkpoints."""

from protoexplain.models.adapter import SimilarityModelAdapter
from protoexplain.models.backbones import create_backbone, list_backbones, register_backbone
from protoexplain.models.checkpoint import load_model, model_metadata, save_model
from protoexplain.models.pipnet import PIPNet, PIPNetSpec
from protoexplain.models.ppnet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ModelSpec,
    ProtoOutput,
    ProtoPNet,
    build_add_on_layers,
    require_protopnet,
)
from protoexplain.models.protocol import InputSpec, PrototypeModel, model_device
from protoexplain.models.receptive_field import ReceptiveField, compute_receptive_field

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "InputSpec",
    "ModelSpec",
    "PIPNet",
    "PIPNetSpec",
    "ProtoOutput",
    "ProtoPNet",
    "PrototypeModel",
    "ReceptiveField",
    "SimilarityModelAdapter",
    "build_add_on_layers",
    "compute_receptive_field",
    "create_backbone",
    "list_backbones",
    "load_model",
    "model_device",
    "model_metadata",
    "register_backbone",
    "require_protopnet",
    "save_model",
]
