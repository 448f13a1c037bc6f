"""Files read with torch.load: TorchScript archives are refused before torch.jit.load can run
their code; tensors-only loads that fail are one line for the user."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from torch import nn

from protoexplain.cli import main
from protoexplain.errors import UserError
from protoexplain.models.backbones import create_backbone
from protoexplain.models.legacy import import_legacy
from protoexplain.models.torchfile import is_torchscript_archive


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


@pytest.fixture
def script_file(tmp_path):
    path = tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.save's deprecation notice
        torch.jit.save(torch.jit.script(_Tiny()), str(path))
    return path


@pytest.fixture
def jit_load_spy(monkeypatch, tmp_path):
    """Replace torch.jit.load by a stand-in that leaves a marker: loading a TorchScript archive is
    what runs its code, so the marker must never appear."""
    marker = tmp_path / "jit-load-was-called"

    def spy(*args, **kwargs):
        marker.touch()
        raise RuntimeError("torch.jit.load must not be reached")

    monkeypatch.setattr(torch.jit, "load", spy)
    return marker


def test_torchscript_archive_is_recognised_and_ordinary_files_are_not(tmp_path, script_file):
    torch.save({"w": torch.zeros(2)}, tmp_path / "state.pt")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    assert is_torchscript_archive(script_file)
    assert not is_torchscript_archive(tmp_path / "state.pt")
    assert not is_torchscript_archive(tmp_path / "notes.txt")


def test_import_legacy_refuses_torchscript_without_loading_it(script_file, jit_load_spy):
    with pytest.raises(UserError, match="TorchScript archive"):
        import_legacy(script_file, "vgg11")
    assert not jit_load_spy.exists()


def test_weights_file_refuses_torchscript_without_loading_it(script_file, jit_load_spy):
    with pytest.raises(UserError, match="TorchScript archive"):
        create_backbone("small_cnn", script_file)
    assert not jit_load_spy.exists()


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


def test_full_pickle_as_weights_is_one_line(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"features.0.weight": torch.zeros(1), "extra": _Payload()}, path)
    with pytest.raises(UserError) as caught:
        create_backbone("small_cnn", path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "tensors-only" in message


def test_cli_refuses_torchscript_in_one_line(script_file, jit_load_spy, tmp_path, capsys):
    status = main(["import-legacy", str(script_file), "--out", str(tmp_path / "out"),
                   "--arch", "vgg11"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "TorchScript archive" in err
    assert not jit_load_spy.exists() and not (tmp_path / "out").exists()
