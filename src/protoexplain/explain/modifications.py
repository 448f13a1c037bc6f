"""Registry of image modifications: pure, deterministic functions of (image, strength).

A modification has a *faithful* implementation on PIL images at native resolution and, optionally,
a *batched* torch implementation on (B, 3, H, W) tensors in [0, 1] used by the ``fast`` mode.
Modifications are grouped in families (``paper`` = Nauta et al.; others may be added by modules
in :mod:`protoexplain.explain.families`). A user adds a characteristic with one decorator::

    @register_modification("blur", default_strength=2.0, family="mine", description="…")
    def blur(image: Image.Image, strength: float) -> Image.Image:
        return image.filter(ImageFilter.GaussianBlur(strength))
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from protoexplain.errors import UserError

ImageFn = Callable[[Image.Image, float], Image.Image]
TensorFn = Callable[[torch.Tensor, float], torch.Tensor]

DEFAULT_FAMILY = "paper"


@dataclass(frozen=True)
class Modification:
    """One registered characteristic: its name, family, default strength and implementations."""

    name: str
    family: str
    default_strength: float
    description: str
    apply: ImageFn
    apply_batch: TensorFn | None = None

    def __call__(self, image: Image.Image, strength: float | None = None) -> Image.Image:
        """Apply the faithful (PIL) implementation; ``strength`` defaults to the default."""
        return self.apply(image, self.default_strength if strength is None else strength)


_REGISTRY: dict[tuple[str, str], Modification] = {}
_BUILTINS_LOADED = False


def register_modification(
    name: str,
    *,
    default_strength: float,
    family: str = DEFAULT_FAMILY,
    description: str = "",
    batch: TensorFn | None = None,
) -> Callable[[ImageFn], ImageFn]:
    """Decorator registering ``fn(image, strength) -> image`` as modification ``name``.

    ``batch`` is an optional torch implementation ``fn(x, strength) -> x`` on (B, 3, H, W) tensors
    in [0, 1]; without it the modification is unavailable in ``fast`` mode.
    """

    def decorator(fn: ImageFn) -> ImageFn:
        key = (family, name)
        if key in _REGISTRY and _REGISTRY[key].apply is not fn:
            raise ValueError(f"modification {name!r} is already registered in family {family!r}")
        text = description or next(iter((fn.__doc__ or "").strip().splitlines()), "")
        _REGISTRY[key] = Modification(name, family, float(default_strength), text, fn, batch)
        return fn

    return decorator


def _load_builtin_families() -> None:
    """Import every module of :mod:`protoexplain.explain.families` (they register themselves)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    package = importlib.import_module("protoexplain.explain.families")
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


def list_modifications(family: str | None = None) -> list[Modification]:
    """Registered modifications (of one family, or all), in registration order."""
    _load_builtin_families()
    return [m for (fam, _), m in _REGISTRY.items() if family is None or fam == family]


def list_families() -> list[str]:
    """Names of the families that have at least one modification."""
    _load_builtin_families()
    return sorted({fam for fam, _ in _REGISTRY})


def get_modification(name: str, family: str = DEFAULT_FAMILY) -> Modification:
    """The modification ``name`` of ``family``; a one-line :class:`UserError` when unknown."""
    _load_builtin_families()
    try:
        return _REGISTRY[(family, name)]
    except KeyError:
        if family not in list_families():
            raise UserError(
                f"unknown modification family {family!r}; choose one of {list_families()}"
            ) from None
        known = [m.name for m in list_modifications(family)]
        raise UserError(
            f"unknown modification {name!r} in family {family!r}; choose from {known}"
        ) from None


@dataclass(frozen=True)
class ModificationSetting:
    """A modification at one strength: one column of the explanation."""

    modification: Modification
    strength: float

    @property
    def name(self) -> str:
        return self.modification.name

    def apply(self, image: Image.Image) -> Image.Image:
        return self.modification.apply(image, self.strength)

    def apply_batch(self, images: torch.Tensor) -> torch.Tensor:
        if self.modification.apply_batch is None:
            raise UserError(
                f"modification {self.name!r} has no batched implementation; use --mode faithful"
            )
        return self.modification.apply_batch(images, self.strength)


def resolve_settings(
    names: list[str] | None = None,
    strengths: dict[str, list[float]] | None = None,
    family: str = DEFAULT_FAMILY,
) -> list[ModificationSetting]:
    """Expand modification names (default: the whole family) and strengths into settings.

    ``strengths`` maps a name to one or more strengths (dose–response); names without an entry
    use their default strength.
    """
    strengths = dict(strengths or {})
    chosen = [m.name for m in list_modifications(family)] if not names else list(names)
    if not chosen:
        raise UserError(f"family {family!r} has no modifications")
    if len(set(chosen)) != len(chosen):
        raise UserError(f"modification names repeat in {chosen}; name each once")
    unknown = sorted(set(strengths) - set(chosen))
    if unknown:
        raise UserError(f"strengths given for {unknown}, which are not among {chosen}")
    settings = []
    for name in chosen:
        modification = get_modification(name, family)
        values = strengths.get(name) or [modification.default_strength]
        if not isinstance(values, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise UserError(f"strengths of {name!r} must be a list of numbers, got {values!r}")
        settings += [_checked(ModificationSetting(modification, float(v))) for v in values]
    return settings


def _checked(setting: ModificationSetting) -> ModificationSetting:
    """``setting`` if its strength is finite and the modification accepts it (tried on a small
    grey image); a one-line :class:`UserError` otherwise."""
    problem = None
    if not math.isfinite(setting.strength):
        problem = "it is not a finite number"
    else:
        try:
            setting.apply(Image.new("RGB", (8, 8), (128, 96, 64)))
        except (ValueError, TypeError) as error:
            problem = str(error).rstrip(".")
    if problem:
        raise UserError(f"strength {setting.strength:g} of {setting.name!r} cannot be used: "
                        f"{problem}; choose another strength")
    return setting
