"""The pipeline configs shipped inside the package: the demo and the paper's CUB set-ups.

They live in ``protoexplain/pipeline/configs/`` so that an installed wheel has them too;
``protoexplain config --pipeline NAME --out FILE`` writes one out for editing.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from protoexplain.errors import UserError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def _folder() -> Traversable:
    return resources.files("protoexplain.pipeline") / "configs"


def packaged_config_names() -> list[str]:
    """Names of the packaged pipeline configs (file names without ``.toml``), sorted."""
    return sorted(entry.name.removesuffix(".toml") for entry in _folder().iterdir()
                  if entry.name.endswith(".toml"))


def packaged_config_text(name: str) -> str:
    """The TOML text of the packaged config ``name``; a one-line error listing the names."""
    names = packaged_config_names()
    if name not in names:
        raise UserError(f"no packaged pipeline config {name!r}; choose one of {', '.join(names)}")
    return (_folder() / f"{name}.toml").read_text(encoding="utf-8")
