"""Import checkpoints of the original PIP-Net code through the allow-list unpickler.

The original saves ``{'model_state_dict': net.state_dict(), 'optimizer_..._state_dict': …}``
of an ``nn.DataParallel`` module, so tensor names read ``module._net.…`` (trunk),
``module._add_on.0.…`` (the optional 1×1 convolution) and ``module._classification.…``
(``weight``, ``normalization_multiplier``, optional ``bias``). They map one to one onto
:class:`~protoexplain.models.pipnet.PIPNet`'s ``features``, ``add_on`` and ``classification``.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from protoexplain.errors import UserError
from protoexplain.models.legacy import read_class_names, read_legacy_checkpoint
from protoexplain.models.pipnet import PIPNet, PIPNetSpec

PARTS = {"_net.": "features.", "_add_on.": "add_on.", "_classification.": "classification."}


def _renamed(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        key = key.removeprefix("module.")
        for old, new in PARTS.items():
            if key.startswith(old):
                renamed[new + key.removeprefix(old)] = value
    return renamed


def pipnet_from_checkpoint(
    checkpoint: Any, arch: str, class_names_file: str | os.PathLike | None = None,
    image_size: int | None = None,
) -> PIPNet:
    """Build our :class:`PIPNet` from an unpickled original checkpoint (or its state dict)."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model_state_dict"), dict):
        checkpoint = checkpoint["model_state_dict"]
    if not isinstance(checkpoint, dict):
        raise UserError("the checkpoint holds no PIP-Net state dict ('model_state_dict')")
    state = _renamed(checkpoint)
    weight = state.get("classification.weight")
    if weight is None or weight.ndim != 2:
        raise UserError("the checkpoint has no '_classification.weight'; is it a PIP-Net "
                        "checkpoint?")
    num_classes, prototypes = (int(n) for n in weight.shape)
    spec = PIPNetSpec(
        backbone=arch,
        num_classes=num_classes,
        class_names=read_class_names(class_names_file, num_classes),
        num_prototypes=prototypes if "add_on.0.weight" in state else 0,
        bias="classification.bias" in state,
        image_size=int(image_size or 224),
    )
    model = PIPNet(spec)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state) if expected[k] != state[k].shape)
    if missing or unexpected or reshaped:
        first = (missing or unexpected or reshaped)[0]
        raise UserError(
            f"the checkpoint does not fit PIP-Net trunk {arch!r} ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(reshaped)} differently shaped tensors, e.g. "
            f"{first}); check --arch"
        )
    model.load_state_dict(state, strict=True)
    return model.eval()


def import_pipnet_legacy(
    path: str | os.PathLike, arch: str, class_names_file: str | os.PathLike | None = None,
    image_size: int | None = None,
) -> PIPNet:
    """Read an original PIP-Net checkpoint file and return the equivalent :class:`PIPNet`."""
    return pipnet_from_checkpoint(read_legacy_checkpoint(path), arch, class_names_file,
                                  image_size)
