"""End-to-end runs: config errors, dry run, run folder, kill + resume."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers_training import TINY_TRAIN_CONFIG
from protoexplain.data import generate_synthetic
from protoexplain.errors import UserError
from protoexplain.fileio import read_json
from protoexplain.training import default_config_text, load_config

SRC = Path(__file__).resolve().parents[1] / "src"

CONFIG = TINY_TRAIN_CONFIG.replace("{seed}", "3").replace(
    "{last_layer_epochs}", "2"
)


def protoexplain(*args, popen=False):
    command = [sys.executable, "-m", "protoexplain", *args]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    if popen:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800,
                          check=False)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    generate_synthetic(root / "synth", "mixed", seed=0, size=32, train_per_class=4,
                       test_per_class=2, progress=False)
    path = root / "run.toml"
    path.write_text(CONFIG.format(data=(root / "synth").as_posix()), encoding="utf-8")
    return path


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def test_default_config_round_trips_and_unknown_keys_fail(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(default_config_text(), encoding="utf-8")
    config = load_config(path)
    assert (config.batch.train, config.batch.test, config.batch.push) == (80, 100, 75)
    assert (config.loss.cluster, config.loss.separation, config.loss.l1) == (0.8, -0.08, 1e-4)
    path.write_text(default_config_text() + "\n[extra]\nx = 1\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"extra.*c\.toml|c\.toml.*extra"):
        load_config(path)
    path.write_text(default_config_text().replace("[joint]", "[joint]\nweight_decay_rate = 1"))
    with pytest.raises(UserError, match=r"joint\.weight_decay_rate"):
        load_config(path)


def test_dry_run_writes_a_complete_run_folder(config_file, tmp_path):
    result = protoexplain("train", "--config", str(config_file), "--out", str(tmp_path / "run"),
                          "--dry-run", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "run"
    for name in ("config.toml", "run.json", "metrics.csv", "train.log",
                 "checkpoints/last/training.json", "model/model.json",
                 "model/prototypes/records.csv"):
        assert (run / name).is_file(), name
    phases = [row["phase"] for row in read_json(run / "checkpoints/last/training.json")
              ["progress"]["metrics"]]
    assert phases == ["warm", "joint", "push", "last_layer"]
    assert "trained model" in result.stdout


@pytest.mark.e2e
def test_kill_and_resume_gives_the_uninterrupted_weights(config_file, tmp_path):
    full = protoexplain("train", "--config", str(config_file), "--out", str(tmp_path / "full"),
                        "--device", "cpu")
    assert full.returncode == 0, full.stderr[-2000:]
    killed = tmp_path / "killed"
    process = protoexplain("train", "--config", str(config_file), "--out", str(killed),
                           "--device", "cpu", popen=True)
    state = killed / "checkpoints" / "last" / "training.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if state.is_file() and read_json(state)["progress"]["completed_steps"] >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "model").exists()
    resumed = protoexplain("train", "--config", str(config_file), "--out", str(killed),
                           "--device", "cpu", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected, got = weights(tmp_path / "full"), weights(killed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    metrics = (killed / "metrics.csv").read_text().splitlines()
    assert len(metrics) == len((tmp_path / "full" / "metrics.csv").read_text().splitlines())


def test_rerun_into_a_used_folder_is_a_user_error(config_file, tmp_path):
    (tmp_path / "checkpoints" / "last").mkdir(parents=True)
    result = protoexplain("train", "--config", str(config_file), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "--resume" in result.stderr


def test_resume_with_an_edited_config_names_what_differs(config_file, tmp_path, capsys):
    """Issue 20, 10: the message named the given file as if it were the run's own."""
    from protoexplain.cli import main
    from protoexplain.training.config import dump_config

    out = tmp_path / "run"
    out.mkdir()
    started = load_config(config_file)
    started.seed += 1
    (out / "config.toml").write_text(dump_config(started, "the run's own"), encoding="utf-8")
    argv = ["train", "--config", str(config_file), "--out", str(out), "--resume", "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("protoexplain: error: the given config differs from ")
    assert f"in seed; resume with --config {out / 'config.toml'}" in err


def test_resume_after_editing_the_runs_own_config_says_it_was_edited(config_file, tmp_path,
                                                                       capsys):
    """Issue 20, 10: `--config OUT/config.toml` after editing it was 'differs from the given'."""
    from protoexplain.cli import main

    out = tmp_path / "run"
    base = ["train", "--out", str(out), "--device", "cpu", "--dry-run"]
    assert main([*base, "--config", str(config_file)]) == 0
    own = out / "config.toml"
    own.write_text(own.read_text(encoding="utf-8").replace("seed = 3", "seed = 4"),
                   encoding="utf-8")
    capsys.readouterr()
    assert main([*base, "--config", str(own), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"protoexplain: error: {own} was edited after this run started")
    assert "differs in seed" in err[0] and "undo the edit" in err[0]
    own.write_text(own.read_text(encoding="utf-8").replace("seed = 4", "seed = 3"),
                   encoding="utf-8")
    assert main([*base, "--config", str(own), "--resume"]) == 0  # undone: resumes


@pytest.mark.parametrize("damage", ["truncated", "other model"])
def test_resume_from_a_damaged_or_foreign_checkpoint_is_one_line(config_file, tmp_path, capsys,
                                                                 damage):
    from protoexplain.cli import main
    from protoexplain.models import ModelSpec, ProtoPNet, save_model

    out = tmp_path / "run"
    argv = ["train", "--config", str(config_file), "--out", str(out), "--device", "cpu",
            "--dry-run"]
    assert main(argv) == 0
    last = out / "checkpoints" / "last"
    weights_file = last / "model.safetensors"
    if damage == "truncated":
        weights_file.write_bytes(weights_file.read_bytes()[:100])
    else:
        other = ModelSpec("small_cnn", 2, (4, 8, 1, 1), class_names=["a", "b"], image_size=32)
        save_model(ProtoPNet(other), tmp_path / "other")
        weights_file.write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"protoexplain: error: checkpoint {last} cannot be resumed")
    assert "train into a new --out folder" in lines[0]


def test_bad_data_is_refused_before_the_run_folder_is_written(tmp_path, capsys):
    """Issue 20, 6: train wrote config.toml and run.json, then refused the data."""
    from protoexplain.cli import main

    data = tmp_path / "synth"
    generate_synthetic(data, "mixed", seed=0, size=32, train_per_class=2, test_per_class=1,
                       progress=False)
    shutil.rmtree(next(path for path in sorted((data / "test").iterdir()) if path.is_dir()))
    config = tmp_path / "run.toml"
    config.write_text(CONFIG.format(data=data.as_posix()), encoding="utf-8")
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    argv = ["train", "--config", str(config), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "classes but" in err[0], err
    assert sorted(path.name for path in out.iterdir()) == ["notes.txt"]


def test_push_images_last_writes_pngs_for_the_last_push_only(config_file, tmp_path):
    """``schedule.push_images = "last"``: earlier pushes write records only, the last push (and
    so the final model) its PNGs as well."""
    from protoexplain.cli import main

    text = config_file.read_text(encoding="utf-8").replace(
        "push_start = 2\npush_every = 10\n",
        'push_start = 0\npush_every = 2\npush_images = "last"\n',
    ).replace("last_layer_epochs = 2\n", "last_layer_epochs = 0\n")
    path, run = tmp_path / "last.toml", tmp_path / "run"
    path.write_text(text, encoding="utf-8")
    assert main(["train", "--config", str(path), "--out", str(run), "--device", "cpu"]) == 0
    first = run / "checkpoints" / "push-e000" / "prototypes"
    final = run / "checkpoints" / "push-e002" / "prototypes"
    assert not list(first.glob("*.png")) and read_json(first / "push.json")["images"] is False
    assert read_json(final / "push.json")["images"] is True
    assert len(list(final.glob("*.png"))) == 4 * read_json(final / "push.json")["num_pushed"]
    assert sorted(p.name for p in (run / "model" / "prototypes").glob("*.png")) == sorted(
        p.name for p in final.glob("*.png"))
    assert (first / "records.csv").is_file()


def test_push_images_takes_every_or_last(config_file, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(config_file.read_text(encoding="utf-8").replace(
        "push_every = 10\n", 'push_every = 10\npush_images = "first"\n'), encoding="utf-8")
    with pytest.raises(UserError, match=r"schedule\.push_images = 'first'; use one of"):
        load_config(path)
