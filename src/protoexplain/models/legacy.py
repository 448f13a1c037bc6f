"""Import checkpoints of the original ProtoPNet code without running arbitrary pickled code.

The original saved whole modules with ``torch.save(model)``. We read such files with an allow-list
unpickler: tensors, storages and ``OrderedDict`` are rebuilt; the original's module classes and
``torch.nn`` layers become inert :class:`LegacyRecord` objects holding their attribute dictionaries;
any other global (``os.system``, ``builtins.eval``, …) is refused before it is called.
"""

from __future__ import annotations

import _compat_pickle
import collections
import os
import pickle
import types
import warnings
from pathlib import Path
from typing import Any

import torch

from protoexplain.errors import UserError
from protoexplain.models.ppnet import ModelSpec, ProtoPNet
from protoexplain.models.torchfile import refuse_torchscript

# Module classes of the original code base, rebuilt as inert records.
LEGACY_CLASS_MODULES = {
    "model": {"PPNet"},
    "vgg_features": {"VGG_features"},
    "resnet_features": {"ResNet_features", "BasicBlock", "Bottleneck"},
    "densenet_features": {"DenseNet_features", "_DenseLayer", "_DenseBlock", "_Transition"},
}
TORCH_LAYER_PREFIX = "torch.nn.modules."

# Functions and classes that rebuild tensors; they create tensors and nothing else.
_TENSOR_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch", "Tensor"): torch.Tensor,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch", "float32"): torch.float32,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}


class LegacyRecord:
    """An inert stand-in for a pickled module: it only stores the state it is given."""

    legacy_module = ""
    legacy_name = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        self.state = dict(state) if isinstance(state, dict) else {"value": state}


_RECORD_CLASSES: dict[tuple[str, str], type[LegacyRecord]] = {}


def _record_class(module: str, name: str) -> type[LegacyRecord]:
    key = (module, name)
    if key not in _RECORD_CLASSES:
        _RECORD_CLASSES[key] = type(
            name, (LegacyRecord,), {"legacy_module": module, "legacy_name": name}
        )
    return _RECORD_CLASSES[key]


def _no_backend(*args: Any) -> None:
    """Old torch pickled a THNN backend object into every module; it carries no data."""
    return None


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` restricted to inert records."""
    if not (isinstance(cls, type) and issubclass(cls, LegacyRecord)) or base is not object:
        raise pickle.UnpicklingError("copyreg._reconstructor may only rebuild module records")
    return cls()


class RefusedGlobal(pickle.UnpicklingError):
    """The checkpoint references a global that is not on the allow-list."""


class AllowListUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals (see module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles name Python 2 modules (``__builtin__``); map them as pickle does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _TENSOR_GLOBALS:
            return _TENSOR_GLOBALS[(module, name)]
        if name in LEGACY_CLASS_MODULES.get(module, ()):
            return _record_class(module, name)
        if module.startswith(TORCH_LAYER_PREFIX) and name[:1].isupper():
            return _record_class(module, name)
        if module == "torch.nn.backends.thnn" and name == "_get_thnn_function_backend":
            return _no_backend
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            return _safe_reconstructor
        raise RefusedGlobal(f"{module}.{name}")


def _allow_list_pickle_module() -> types.ModuleType:
    module = types.ModuleType("protoexplain_allow_list_pickle")
    module.Unpickler = AllowListUnpickler
    module.load = lambda file, **kwargs: AllowListUnpickler(file, **kwargs).load()
    module.__dict__["UnpicklingError"] = pickle.UnpicklingError
    return module


def read_legacy_checkpoint(path: str | os.PathLike) -> Any:
    """Unpickle an original checkpoint (whole module or state dict) through the allow-list."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "does not exist"
        raise UserError(f"checkpoint {path} {what}")
    refuse_torchscript(path, "checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Couldn't retrieve source code")
            return torch.load(
                path,
                map_location="cpu",
                pickle_module=_allow_list_pickle_module(),
                weights_only=False,
            )
    except RefusedGlobal as error:
        raise UserError(
            f"refusing to load {path}: it references {error}, which is neither a tensor nor a "
            "known ProtoPNet class; only checkpoints of the original ProtoPNet or PIP-Net code "
            "are accepted"
        ) from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"cannot read {path} as a PyTorch checkpoint: {first_line}") from None


def record_state_dict(record: LegacyRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """Parameters and buffers of an inert module record, named like ``state_dict()``."""
    state: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, tensor in (record.state.get(group) or {}).items():
            if tensor is not None:
                state[prefix + name] = tensor.detach().clone()
    for name, child in (record.state.get("_modules") or {}).items():
        if isinstance(child, LegacyRecord):
            state.update(record_state_dict(child, f"{prefix}{name}."))
    return state


def read_class_names(path: str | os.PathLike | None, num_classes: int) -> list[str]:
    """Class names from a file (one per line, CUB's ``classes.txt`` works); default 0, 1, …"""
    if path is None:
        return [str(i) for i in range(num_classes)]
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    names = [line.split(maxsplit=1)[-1] if line.split()[0].isdigit() else line
             for line in lines if line]
    if len(names) != num_classes:
        raise UserError(
            f"{path} lists {len(names)} classes but the checkpoint has {num_classes}; "
            "pass a file with one class name per line, in class-index order"
        )
    return names


def _fill_missing_batchnorm_counters(state: dict[str, torch.Tensor], model: ProtoPNet) -> None:
    """Checkpoints from torch < 0.4.1 lack ``num_batches_tracked``; it does not affect outputs."""
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)


def legacy_to_model(
    checkpoint: Any, arch: str, class_names_file: str | os.PathLike | None = None,
    image_size: int | None = None,
) -> ProtoPNet:
    """Build our :class:`ProtoPNet` from an unpickled original checkpoint."""
    attributes: dict[str, Any] = {}
    if isinstance(checkpoint, LegacyRecord):
        attributes = checkpoint.state
        state = record_state_dict(checkpoint)
    elif isinstance(checkpoint, dict):
        state = {k.removeprefix("module."): v for k, v in checkpoint.items()
                 if isinstance(v, torch.Tensor)}
    else:
        raise UserError("the checkpoint holds neither a ProtoPNet module nor a state dict")
    for required in ("prototype_vectors", "last_layer.weight"):
        if required not in state:
            raise UserError(f"the checkpoint has no {required!r}; is it a ProtoPNet checkpoint?")
    num_classes = state["last_layer.weight"].shape[0]
    identity = attributes.get("prototype_class_identity")
    prototype_class = (
        identity.argmax(dim=1).tolist() if isinstance(identity, torch.Tensor) else []
    )
    activation = attributes.get("prototype_activation_function", "log")
    if activation not in ("log", "linear"):
        raise UserError(f"unsupported prototype activation {activation!r} in the checkpoint")
    base = dict(
        backbone=arch,
        num_classes=int(num_classes),
        prototype_shape=tuple(state["prototype_vectors"].shape),
        class_names=read_class_names(class_names_file, int(num_classes)),
        prototype_class=prototype_class,
        activation=activation,
        epsilon=float(attributes.get("epsilon", 1e-4)),
        image_size=int(image_size or attributes.get("img_size", 224)),
    )
    state.pop("ones", None)
    state.pop("prototype_class_identity", None)
    for add_on in ("bottleneck", "regular"):
        model = ProtoPNet(ModelSpec(add_on=add_on, **base))
        expected = model.state_dict()
        expected.pop("prototype_class")
        addon_keys = {k: v.shape for k, v in expected.items() if k.startswith("add_on_layers.")}
        given = {k: v.shape for k, v in state.items() if k.startswith("add_on_layers.")}
        if addon_keys == given:
            break
    else:
        raise UserError("the checkpoint's add-on layers match neither 'bottleneck' nor 'regular'")
    _fill_missing_batchnorm_counters(state, model)
    state["prototype_class"] = model.prototype_class
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise UserError(
            f"the checkpoint does not fit backbone {arch!r} ({len(missing)} missing, "
            f"{len(unexpected)} unexpected tensors, e.g. {first}); check --arch"
        )
    return model.eval()


def import_legacy(
    path: str | os.PathLike, arch: str, class_names_file: str | os.PathLike | None = None,
    image_size: int | None = None,
) -> ProtoPNet:
    """Read an original checkpoint file and return the equivalent :class:`ProtoPNet`."""
    return legacy_to_model(read_legacy_checkpoint(path), arch, class_names_file, image_size)
