"""Resumable training state without pickle: tensors in safetensors, everything else in JSON.

A checkpoint folder holds the model (``model.safetensors`` + ``model.json``), the optimisers'
tensors (``optimizers.safetensors``) and ``training.json`` (optimiser settings, scheduler state,
progress, metrics so far and every process's RNG states as plain lists).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from protoexplain.errors import UserError
from protoexplain.fileio import read_json, write_json
from protoexplain.models.checkpoint import save_model
from protoexplain.models.ppnet import ProtoPNet

OPTIMIZER_FILE = "optimizers.safetensors"
STATE_FILE = "training.json"


def rng_state() -> dict[str, Any]:
    """This process's RNG states (torch CPU and CUDA, NumPy, Python) as JSON-ready lists."""
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    return {
        "torch": torch.get_rng_state().tolist(),
        "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()]
        if torch.cuda.is_available()
        else [],
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
        "python": [python_state[0], list(python_state[1]), python_state[2]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _split_optimizer(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Tensors (flat names) and JSON parts of an optimiser's state dict."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, values in state_dict["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}/{param_id}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _join_optimizer(name: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        owner, param_id, field = key.split("/")
        if owner == name:
            state.setdefault(int(param_id), {})[field] = value
    for param_id, values in meta["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_training_state(
    directory: Path,
    model: ProtoPNet,
    optimizers: dict[str, torch.optim.Optimizer],
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: dict[str, Any],
    rng_states: list[dict[str, Any]],
) -> None:
    """Write a complete checkpoint into ``directory`` (use a staged folder for atomicity)."""
    save_model(model, directory, metadata={"completed_steps": progress["completed_steps"]})
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for name, optimizer in optimizers.items():
        part, meta[name] = _split_optimizer(name, optimizer)
        tensors.update(part)
    save_file(tensors, str(directory / OPTIMIZER_FILE))
    write_json(
        directory / STATE_FILE,
        {
            "progress": progress,
            "optimizers": meta,
            "scheduler": scheduler.state_dict(),
            "rng": rng_states,
        },
    )


def load_training_state(
    directory: str | os.PathLike,
    model: ProtoPNet,
    optimizers: dict[str, torch.optim.Optimizer],
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load a checkpoint into the given objects; return (progress, per-process RNG states)."""
    directory = Path(directory)
    for name in ("model.safetensors", OPTIMIZER_FILE, STATE_FILE):
        if not (directory / name).is_file():
            raise UserError(f"checkpoint {directory} is incomplete ({name} missing); cannot resume")
    device = str(model.prototype_vectors.device)
    try:
        model.load_state_dict(load_file(str(directory / "model.safetensors"), device=device))
        saved = read_json(directory / STATE_FILE)
        tensors = load_file(str(directory / OPTIMIZER_FILE), device=device)
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(_join_optimizer(name, tensors, saved["optimizers"][name]))
        scheduler.load_state_dict(saved["scheduler"])
        return saved["progress"], saved["rng"]
    except (SafetensorError, RuntimeError, ValueError, KeyError, TypeError) as error:
        lines = str(error).strip().splitlines() or [type(error).__name__]
        raise UserError(
            f"checkpoint {directory} cannot be resumed: it is damaged or belongs to another model "
            f"({lines[-1].strip()[:200]}); train into a new --out folder"
        ) from None
