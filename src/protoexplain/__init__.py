"""protoexplain: train ProtoPNet models and explain what their prototypes rely on.

The everyday API is available here (``protoexplain.load_model``, ``protoexplain.explain_images``,
…) and imported on first use (PEP 562), so ``import protoexplain`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Top-level name → the subpackage that defines it.
_EXPORTS = {
    "ModelSpec": "protoexplain.models",
    "ProtoPNet": "protoexplain.models",
    "load_model": "protoexplain.models",
    "save_model": "protoexplain.models",
    "ImageFolderDataset": "protoexplain.data",
    "ImageListDataset": "protoexplain.data",
    "generate_synthetic": "protoexplain.data",
    "load_rgb": "protoexplain.data",
    "ExplainConfig": "protoexplain.explain",
    "ExplainResult": "protoexplain.explain",
    "explain_dataset": "protoexplain.explain",
    "explain_image": "protoexplain.explain",
    "explain_images": "protoexplain.explain",
    "list_modifications": "protoexplain.explain",
    "register_modification": "protoexplain.explain",
    "RunConfig": "protoexplain.training",
    "load_config": "protoexplain.training",
    "train": "protoexplain.training",
    "load_pipeline_config": "protoexplain.pipeline",
    "run_pipeline": "protoexplain.pipeline",
    "UserError": "protoexplain.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name's subpackage on first access."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's own names and every exported one (imported or not)."""
    return sorted(set(globals()) | set(__all__))
