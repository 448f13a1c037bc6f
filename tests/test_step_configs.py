"""One config per step (issue 18, item 3): the command line, the pipeline and the library share
each step's config dataclass, and the pipeline calls the library with it."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from protoexplain.analysis.evaluate import EvaluateConfig
from protoexplain.analysis.nearest import NearestConfig
from protoexplain.analysis.prune import PruneConfig
from protoexplain.cli import build_parser
from protoexplain.data.synth import generate_synthetic
from protoexplain.errors import UserError
from protoexplain.explain.config import ExplainConfig
from protoexplain.pipeline import PipelineConfig, load_pipeline_config, run_pipeline
from protoexplain.report.options import ReportOptions
from protoexplain.tomlconfig import dump_toml, from_dict, read_toml
from protoexplain.training.config import RunConfig

SRC = Path(__file__).resolve().parents[1] / "src"

#: command, its step config, and the fields deliberately not options (why in the comment)
COMMANDS = [
    # strengths: repeatable NAME=V1,V2 strings; progress: always shown on the command line
    ("explain", ExplainConfig, {"strengths", "progress"}),
    ("nearest", NearestConfig, set()),
    ("prune", PruneConfig, set()),
    ("evaluate", EvaluateConfig, set()),
    ("report", ReportOptions, set()),
]


def _subparser(name: str):
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices[name]


def _default(config_class: type, name: str):
    item = next(f for f in dataclasses.fields(config_class) if f.name == name)
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


@pytest.mark.parametrize(("command", "config_class", "not_options"), COMMANDS)
def test_every_setting_is_an_option_with_the_configs_default(command, config_class, not_options):
    actions = {a.dest: a for a in _subparser(command)._actions}
    for item in dataclasses.fields(config_class):
        if item.name in not_options:
            continue
        assert item.name in actions, f"{command}: no option for {item.name}"
        assert actions[item.name].default == _default(config_class, item.name), item.name
        help_text = actions[item.name].help
        if item.name != "images":  # --no-images says what turning it off does
            assert item.metadata["doc"].replace("%", "%%") in help_text, item.name


@pytest.mark.parametrize(("command", "config_class", "not_options"), COMMANDS)
def test_the_options_left_at_their_defaults_give_the_default_config(command, config_class,
                                                                    not_options):
    from protoexplain.cli.arguments import config_from_args

    argv = {"explain": ["m", "d", "--out", "o"], "nearest": ["m", "d"], "prune": ["m", "d"],
            "evaluate": ["m", "d"], "report": ["r"]}[command]
    args = _subparser(command).parse_args(argv)
    assert config_from_args(config_class, args, **{n: _default(config_class, n)
                                                    for n in not_options}) == config_class()


def test_the_pipelines_sections_are_the_step_configs_with_their_defaults():
    config = PipelineConfig()
    for name, config_class in (("train", RunConfig), ("prune", PruneConfig),
                               ("evaluate", EvaluateConfig), ("nearest", NearestConfig),
                               ("explain", ExplainConfig), ("report", ReportOptions)):
        section = getattr(config, name)
        assert isinstance(section, config_class), name
        shared = {f.name: getattr(section, f.name) for f in dataclasses.fields(config_class)}
        assert config_class(**shared) == config_class(), name


def test_the_pipeline_package_imports_nothing_from_the_command_line():
    for path in (SRC / "protoexplain" / "pipeline").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            assert not any(n == "protoexplain.cli" or n.startswith("protoexplain.cli.")
                           for n in names), f"{path.name} imports {names}"
    code = ("import sys, protoexplain.pipeline, protoexplain.pipeline.steps; "
            "print(sorted(m for m in sys.modules if m.startswith('protoexplain.cli')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": str(SRC)}, check=True)
    assert result.stdout.strip() == "[]"


def test_a_config_with_lists_and_tables_reads_back_from_its_toml(tmp_path):
    config = ExplainConfig(modifications=["hue", "shape"], strengths={"hue": [0.1, 0.2]},
                           max_images=5, calibrate=0.0, on_error="skip")
    path = tmp_path / "explain.toml"
    path.write_text(dump_toml(config, "a header"), encoding="utf-8")
    assert from_dict(ExplainConfig, read_toml(path), str(path)) == config


def test_a_step_setting_of_the_whole_run_is_refused_in_a_section(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[explain]\ndevice = "cuda"\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"explain.device is set for the whole run"):
        load_pipeline_config(path)


TINY = """
threads = 1

[dataset]
source = "synthetic"
size = 32
train_per_class = 3
test_per_class = 2
seed = 2

[train.data]
augmentation = "none"
validation_fraction = 0.0
[train.batch]
push = 24
test = 24
train = 12
[train.model]
prototype_depth = 4
prototypes_per_class = 1
backbone = "small_cnn"
image_size = 32
weights = "none"
[train.schedule]
epochs = 1
warm_epochs = 0
push_start = 0
push_every = 1
last_layer_epochs = 0

[evaluate]
batch_size = 7

[nearest]
enabled = false

[explain]
splits = ["test"]
modifications = ["hue", "contrast"]
calibrate = 5.0
calibration_images = 4
bootstrap = 17
seed = 3
on_error = "skip"
batch_size = 8

[report]
enabled = false
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, PipelineConfig]:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(TINY, encoding="utf-8")
    config, _ = load_pipeline_config(path)
    run_dir = tmp_path_factory.mktemp("run")
    run_pipeline(config, run_dir, device="cpu", log=lambda line: None)
    return run_dir, config


def test_explain_settings_only_the_library_had_reach_the_engine(tiny_run):
    run_dir, _ = tiny_run
    record = json.loads((run_dir / "explain" / "test" / "explain.json").read_text("utf-8"))
    assert record["bootstrap_replicates"] == 17
    assert record["seed"] == 3
    calibration = record["calibration"]
    assert calibration["target"] == 5.0 and calibration["n_images"] == 4
    assert {r["name"] for r in calibration["modifications"]} == {"hue", "contrast"}
    chosen = {r["name"]: r["strength"] for r in calibration["modifications"]}
    assert record["strengths"] == {name: [chosen[name]] for name in ("hue", "contrast")}


def test_each_step_writes_the_config_it_ran_with(tiny_run):
    run_dir, config = tiny_run
    markers = run_dir / ".pipeline"
    expected = {
        "data": config.dataset,
        "evaluate": EvaluateConfig(batch_size=7),
        "explain": dataclasses.replace(config.explain, device="cpu"),
    }
    for step, used in expected.items():
        path = markers / f"{step}.toml"
        assert from_dict(type(used), read_toml(path), str(path)) == used, step
    train = from_dict(RunConfig, read_toml(markers / "train.toml"), "train.toml")
    assert train.data.train == str((run_dir / "data" / "train").resolve())
    assert train.data.test == str((run_dir / "data" / "test").resolve())
    assert dataclasses.replace(train, data=config.train.data) == config.train
    assert (run_dir / "train.toml").read_text() == (markers / "train.toml").read_text()
    # the run folder's own training config says the same as what train() recorded
    assert from_dict(RunConfig, read_toml(run_dir / "train" / "config.toml"), "c") == train
    for step in ("prune", "nearest", "report"):  # disabled steps write nothing
        assert not (markers / f"{step}.toml").exists()


def test_explain_folder_skips_unreadable_images_when_on_error_is_skip(tiny_run, tmp_path):
    from protoexplain.explain.folder import explain_folder

    run_dir, _ = tiny_run
    data = tmp_path / "data"
    generate_synthetic(data, "mixed", 5, 32, 1, 1, progress=False)
    first_class = sorted((data / "test").iterdir())[0]
    (first_class / "broken.png").write_bytes(b"not an image")
    config = ExplainConfig(modifications=["hue"], on_error="skip", device="cpu", progress=False)
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        result = explain_folder(run_dir / "train" / "model", data / "test", tmp_path / "out",
                                config)
    assert result is not None
    assert result.stats["skipped_images"] == [str(first_class / "broken.png")]
    assert result.n_images == len(list((data / "test").rglob("*.png"))) - 1


def test_the_python_api_calibrates_too(tiny_run, tmp_path):
    from protoexplain.data import ImageFolderDataset
    from protoexplain.explain import explain_dataset
    from protoexplain.models import load_model

    run_dir, _ = tiny_run
    dataset = ImageFolderDataset(run_dir / "data" / "test")
    explain_dataset(load_model(run_dir / "train" / "model"), dataset, modifications=["hue"],
                    out_dir=tmp_path / "api", calibrate=5.0, calibration_images=2, device="cpu")
    record = json.loads((tmp_path / "api" / "explain.json").read_text("utf-8"))
    (chosen,) = record["calibration"]["modifications"]
    assert record["calibration"]["target"] == 5.0 and chosen["name"] == "hue"
    assert record["strengths"] == {"hue": [chosen["strength"]]}
