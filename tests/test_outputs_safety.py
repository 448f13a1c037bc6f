"""Output folders: permissions under the umask, locks, no overwriting, late checks, leftovers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from protoexplain.fileio import atomic_open, temp_folder_beside, write_json
from protoexplain.training.folders import staged_folder


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_files_get_the_mode_open_gives(tmp_path, umask):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    with atomic_open(tmp_path / "atomic.txt") as handle:
        handle.write("x")
    write_json(tmp_path / "sub" / "data.json", {"a": 1})
    assert _mode(tmp_path / "atomic.txt") == _mode(plain) == 0o666 & ~umask
    assert _mode(tmp_path / "sub" / "data.json") == 0o666 & ~umask


def test_staged_folders_get_the_mode_mkdir_gives(tmp_path, umask):
    plain = tmp_path / "plain"
    plain.mkdir()
    with staged_folder(tmp_path / "staged") as staging:
        (staging / "f").write_text("x")
    assert _mode(tmp_path / "staged") == _mode(plain) == 0o777 & ~umask
    assert _mode(temp_folder_beside(tmp_path / "other")) == 0o777 & ~umask
