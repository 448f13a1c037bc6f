"""Output folders: permissions under the umask, locks, no overwriting, late checks, leftovers."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers_data import SRC, cli_popen, make_mini_cub, noise_folder
from protoexplain.cli import main
from protoexplain.fileio import atomic_open, read_json, temp_folder_beside, write_json
from protoexplain.models import ModelSpec, ProtoPNet, save_model
from protoexplain.outputs import LOCK_NAME, locked_output
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


def _images(root: Path, per_class: int = 2) -> Path:
    return noise_folder(root, per_class, seed=0)


def _model(path: Path) -> Path:
    torch.manual_seed(0)
    spec = ModelSpec("small_cnn", 2, (4, 8, 1, 1), class_names=["a", "b"], image_size=32)
    save_model(ProtoPNet(spec), path)
    return path


def _explain(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["explain", str(model), str(data), "--out", str(out), "--device", "cpu",
            "--workers", "0", "--bootstrap", "5", "--modifications", "hue", "contrast",
            *extra]  # fmt: skip


def _fails(capsys, argv: list[str], *expected: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("protoexplain:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


HOLDER = """
import sys, time
from protoexplain.outputs import locked_output
with locked_output(sys.argv[1], "explain"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def _hold(folder: Path) -> subprocess.Popen:
    """A child process that holds ``folder``'s lock until its stdin is closed."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(SRC)})  # fmt: skip
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys):
    data, model, out = _images(tmp_path / "data"), _model(tmp_path / "model"), tmp_path / "out"
    holder = _hold(out)
    try:
        line = _fails(capsys, _explain(model, data, out), str(out), "in use by",
                      "'protoexplain explain'", f"pid {holder.pid}")  # fmt: skip
        assert "choose another output folder" in line
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
    finally:
        holder.communicate("")
    assert main(_explain(model, data, out)) == 0  # released at exit


def test_a_killed_holder_does_not_block(tmp_path):
    out = tmp_path / "out"
    holder = _hold(out)
    holder.kill()
    holder.wait()
    with locked_output(out, "explain"):
        pass


def test_racing_explains_cannot_mix_their_settings(tmp_path):
    """The issue's race: two explains on one folder at once, one with --modifications hue. Either
    the second is refused while the first runs, or it finds the first finished and refuses the
    other settings; the folder ends holding one consistent explanation."""
    data, model, out = _images(tmp_path / "data", 6), _model(tmp_path / "model"), tmp_path / "out"
    both = _explain(model, data, out)
    hue = [*both[:-2], "hue"]
    hue[hue.index("--modifications") + 1 :] = ["hue"]
    runs = [cli_popen(*both), cli_popen(*hue)]
    results = [(run.wait(), run.communicate()[1].decode()) for run in runs]
    assert sorted(code for code, _ in results) == [0, 2], results
    assert all("Traceback" not in err for _, err in results)
    recorded = {m["name"] for m in read_json(out / "explain.json")["modifications"]}
    table = pd.read_parquet(out / "local_scores.parquet")
    assert set(table["modification"]) == recorded
    assert set(pd.read_csv(out / "global_scores.csv")["modification"]) == recorded


def _results(out: Path) -> dict[str, int]:
    """Each result file's modification time (the lock file is rewritten by every holder)."""
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != LOCK_NAME}


def test_finished_explanation_is_kept_reused_or_overwritten(tmp_path, capsys):
    data, model, out = _images(tmp_path / "data"), _model(tmp_path / "model"), tmp_path / "out"
    assert main(_explain(model, data, out)) == 0
    capsys.readouterr()
    before = _results(out)
    assert main(_explain(model, data, out)) == 0
    assert "already complete" in capsys.readouterr().out
    assert _results(out) == before
    _fails(capsys, _explain(model, data, out, "--seed", "3"), str(out), "seed", "--overwrite")
    assert _results(out) == before
    assert main(_explain(model, data, out, "--seed", "3", "--overwrite")) == 0
    assert read_json(out / "explain.json")["seed"] == 3


def test_a_users_own_result_files_are_not_overwritten(tmp_path, capsys):
    data, model, out = _images(tmp_path / "data"), _model(tmp_path / "model"), tmp_path / "out"
    out.mkdir()
    (out / "global_scores.csv").write_text("mine\n")
    _fails(capsys, _explain(model, data, out), "global_scores.csv", "--overwrite")
    assert (out / "global_scores.csv").read_text() == "mine\n"


def test_missing_compare_with_fails_before_any_work(tmp_path, capsys):
    data, model, out = _images(tmp_path / "data"), _model(tmp_path / "model"), tmp_path / "out"
    _fails(capsys, _explain(model, data, out, "--compare-with", str(tmp_path / "none")),
           "--compare-with", "not found")  # fmt: skip
    assert not out.exists()


def test_stale_temporaries_are_removed_but_not_a_live_holders(tmp_path):
    out = tmp_path / "out"
    (out / "parts").mkdir(parents=True)
    stale_file = out / "parts" / ".part-000001.parquet.ab_cd12z.tmp"
    stale_folder = out / ".last.x1y2z3w4.tmp"
    stale_file.write_text("half")
    stale_folder.mkdir()
    keep = [out / ".model.old", out / "notes.tmp", out / ".a.b.tmp"]
    keep[0].mkdir()
    for path in keep[1:]:
        path.write_text("user")
    live = out / "busy" / ".x.abcdefgh.tmp"
    live.parent.mkdir()
    holder = _hold(live.parent)
    live.write_text("being written")
    try:
        with locked_output(out, "train"):
            assert not stale_file.exists() and not stale_folder.exists()
            assert all(path.exists() for path in keep) and live.exists()
    finally:
        holder.communicate("")


def test_nearest_rerun_with_smaller_k_leaves_no_stale_images(tmp_path):
    data, model, out = _images(tmp_path / "data", 3), _model(tmp_path / "model"), tmp_path / "near"
    base = ["nearest", str(model), str(data), "--out", str(out), "--device", "cpu"]
    assert main([*base, "--k", "3"]) == 0
    assert len(list(out.glob("p0000_r*_patch.png"))) == 3
    (out / "notes.png").write_bytes(b"user's")
    assert main([*base, "--k", "1"]) == 0
    images = sorted(p.name for p in out.glob("*.png"))
    assert images == sorted([f"p{j:04d}_r01_{kind}.png" for j in range(4)
                             for kind in ("patch", "heatmap")] + ["notes.png"])  # fmt: skip


def test_every_writing_command_takes_the_lock(tmp_path, capsys):
    data, model = _images(tmp_path / "data"), _model(tmp_path / "model")
    out = tmp_path / "busy"
    holder = _hold(out)
    try:
        for argv in (["evaluate", str(model), str(data), "--out", str(out), "--device", "cpu"],
                     ["nearest", str(model), str(data), "--out", str(out), "--device", "cpu"],
                     ["report", str(model), "--out", str(out)]):  # fmt: skip
            _fails(capsys, argv, str(out), "in use by")
    finally:
        holder.communicate("")


def test_data_and_model_commands_take_the_lock_too(tmp_path, capsys):
    data, model = _images(tmp_path / "data"), _model(tmp_path / "model")
    make_mini_cub(tmp_path / "CUB_200_2011", per_class=1, zero_byte=False)
    out = tmp_path / "busy"
    holder = _hold(out)
    try:
        for argv in (["synth", "--out", str(out), "--size", "32", "--train-per-class", "1",
                      "--test-per-class", "1"],
                     ["augment", str(data), "--out", str(out), "--copies-per-pipeline", "1"],
                     ["modify", str(data), "--out", str(out), "--modifications", "hue"],
                     ["push", str(model), str(data), "--out", str(out), "--device", "cpu"],
                     ["import-legacy", str(tmp_path / "x.pth"), "--out", str(out),
                      "--arch", "small_cnn"],
                     ["prepare-cub", str(tmp_path / "CUB_200_2011"),
                      "--out", str(out)]):  # fmt: skip
            _fails(capsys, argv, str(out), "in use by")
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
    finally:
        holder.communicate("")


def test_a_killed_synth_leaves_only_what_the_next_run_removes(tmp_path):
    out = tmp_path / "synth"
    with locked_output(out, "synth"):
        staging = temp_folder_beside(out / "data", suffix=".partial")
        (staging / "train").mkdir()  # what a kill during generation leaves
    argv = ["synth", "--out", str(out), "--size", "32", "--train-per-class", "1",
            "--test-per-class", "1"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["factors.csv", "synth.json", "test", "train"])  # the lock is gone too
    assert main(argv) == 0  # the same set again: kept as is
