"""The ``modify`` and ``explain`` commands, including a kill during ``explain`` and a rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from protoexplain.cli import main
from protoexplain.data import ImageFolderDataset
from protoexplain.explain import get_modification
from protoexplain.explain.families.calibration import calibrate_strengths, sample_images
from protoexplain.models import ModelSpec, ProtoPNet, save_model

SRC = str(Path(__file__).resolve().parents[1] / "src")
OUTPUTS = ["local_scores.parquet", "global_scores.csv", "stats.json", "summary.txt", "explain.json"]


def _folder(root: Path, per_class: int, size: int) -> Path:
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


def _model(path: Path) -> Path:
    torch.manual_seed(0)
    save_model(ProtoPNet(ModelSpec("small_cnn", 2, (4, 16, 1, 1), image_size=32)), path)
    return path


def test_modify_writes_png_copies(tmp_path, capsys):
    data = _folder(tmp_path / "in", 2, 24)
    code = main(["modify", str(data), "--out", str(tmp_path / "out"),
                 "--modifications", "hue", "shape", "--strengths", "hue=0.25"])  # fmt: skip
    assert code == 0 and "8 images written" in capsys.readouterr().out.replace("\n", " ")
    written = Image.open(tmp_path / "out" / "hue_0.25" / "b" / "001.png")
    expected = get_modification("hue")(Image.open(data / "b" / "001.png").convert("RGB"), 0.25)
    np.testing.assert_array_equal(np.asarray(written), np.asarray(expected))
    assert (tmp_path / "out" / "shape_4" / "a" / "000.png").is_file()


def test_bad_strength_is_a_user_error(tmp_path, capsys):
    data = _folder(tmp_path / "in", 1, 16)
    assert main(["modify", str(data), "--out", str(tmp_path / "o"), "--strengths", "hue"]) == 2
    assert "hue=0.1" in capsys.readouterr().err


def _explain_arguments(model: Path, data: Path, out: Path) -> list[str]:
    return ["explain", str(model), str(data), "--out", str(out), "--device", "cpu",
            "--workers", "0", "--batch-size", "1", "--chunk-images", "2", "--bootstrap", "10",
            "--local-top-k", "3", "--modifications", "hue", "shape", "texture"]  # fmt: skip


# A child that counts its forward passes (one image each) and prints the count at exit; with
# KILL_AT_CALL=N it kills itself (SIGKILL, nothing is cleaned up) in the N-th: at N = 4 chunk 0
# (images 1-2) is committed and chunk 1 is half written, where a kill loses the most work.
COUNTING_CHILD = """
import atexit, os, signal, sys
import protoexplain.explain.engine as engine
from protoexplain.cli import main
score_batch, calls, stop = engine.score_batch, [], int(os.environ.get("KILL_AT_CALL", "0"))
def counted(*args):
    calls.append(1)
    if len(calls) == stop:
        os.kill(os.getpid(), signal.SIGKILL)
    return score_batch(*args)
engine.score_batch = counted
atexit.register(lambda: print(f"forward passes: {len(calls)}", file=sys.stderr))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.e2e
def test_kill_during_explain_then_rerun_gives_same_files(tmp_path):
    data = _folder(tmp_path / "data", 10, 64)
    model = _model(tmp_path / "model")
    env = {**os.environ, "PYTHONPATH": SRC}
    reference, out = tmp_path / "reference", tmp_path / "out"
    child = [sys.executable, "-c", COUNTING_CHILD]
    subprocess.run([*child, *_explain_arguments(model, data, reference)], env=env, check=True,
                   capture_output=True)  # fmt: skip
    killed = subprocess.run([*child, *_explain_arguments(model, data, out)],
                            env={**env, "KILL_AT_CALL": "4"}, capture_output=True)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    left = sorted(path.name for path in (out / "parts").iterdir())
    # committed: chunk 0 and the state that records it; chunk 1 only as a temporary file
    assert left[0].startswith(".part-000001.parquet.") and left[0].endswith(".tmp"), left
    assert left[1:] == ["part-000000.parquet", "state-rank000-of001.safetensors"], left
    assert not (out / "local_scores.parquet").exists()
    rerun = subprocess.run([*child, *_explain_arguments(model, data, out)], env=env, check=True,
                           capture_output=True, text=True)  # fmt: skip
    # the rerun skips the 2 images of the committed chunk and redoes the other 18
    assert rerun.stderr.strip().splitlines()[-1] == "forward passes: 18"
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert not (out / "parts").exists()


def test_modify_at_is_recorded_and_calibrates_on_resized_images(tmp_path):
    data = _folder(tmp_path / "in", 2, 64)
    model = _model(tmp_path / "model")
    out = tmp_path / "out"
    code = main(["explain", str(model), str(data), "--out", str(out), "--modify-at", "model",
                 "--modifications", "shape", "--calibrate", "5", "--calibration-images", "2",
                 "--workers", "0", "--bootstrap", "0", "--device", "cpu"])  # fmt: skip
    assert code == 0
    record = json.loads((out / "explain.json").read_text(encoding="utf-8"))
    assert record["modify_at"] == "model"
    # the calibration measured the warp on 32-px images (the model's input), not on 64-px ones
    assert record["calibration"]["n_images"] == 2
    sample = sample_images(ImageFolderDataset(data), 2, 0)
    small = [image.resize((32, 32), Image.BILINEAR) for image in sample]
    strength = record["calibration"]["modifications"][0]["strength"]
    expected = calibrate_strengths(small, "paper", 5.0, names=["shape"]).strengths()["shape"]
    assert [strength] == expected
