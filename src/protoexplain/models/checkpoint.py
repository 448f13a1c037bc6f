"""Safe checkpoints: `model.safetensors` (tensors) + `model.json` (how to rebuild); no pickle."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import safetensors
import torch
import torchvision
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from protoexplain import __version__
from protoexplain.errors import UserError
from protoexplain.fileio import atomic_path, read_json, write_json
from protoexplain.models.ppnet import ModelSpec, ProtoPNet

WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "model.json"
FORMAT_VERSION = 1


def save_model(
    model: ProtoPNet, directory: str | os.PathLike, metadata: dict[str, Any] | None = None
) -> Path:
    """Write the model's tensors and description into ``directory`` (atomically, file by file)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    write_json(
        directory / METADATA_FILE,
        {
            "format": "protoexplain-model",
            "format_version": FORMAT_VERSION,
            "architecture": "ProtoPNet",
            "spec": model.spec.to_dict(),
            "receptive_field": model.receptive_field().as_list(),
            "metadata": metadata or {},
            "versions": {
                "protoexplain": __version__,
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "safetensors": safetensors.__version__,
                "python": platform.python_version(),
            },
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
    return directory


def read_model_description(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``model.json`` of a model folder, with a clear error when it is not one."""
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise UserError(
            f"{directory} is not a protoexplain model folder ({METADATA_FILE} missing); "
            "pass a folder written by 'protoexplain train' or 'import-legacy'"
        )
    description = read_json(path)
    if not isinstance(description, dict) or description.get("format") != "protoexplain-model":
        raise UserError(f"{path} is not a protoexplain model description")
    if not isinstance(description.get("spec"), dict):
        raise UserError(f"{path} has no model 'spec'; the model folder is damaged")
    version = description.get("format_version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise UserError(f"{path} has format version {version!r}, not a whole number; the model "
                        "folder is damaged")
    if version > FORMAT_VERSION:
        raise UserError(f"{path} has format version {version}, newer than this protoexplain "
                        f"reads ({FORMAT_VERSION}); upgrade protoexplain")
    return description


def check_weights(directory: str | os.PathLike) -> Path:
    """The model folder's weights file, after checking it is a complete safetensors file."""
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        raise UserError(f"{weights} is missing; the model folder is incomplete")
    try:
        with safe_open(str(weights), framework="pt"):
            pass
    except (SafetensorError, OSError) as error:
        raise UserError(f"cannot read {weights}: {error}; the weights file is damaged, save or "
                        "train the model again") from None
    return weights


def load_model(directory: str | os.PathLike, device: str | torch.device = "cpu") -> ProtoPNet:
    """Rebuild a model saved with :func:`save_model` (random trunk, then every saved tensor)."""
    directory = Path(directory)
    description = read_model_description(directory)
    weights = check_weights(directory)
    try:
        model = ProtoPNet(ModelSpec.from_dict(description["spec"]))
    except (TypeError, ValueError, KeyError, UserError) as error:
        raise UserError(f"{directory / METADATA_FILE} describes no model this version can "
                        f"build ({error}); the model folder is damaged") from None
    try:
        state = load_file(str(weights))
    except Exception as error:
        raise UserError(f"cannot read {weights}: {error}; the weights file is damaged, save or "
                        "train the model again") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise UserError(f"{weights} does not match the model described in {METADATA_FILE} "
                        f"({first}); the two files come from different models") from None
    return model.to(device).eval()


def model_metadata(directory: str | os.PathLike) -> dict[str, Any]:
    """The free-form ``metadata`` stored with a model (accuracy, epoch, …)."""
    return read_model_description(directory).get("metadata", {})
