"""Over-large images (decompression bombs) are unreadable input, refused from the header."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from helpers_data import run_cli
from protoexplain.data.images import MAX_PIXELS_VARIABLE, load_rgb
from protoexplain.errors import UserError


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_declared_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares width × height but which holds almost no data: it costs a few
    bytes on disk and would cost width·height·3 bytes of memory if it were decoded."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    body = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body)
                     + _chunk(b"IEND", b""))  # fmt: skip
    return path


def test_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    bomb = write_declared_png(tmp_path / "bomb.png", 20000, 20000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with Image.open(bomb) as image:  # the crafted file really declares that size
        assert image.size == (20000, 20000)
    with pytest.raises(UserError, match=r"bomb\.png.*above the limit of 64,000,000"):
        load_rgb(bomb)


@pytest.mark.parametrize(("side", "refused"), [(30, False), (40, True), (50, True)])
def test_limit_is_configurable(tmp_path, monkeypatch, side, refused):
    # limit 1000: 30² passes; 40² is refused by our header check, 50² (more than twice the limit)
    # by Pillow's, both as the same one-line error
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "1000")
    path = tmp_path / f"{side}.png"
    Image.new("RGB", (side, side), "blue").save(path)
    if refused:
        with pytest.raises(UserError, match=r"above the limit of 1,000 pixels"):
            load_rgb(path)
    else:
        assert load_rgb(path).size == (side, side)


def test_bad_limit_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "lots")
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    with pytest.raises(UserError, match=MAX_PIXELS_VARIABLE):
        load_rgb(tmp_path / "a.png")


def test_cli_stops_in_one_line_or_skips_and_counts(tmp_path):
    data = tmp_path / "data" / "c0"
    data.mkdir(parents=True)
    Image.new("RGB", (16, 16), "red").save(data / "fine.png")
    write_declared_png(data / "bomb.png", 20000, 20000)
    stopped = run_cli("modify", str(tmp_path / "data"), "--out", str(tmp_path / "out1"),
                      "--modifications", "hue")  # fmt: skip
    assert stopped.returncode == 2
    errors = [line for line in stopped.stderr.splitlines() if line.startswith("protoexplain:")]
    assert len(errors) == 1 and "bomb.png" in errors[0] and "Traceback" not in stopped.stderr
    skipped = run_cli("modify", str(tmp_path / "data"), "--out", str(tmp_path / "out2"),
                      "--modifications", "hue", "--on-error", "skip")  # fmt: skip
    assert skipped.returncode == 0, skipped.stderr
    assert "1 skipped" in skipped.stdout
    assert len(list((tmp_path / "out2").rglob("*.png"))) == 1
