"""Reading PyTorch files without running code from them.

``torch.load`` hands a TorchScript archive to ``torch.jit.load``, which executes the archive's
code (a crafted ``__setstate__`` can do anything) and bypasses any pickle allow-list. Every file
that protoexplain reads with ``torch.load`` is checked here first: a TorchScript archive is refused
before torch sees it, and a tensors-only load's failure becomes one line for the user.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from protoexplain.errors import UserError


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """True for a TorchScript archive (``torch.jit.save``): a zip whose record folder holds
    ``constants.pkl`` or compiled ``code/``. Ordinary ``torch.save`` zips hold neither."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    for name in names:
        inner = name.split("/", 1)[1] if "/" in name else name
        if inner == "constants.pkl" or inner.startswith("code/"):
            return True
    return False


def refuse_torchscript(path: str | os.PathLike, what: str) -> None:
    """Raise a one-line :class:`UserError` when ``path`` is a TorchScript archive."""
    if is_torchscript_archive(path):
        raise UserError(
            f"refusing to load {what} {path}: it is a TorchScript archive, whose loading runs the "
            "code inside it; export the weights with torch.save(model.state_dict()) or as "
            "safetensors instead"
        )


def load_tensors(path: str | os.PathLike, what: str = "weight file") -> Any:
    """``torch.load(path, weights_only=True)`` on CPU after the TorchScript check; any failure
    (a full pickle, a damaged file) is a one-line :class:`UserError` naming the file."""
    path = Path(path)
    refuse_torchscript(path, what)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(
            f"{what} {path} is not a tensors-only PyTorch file (it needs full unpickling, which "
            "could run code); save it with torch.save(model.state_dict()) or as safetensors"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"cannot read {what} {path}: {first_line}") from None
