"""Bad input on the command line: one line on stderr naming the culprit, exit status 2, nothing
overwritten. Each case here once ended in a traceback or silently did the wrong thing."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers_data import run_cli
from protoexplain.cli import main
from protoexplain.data import ImageFolderDataset
from protoexplain.errors import UserError
from protoexplain.explain.export import output_names, write_modified_folder
from protoexplain.explain.modifications import resolve_settings
from protoexplain.fileio import read_json_if_intact
from protoexplain.models import ModelSpec, ProtoPNet, load_model, save_model
from protoexplain.training.config import default_config_text, load_config


def _images(root: Path, names: dict[str, list[str]], size: int = 32) -> Path:
    rng = np.random.default_rng(0)
    for folder, files in names.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in files:
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                root / folder / name)
    return root


def _model(path: Path, classes: list[str] | None = None) -> Path:
    torch.manual_seed(0)
    spec = ModelSpec("small_cnn", 2, (4, 8, 1, 1), class_names=classes or ["a", "b"],
                     image_size=32)
    save_model(ProtoPNet(spec), path)
    return path


def _fails(capsys, argv: list[str], *expected: str) -> str:
    """Run ``argv``; it must exit with 2 and print one error line that contains ``expected``
    (progress bars may precede it)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("protoexplain:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in lines[-1], lines[-1]
    return lines[-1]


def test_output_path_that_is_a_file_is_named(tmp_path, capsys):
    data = _images(tmp_path / "data", {"a": ["0.png"], "b": ["0.png"]})
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder", encoding="utf-8")
    _fails(capsys, ["modify", str(data), "--out", str(blocker), "--modifications", "hue"],
           str(blocker), "is a file, not a folder")


@pytest.mark.parametrize(("damage", "expected"), [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "is not a protoexplain model description"),
    (json.dumps({"format": "protoexplain-model", "format_version": 1}), "has no model 'spec'"),
    ("future", "format version 99, newer than"),
    ("image_size", "image size must be a whole number of pixels"),
    ("shape", "does not match the model described in model.json"),
    ("num_classes", "the number of classes must be at least 1, got 0"),
    ("prototype_class", "prototype_class must name classes 0 to 1"),
    ("mean", "mean and std must give one value per colour channel"),
    ("version_text", "has format version '1', not a whole number"),
])
def test_damaged_model_folder_is_one_line(tmp_path, capsys, damage, expected):
    model = _model(tmp_path / "model")
    data = _images(tmp_path / "data", {"a": ["0.png"], "b": ["0.png"]})
    description = json.loads((model / "model.json").read_text(encoding="utf-8"))
    edits = {
        "future": lambda d: d.update(format_version=99),
        "version_text": lambda d: d.update(format_version="1"),
        "image_size": lambda d: d["spec"].update(image_size="big"),
        "shape": lambda d: d["spec"].update(prototype_shape=[4, 16, 1, 1]),
        "num_classes": lambda d: d["spec"].update(num_classes=0, class_names=[]),
        "prototype_class": lambda d: d["spec"].update(prototype_class=[0, 1, 2, 1]),
        "mean": lambda d: d["spec"].update(mean=[0.5, 0.5]),
    }
    if damage in edits:
        edits[damage](description)
    text = json.dumps(description) if damage in edits else damage
    (model / "model.json").write_text(text, encoding="utf-8")
    _fails(capsys, ["evaluate", str(model), str(data), "--out", str(tmp_path / "ev")],
           str(model), expected)


@pytest.mark.parametrize(("argv", "expected"), [
    (["evaluate", "M", "D", "--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
    (["evaluate", "M", "D", "--workers", "-1"], "--workers: must be 0 or more, got -1"),
    (["analyze-image", "M", "x.png", "--top-k", "0"], "--top-k: must be at least 1"),
    (["nearest", "M", "D", "--k", "two"], "--k: expected a whole number, got 'two'"),
    (["import-legacy", "x.pth", "--out", "O", "--arch", "vgg11", "--image-size", "0"],
     "--image-size: must be at least 1"),
])
def test_count_options_are_checked_by_the_parser(capsys, argv, expected):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize(("strength", "expected"), [
    ("hue=0.9", "strength 0.9 of 'hue' cannot be used: hue_factor (0.9) is not in [-0.5, 0.5]"),
    ("hue=nan", "strength nan of 'hue' cannot be used: it is not a finite number"),
])
def test_unusable_strength_is_refused_before_any_work(tmp_path, capsys, strength, expected):
    data = _images(tmp_path / "data", {"a": ["0.png"], "b": ["0.png"]})
    out = tmp_path / "out"
    _fails(capsys, ["modify", str(data), "--out", str(out), "--strengths", strength], expected)
    assert not out.exists()


def test_modify_keeps_images_whose_names_differ_only_in_suffix(tmp_path, capsys):
    data = _images(tmp_path / "data", {"a": ["x.png", "x.jpg", "y.png"], "b": ["x.png"]})
    out = tmp_path / "out"
    assert main(["modify", str(data), "--out", str(out), "--modifications", "shape"]) == 0
    written = sorted(p.relative_to(out / "shape_4").as_posix() for p in out.rglob("*.png"))
    assert written == ["a/x_jpg.png", "a/x_png.png", "a/y.png", "b/x.png"]
    from_jpg = np.asarray(Image.open(out / "shape_4" / "a" / "x_jpg.png"))
    from_png = np.asarray(Image.open(out / "shape_4" / "a" / "x_png.png"))
    assert not np.array_equal(from_jpg, from_png)
    assert "4 images written" in capsys.readouterr().out.replace("\n", " ")


def test_modify_refuses_an_output_folder_inside_its_input(tmp_path, capsys):
    data = _images(tmp_path / "data", {"a": ["0.png"], "b": ["0.png"]})
    _fails(capsys, ["modify", str(data), "--out", str(data / "copies")],
           "lies inside the image folder")
    assert sorted(p.name for p in data.iterdir()) == ["a", "b"]


def test_import_legacy_never_writes_into_a_folder_that_holds_files(tmp_path, capsys):
    model = _model(tmp_path / "model")
    before = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    _fails(capsys, ["import-legacy", str(tmp_path / "any.pth"), "--out", str(model),
                    "--arch", "vgg11"],
           f"{model} is not empty")
    assert {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()} == before


@pytest.mark.parametrize(("setting", "expected"), [
    ("features_lr = 0.0001", "joint.features_lr must be 0 or more (0 freezes the part), got -1.0"),
    ("epsilon = 0.0001", "model.epsilon must be a positive number, got nan"),
    ("workers = 0", "data.workers must be 0 or more, got -2"),
])
def test_training_config_values_are_checked(tmp_path, capsys, setting, expected):
    bad = {"features_lr = 0.0001": "features_lr = -1.0", "epsilon = 0.0001": "epsilon = nan",
           "workers = 0": "workers = -2"}[setting]
    text = default_config_text()
    assert text.count(setting) == 1, setting
    config = tmp_path / "run.toml"
    config.write_text(text.replace(setting, bad), encoding="utf-8")
    _fails(capsys, ["train", "--config", str(config), "--out", str(tmp_path / "run")],
           str(config), expected)
    assert not (tmp_path / "run").exists()


def test_config_that_is_not_text_is_one_line(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_bytes(b"\xff\xfe\x00garbage")
    _fails(capsys, ["train", "--config", str(config)], f"{config} is not valid TOML")


def test_pipeline_checks_later_steps_before_training(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text("[explain]\nworkers = -3\n", encoding="utf-8")
    _fails(capsys, ["run", str(config), "--out", str(tmp_path / "run")],
           "[explain]: workers must be at least 0, got -3")
    assert not (tmp_path / "run").exists()
    config.write_text('[explain]\nstrengths = {hue = [0.9]}\n', encoding="utf-8")
    _fails(capsys, ["run", str(config), "--out", str(tmp_path / "run")],
           "[explain]", "hue_factor (0.9)")


def test_warnings_are_one_line_and_name_the_first_difference(tmp_path):
    model = _model(tmp_path / "model", classes=["a", "b"])
    data = _images(tmp_path / "data", {"a": ["0.png"], "zz": ["0.png"]})
    # a real process: under pytest, warnings are recorded instead of printed
    result = run_cli("evaluate", str(model), str(data), "--out", str(tmp_path / "ev"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "UserWarning" not in result.stderr and "warnings.warn" not in result.stderr
    warning = [line for line in result.stderr.splitlines()
               if line.startswith("protoexplain: warning")]
    assert warning == [
        f"protoexplain: warning: 1 class folders of {data} are named differently from the "
        f"classes of {model} (first: folder 1 is 'zz', the model's class 1 is 'b'); labels "
        "follow the sorted folder order"
    ]


def test_report_refuses_named_inputs_that_do_not_exist(tmp_path, capsys):
    model = _model(tmp_path / "model")
    _fails(capsys, ["report", str(model), "--evaluation", str(tmp_path / "nope")],
           "has no metrics.json; pass an 'evaluate' output folder")
    _fails(capsys, ["report", str(model), "--images", str(tmp_path / "nope")],
           "image folder", "does not exist")


def test_a_folder_given_for_a_file_is_named_as_such(tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    _fails(capsys, ["import-legacy", str(folder), "--out", str(tmp_path / "out"),
                    "--arch", "vgg11"],
           f"checkpoint {folder} is a folder, not a checkpoint file")
    _fails(capsys, ["train", "--config", str(folder)], f"{folder} is a folder, not a TOML file")
    _fails(capsys, ["run", str(folder)], f"{folder} is a folder, not a TOML file")


def test_model_json_with_a_whole_float_image_size_still_loads(tmp_path):
    model = _model(tmp_path / "model")
    description = json.loads((model / "model.json").read_text(encoding="utf-8"))
    description["spec"]["image_size"] = 32.0
    (model / "model.json").write_text(json.dumps(description), encoding="utf-8")
    assert load_model(model).spec.image_size == 32


def test_modify_output_names_are_unique_even_ignoring_case():
    root = Path("data")
    paths = [root / "a" / name for name in ("x.png", "x.jpg", "x_png.jpg", "Y.png", "y.jpg")]
    names = [name.as_posix() for name in output_names(paths, root, ".png")]
    assert names == ["a/x_png.png", "a/x_jpg.png", "a/x_png_2.png", "a/Y_png.png", "a/y_jpg.png"]


def test_modify_refuses_strengths_that_share_a_folder(tmp_path):
    data = _images(tmp_path / "data", {"a": ["0.png"], "b": ["0.png"]})
    settings = resolve_settings(["hue"], {"hue": [0.1, 0.10000001]})
    with pytest.raises(UserError, match="share an output folder"):
        write_modified_folder(ImageFolderDataset(data), tmp_path / "out", settings,
                              progress=False)
    assert not (tmp_path / "out").exists()


def test_zero_learning_rate_freezes_a_part_and_is_accepted(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(default_config_text().replace("features_lr = 0.0001", "features_lr = 0.0"),
                      encoding="utf-8")
    assert load_config(config).joint.features_lr == 0.0


@pytest.mark.parametrize(("text", "expected"), [
    ("[explain]\nstrengths = {hue = 0.2}\n", "strengths of 'hue' must be a list of numbers"),
    ('[explain]\nstrengths = {hue = ["x"]}\n', "strengths of 'hue' must be a list of numbers"),
    ("[prune]\nenabled = true\nk = 4\ntau = 5\n",
     "[prune]: tau (τ = 5) must be between 0 and k (4)"),
])
def test_pipeline_config_errors_are_one_line(tmp_path, capsys, text, expected):
    config = tmp_path / "run.toml"
    config.write_text(text, encoding="utf-8")
    _fails(capsys, ["run", str(config), "--out", str(tmp_path / "run")], expected)


def test_damaged_marker_or_cache_reads_as_missing(tmp_path):
    marker = tmp_path / "step.json"
    assert read_json_if_intact(marker) is None
    marker.write_text('{"digest": ', encoding="utf-8")
    assert read_json_if_intact(marker) is None
    marker.write_text('{"digest": "abc"}', encoding="utf-8")
    assert read_json_if_intact(marker) == {"digest": "abc"}


def test_main_restores_the_warning_format(tmp_path, capsys):
    before = warnings.formatwarning
    model = _model(tmp_path / "model")
    data = _images(tmp_path / "data", {"a": ["0.png"], "b": ["0.png"]})
    assert main(["evaluate", str(model), str(data), "--out", str(tmp_path / "ev")]) == 0
    assert warnings.formatwarning is before


def test_training_on_a_class_folder_without_images_is_refused(tmp_path, capsys):
    """Issue 20, 10: a class it could never learn was only mentioned in train.log."""
    data = _images(tmp_path / "data", {"train/a": ["0.png", "1.png"], "train/b": ["0.png"],
                                       "test/a": ["0.png"], "test/b": ["0.png"]})  # fmt: skip
    (data / "train" / "c").mkdir()
    (data / "train" / "c" / "readme.txt").write_text("not an image")
    (data / "test" / "c").mkdir()
    config = tmp_path / "c.toml"
    config.write_text(default_config_text().replace('train = ""', f'train = "{data / "train"}"')
                      .replace('test = ""', f'test = "{data / "test"}"'), encoding="utf-8")
    _fails(capsys, ["train", "--config", str(config), "--out", str(tmp_path / "run"),
                    "--device", "cpu"], "without images", "'c'", "remove those folders")
    assert not (tmp_path / "run" / "model").exists()


def test_explain_refuses_a_data_folder_with_another_class_count(tmp_path, capsys):
    data = _images(tmp_path / "data", {"a": ["0.png"], "b": ["0.png"], "c": ["0.png"]})
    model = _model(tmp_path / "model")
    _fails(capsys, ["explain", str(model), str(data), "--out", str(tmp_path / "out"),
                    "--device", "cpu", "--workers", "0"],
           "3 class folders", "2 classes")  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_report_on_truncated_weights_is_one_line_and_writes_nothing(tmp_path, capsys):
    """Issue 20, 9: a SafetensorError traceback from the redundancy findings."""
    model = _model(tmp_path / "model")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    out = tmp_path / "report"
    _fails(capsys, ["report", str(model), "--out", str(out)], f"cannot read {weights}",
           "the weights file is damaged")
    assert not out.exists()


def test_class_names_are_drawn_as_plain_text_not_mathtext(tmp_path, capsys):
    """Issue 20, 9: '$…$' in a class name went to matplotlib's mathtext parser (a traceback for
    an invalid expression such as an unclosed group)."""
    names = [r"x$\frac{a$", "b"]
    model = _model(tmp_path / "model", classes=names)
    data = _images(tmp_path / "data", {names[0]: ["0.png"], "b": ["0.png"]})
    out = tmp_path / "analysis"
    argv = ["analyze-image", str(model), str(data / names[0] / "0.png"), "--out", str(out),
            "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    assert Image.open(out / "analysis.png").size[0] > 0
