"""``protoexplain run``: every output exists and parses, reruns skip, a killed run completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from protoexplain.errors import UserError
from protoexplain.models import load_model
from protoexplain.pipeline import load_pipeline_config, run_pipeline
from protoexplain.pipeline.summary import dominant_characteristics

SRC = Path(__file__).resolve().parents[1] / "src"

TINY_CONFIG = """
threads = 1

[dataset]
source = "synthetic"
preset = "mixed"
size = 32
train_per_class = 4
test_per_class = 2
seed = 1

[train]
seed = 0
[train.data]
augmentation = "none"
validation_fraction = 0.25
[train.model]
backbone = "small_cnn"
weights = "none"
image_size = 32
prototypes_per_class = 1
prototype_depth = 8
[train.batch]
train = 16
test = 32
push = 32
[train.schedule]
epochs = 2
warm_epochs = 1
push_start = 1
push_every = 1
last_layer_epochs = 1

[nearest]
k = 2

[explain]
splits = ["train", "test"]
batch_size = 16
workers = 0

[report]
max_prototype_pages = 2
workers = 1
"""

EXPECTED_FILES = [
    "data/train", "data/test", "data/factors.csv",
    "train.toml", "train/metrics.csv", "train/model/model.json",
    "train/model/model.safetensors", "train/model/prototypes/records.csv",
    "evaluation/metrics.json", "evaluation/per_class.csv", "evaluation/confusion.csv",
    "nearest/nearest.csv",
    "explain/train/global_scores.csv", "explain/train/local_scores.parquet",
    "explain/train/stats.json", "explain/test/global_scores.csv",
    "explain/test/local_scores.parquet", "explain/test/stats.json",
    "report/index.html",
]


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(TINY_CONFIG, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def finished_run(tiny_config, tmp_path_factory) -> Path:
    config, _ = load_pipeline_config(tiny_config)
    run_dir = tmp_path_factory.mktemp("run")
    threads = torch.get_num_threads()
    outcomes = run_pipeline(config, run_dir, device="cpu", log=lambda line: None)
    assert [o.status for o in outcomes] == [
        "ran", "ran", "disabled", "ran", "ran", "ran", "ran"
    ]
    assert torch.get_num_threads() == threads  # the config's thread count held only for the run
    return run_dir


def test_run_records_what_its_numbers_depend_on(finished_run):
    expected = {
        "torch": torch.__version__, "threads": 1,  # the config's, whatever the machine's default
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    for path in (finished_run / "train" / "run.json", finished_run / ".pipeline" / "explain.json"):
        recorded = json.loads(path.read_text())
        assert {key: recorded[key] for key in expected} == expected, path


def test_every_expected_output_exists_and_parses(finished_run):
    for name in EXPECTED_FILES:
        assert (finished_run / name).exists(), name
    metrics = json.loads((finished_run / "evaluation" / "metrics.json").read_text())
    assert 0.0 <= metrics["models"][0]["top1"] <= 1.0
    model = load_model(finished_run / "train" / "model")
    assert model.num_prototypes == 8
    for split in ("train", "test"):
        scores = pd.read_csv(finished_run / "explain" / split / "global_scores.csv")
        assert set(scores["prototype"]) == set(range(8))
        assert set(scores["modification"]) == {
            "contrast", "saturation", "hue", "brightness", "shape", "texture"
        }
        local = pd.read_parquet(finished_run / "explain" / split / "local_scores.parquet")
        assert len(local) == len(list((finished_run / "data" / split).rglob("*.png"))) * 8 * 6
    stats = json.loads((finished_run / "explain" / "test" / "stats.json").read_text())
    assert stats
    nearest = pd.read_csv(finished_run / "nearest" / "nearest.csv")
    assert set(nearest["prototype"]) == set(range(8))
    html = (finished_run / "report" / "index.html").read_text(encoding="utf-8")
    for class_dir in (finished_run / "data" / "train").iterdir():
        assert class_dir.name in html


def test_rerun_skips_every_finished_step(finished_run, tiny_config):
    config, _ = load_pipeline_config(tiny_config)
    before = (finished_run / "train" / "model" / "model.safetensors").stat().st_mtime_ns
    outcomes = run_pipeline(config, finished_run, device="cpu", log=lambda line: None)
    assert {o.status for o in outcomes} == {"skipped", "disabled"}
    assert (finished_run / "train" / "model" / "model.safetensors").stat().st_mtime_ns == before


def test_changed_explain_settings_redo_explain_and_report_only(finished_run, tiny_config,
                                                               tmp_path):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run, run_dir)
    config, _ = load_pipeline_config(tiny_config)
    config.explain.splits = ["test"]
    config.explain.modify_at = "model"
    outcomes = {o.name: o.status for o in run_pipeline(config, run_dir, device="cpu",
                                                       log=lambda line: None)}
    assert outcomes == {"data": "skipped", "train": "skipped", "prune": "disabled",
                        "evaluate": "skipped", "nearest": "skipped", "explain": "ran",
                        "report": "ran"}
    record = json.loads((run_dir / "explain" / "test" / "explain.json").read_text("utf-8"))
    assert record["modify_at"] == "model"


@pytest.mark.parametrize("section", ["dataset", "train"])
def test_run_into_a_run_of_other_data_or_training_writes_nothing(finished_run, tiny_config,
                                                                   tmp_path, section):
    """Issue 20, 6: a refused `run --out OTHER_RUN` must not have rewritten that run's files."""
    import shutil

    run_dir = tmp_path / "other"
    shutil.copytree(finished_run, run_dir)
    config, _ = load_pipeline_config(tiny_config)
    if section == "dataset":
        config.dataset.seed += 1
    else:
        config.train.seed = 7
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match=r"holds a finished '(data|train)' step made with other"):
        run_pipeline(config, run_dir, device="cpu", log=lambda line: None)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_unknown_choices_are_one_line_errors(tmp_path):
    for section, key, value in (("explain", "modify_at", "screen"), ("explain", "mode", "quick"),
                                ("dataset", "background", "busy")):
        path = tmp_path / f"{key}.toml"
        header = f"[{section}]\n"
        path.write_text(TINY_CONFIG.replace(header, f"{header}{key} = \"{value}\"\n"),
                        encoding="utf-8")
        with pytest.raises(UserError, match=rf"{section}\]?[.:] ?{key} must be one of"):
            load_pipeline_config(path)
    path = tmp_path / "threads.toml"
    path.write_text(TINY_CONFIG.replace("threads = 1", "threads = -1"), encoding="utf-8")
    with pytest.raises(UserError, match="threads must be at least 0"):
        load_pipeline_config(path)


def test_dominant_characteristic_per_class_is_the_largest_mean():
    scores = pd.DataFrame({
        "prototype": [0, 0, 1, 1, 2, 2],
        "prototype_class": [0, 0, 0, 0, 1, 1],
        "modification": ["hue", "shape"] * 3,
        "strength": [0.1, 4.0] * 3,
        "weighted_delta": [1.0, 0.5, 0.2, 0.9, -0.1, 0.3],
    })
    table = dominant_characteristics(scores)
    # class 0: hue mean 0.6, shape mean 0.7 -> shape; class 1: shape 0.3 > hue -0.1
    assert table["characteristic"].tolist() == ["shape", "shape"]
    assert table["importance"].tolist() == pytest.approx([0.7, 0.3])
    assert table["prototypes"].tolist() == [2, 1]


@pytest.mark.e2e
def test_killed_run_completes_with_the_same_results(finished_run, tiny_config, tmp_path):
    run_dir = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "protoexplain", "run", str(tiny_config),
               "--out", str(run_dir), "--device", "cpu"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (run_dir / "train" / "checkpoints" / "last").exists():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "report" / "index.html").exists()

    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pipeline finished" in result.stdout
    for name in EXPECTED_FILES:
        assert (run_dir / name).exists(), name
    first = load_model(finished_run / "train" / "model").state_dict()
    second = load_model(run_dir / "train" / "model").state_dict()
    for key, value in first.items():
        torch.testing.assert_close(second[key], value, msg=key)
    for split in ("train", "test"):
        a = pd.read_csv(finished_run / "explain" / split / "global_scores.csv")
        b = pd.read_csv(run_dir / "explain" / split / "global_scores.csv")
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.e2e
def test_run_under_torchrun_with_two_processes(tiny_config, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "protoexplain", "run", str(tiny_config),
               "--out", str(tmp_path / "ddp"), "--device", "cpu"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=2400,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("pipeline finished") == 1  # only process 0 reports
    for name in EXPECTED_FILES:
        assert (tmp_path / "ddp" / name).exists(), name
    assert json.loads((tmp_path / "ddp" / "train" / "run.json").read_text())["world_size"] == 2
    for split in ("train", "test"):
        local = pd.read_parquet(tmp_path / "ddp" / "explain" / split / "local_scores.parquet")
        images = len(list((tmp_path / "ddp" / "data" / split).rglob("*.png")))
        assert local.groupby(["image", "prototype", "modification"]).ngroups == images * 8 * 6
