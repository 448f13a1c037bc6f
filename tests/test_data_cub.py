"""CUB-200-2011 preparation on a miniature CUB folder built here."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers_data import cli_popen, expected_crop, make_mini_cub, run_cli, tree_bytes
from protoexplain.data import prepare_cub
from protoexplain.errors import UserError
from protoexplain.fileio import read_json


def _out_path(out: Path, cub, image_id: int, ext: str) -> Path:
    split = "train" if cub.is_train[image_id] else "test"
    relative = Path(cub.images[image_id])
    return out / split / relative.parent / f"{relative.stem}.{ext}"


def test_crops_match_boxes_pixel_by_pixel_and_split_follows_ids(tmp_path):
    cub = make_mini_cub(tmp_path / "CUB_200_2011", zero_byte=False)
    out = tmp_path / "out"
    summary = prepare_cub(tmp_path, out, image_format="png", progress=False)  # parent folder
    for image_id in cub.images:
        target = _out_path(out, cub, image_id, "png")
        assert target.exists(), target
        with Image.open(target) as written:
            assert written.mode == "RGB"
            got = np.asarray(written)
        want = expected_crop(cub, image_id)
        assert got.shape == want.shape
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, image_id
    n_train = sum(cub.is_train.values())
    assert summary.counts == {"train": n_train, "test": len(cub.images) - n_train}
    assert summary.classes == 3
    manifest = read_json(out / "manifest.json")
    assert manifest["counts"] == summary.counts and manifest["skipped"] == []
    assert len(manifest["source_fingerprint"]) == 64
    # the other split never gets the image
    for image_id in cub.images:
        other = "test" if cub.is_train[image_id] else "train"
        assert not (out / other / cub.images[image_id]).with_suffix(".png").exists()


def test_jpeg_output_keeps_names_and_is_close(tmp_path):
    cub = make_mini_cub(tmp_path / "cub", zero_byte=False)
    out = tmp_path / "out"
    prepare_cub(cub.root, out, progress=False)
    for image_id in cub.images:
        target = _out_path(out, cub, image_id, "jpg")
        got = np.asarray(Image.open(target).convert("RGB")).astype(float)
        want = expected_crop(cub, image_id).astype(float)
        assert got.shape == want.shape
        assert np.abs(got - want).mean() < 6.0


def test_zero_byte_image_error_names_file_or_is_skipped(tmp_path):
    cub = make_mini_cub(tmp_path / "cub")
    empty_name = Path(cub.images[cub.special["empty"]]).name
    with pytest.raises(UserError, match=empty_name) as caught:
        prepare_cub(cub.root, tmp_path / "out", progress=False)
    assert "\n" not in str(caught.value)
    with pytest.warns(UserWarning, match=empty_name):
        summary = prepare_cub(cub.root, tmp_path / "out2", on_error="skip", progress=False)
    assert summary.skipped == [cub.images[cub.special["empty"]]]
    assert sum(summary.counts.values()) == len(cub.images) - 1


def test_cli_errors_are_one_line_and_name_the_missing_file(tmp_path):
    cub = make_mini_cub(tmp_path / "cub", zero_byte=False)
    (cub.root / "bounding_boxes.txt").unlink()
    result = run_cli("prepare-cub", str(cub.root), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "bounding_boxes.txt" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_inconsistent_ids_are_reported(tmp_path):
    cub = make_mini_cub(tmp_path / "cub", zero_byte=False)
    lines = (cub.root / "train_test_split.txt").read_text().splitlines()
    (cub.root / "train_test_split.txt").write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(UserError, match=r"train_test_split\.txt"):
        prepare_cub(cub.root, tmp_path / "out", progress=False)


def test_rerun_skips_finished_files(tmp_path):
    cub = make_mini_cub(tmp_path / "cub", zero_byte=False)
    first = prepare_cub(cub.root, tmp_path / "out", progress=False)
    before = tree_bytes(tmp_path / "out")
    second = prepare_cub(cub.root, tmp_path / "out", progress=False)
    assert first.written == len(cub.images) and second.written == 0
    assert second.existing == len(cub.images)
    assert tree_bytes(tmp_path / "out") == before


def test_killed_midway_then_rerun_gives_the_uninterrupted_tree(tmp_path):
    cub = make_mini_cub(tmp_path / "cub", per_class=4, zero_byte=False)
    reference = tmp_path / "reference"
    prepare_cub(cub.root, reference, progress=False)
    # The image in the middle (by id) becomes a FIFO: reading it blocks, so the run is
    # reliably stopped there, with the earlier images written and the later ones not.
    ids = sorted(cub.images)
    middle = ids[len(ids) // 2]
    source = cub.root / "images" / cub.images[middle]
    content = source.read_bytes()
    source.unlink()
    os.mkfifo(source)
    out = tmp_path / "out"
    process = cli_popen("prepare-cub", str(cub.root), "--out", str(out))
    deadline = time.monotonic() + 120
    try:
        while len(list(out.rglob("*.jpg"))) < len(ids) // 2:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "prepare-cub did not reach the blocking image"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert len(list(out.rglob("*.jpg"))) == len(ids) // 2
    assert not (out / "manifest.json").exists()
    source.unlink()
    source.write_bytes(content)
    summary = prepare_cub(cub.root, out, progress=False)
    assert summary.written == len(ids) - len(ids) // 2
    assert tree_bytes(out) == tree_bytes(reference)


@pytest.mark.parametrize(
    "bad_name",
    ["../../../escaped/a.png", "001.Class/../../../escaped/a.png", "/tmp/escaped/a.png", "a.png"],
)
def test_image_paths_must_stay_inside_images_folder(tmp_path, bad_name):
    cub = make_mini_cub(tmp_path / "cub" / "CUB_200_2011", zero_byte=False)
    first = min(cub.images)
    lines = (cub.root / "images.txt").read_text().splitlines()
    lines = [f"{first} {bad_name}" if line.split()[0] == str(first) else line for line in lines]
    (cub.root / "images.txt").write_text("\n".join(lines) + "\n")
    if not bad_name.startswith("/"):  # a real image where the crafted line points
        source = (cub.root / "images" / bad_name).resolve()
        source.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 64), "red").save(source)
    before = sorted(p for p in tmp_path.parent.rglob("*") if "escaped" in p.as_posix())
    with pytest.raises(UserError, match=rf"images\.txt: image id {first} has path"):
        prepare_cub(cub.root, tmp_path / "nested" / "deeper" / "out", progress=False)
    after = sorted(p for p in tmp_path.parent.rglob("*") if "escaped" in p.as_posix())
    assert after == before and not Path("/tmp/escaped/a.png").exists()
    assert not (tmp_path / "nested" / "deeper" / "out").exists()
