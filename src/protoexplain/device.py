"""Choose the torch device from a user string."""

from __future__ import annotations

import torch

from protoexplain.errors import UserError


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Device for ``name``: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda:N``…"""
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UserError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but CUDA is not available; use --device cpu")
    return device
