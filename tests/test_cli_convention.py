"""One command-line convention for every command, checked over the whole parser tree.

The tree is walked, not listed, so that a new command is held to the convention too: ``--out DIR``
for the output; ``CONFIG`` or ``--config FILE``; ``--device`` defaults to auto; ``--workers``
defaults to 0; plural ``--strengths``. Old spellings keep working with a one-line deprecation
warning, and a wrong option prints the usage of the command it was given to.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from protoexplain.cli import build_parser, main

# commands that write nothing: listing them (rather than those that write) makes a new command
# that forgets --out fail this test
WRITES_NOTHING = {"backbones"}


def _leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) for every command that runs something."""
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield " ".join(path), parser
        return
    for action in subcommands:
        for name, child in action.choices.items():
            yield from _leaf_commands(child, (*path, name))


COMMANDS = dict(_leaf_commands(build_parser()))


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every visible option string of ``parser`` and its action."""
    return {option: action for action in parser._actions if action.help != argparse.SUPPRESS
            for option in action.option_strings}


def _visible_positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not a.option_strings and a.help != argparse.SUPPRESS
            and not isinstance(a, argparse._SubParsersAction)]


def test_the_walk_finds_nested_and_top_level_commands():
    assert {"explain", "synth", "run", "benchmark faithfulness", "benchmark combine"} <= set(
        COMMANDS)
    assert "benchmark" not in COMMANDS  # a group, not a command


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - WRITES_NOTHING))
def test_every_command_that_writes_takes_out(name):
    parser = COMMANDS[name]
    assert "--out" in _options(parser), name
    for action in _visible_positionals(parser):
        words = f"{action.dest} {action.metavar or ''}".lower()
        assert "out" not in words, f"{name}: output as the positional {action.metavar}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_device_defaults_to_auto_and_workers_to_zero(name):
    parser = COMMANDS[name]
    options = _options(parser)
    if "--device" in options:
        default = options["--device"].default
        # a config-driven command takes the config's device, whose own default is auto
        assert default == "auto" or (default is None and "--config" in options), (name, default)
    if "--workers" in options:
        assert options["--workers"].default == 0, name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_options_taking_several_strengths_are_plural(name):
    options = _options(COMMANDS[name])
    assert "--strength" not in options, name
    for option, action in options.items():
        if action.dest == "strengths":
            assert option == "--strengths", (name, option)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_config_is_taken_both_ways(name):
    parser = COMMANDS[name]
    options = _options(parser)
    positional = [a for a in _visible_positionals(parser) if a.metavar == "CONFIG"]
    assert bool(positional) == ("--config" in options), name
    if positional:
        config = Path("c.toml")
        assert parser.parse_args(["c.toml"]).config == config
        assert parser.parse_args(["--config", "c.toml"]).config == config


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_wrong_option_prints_that_commands_usage(name, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([*name.split(), "--no-such-option"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: protoexplain {name} "), err
    assert f"protoexplain {name}: error:" in err


@pytest.mark.parametrize("argv", [
    ["synth", "--no-such-option", "--out", "x"],
    ["benchmark", "faithfulness", "--quick", "--no-such-option"],
    ["explain", "M", "D", "--out", "O", "--no-such-option"],
])
def test_the_wrong_option_is_named(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert "error: unrecognized arguments: --no-such-option" in capsys.readouterr().err


DEPRECATION = "is deprecated and goes away in 0.3; write --out OUT_DIR"


@pytest.mark.parametrize(("argv", "expected"), [
    (["synth", "data"], {}),
    (["augment", "in", "data"], {"in_dir": "in"}),
    (["prepare-cub", "cub", "data"], {"cub_root": "cub"}),
    (["modify", "in", "data"], {"in_dir": "in"}),
    (["explain", "M", "D", "data"], {"model_dir": "M", "data_dir": "D"}),
    # options between the other positionals and the old OUT
    (["explain", "M", "D", "--mode", "fast", "data"], {"model_dir": "M", "mode": "fast"}),
    (["import-legacy", "x.pth", "data", "--arch", "vgg11"], {"arch": "vgg11"}),
])
def test_the_old_positional_output_still_works_with_a_warning(argv, expected, capsys):
    args = build_parser().parse_args(argv)
    assert args.out == Path("data")
    assert {key: getattr(args, key) for key in expected} == expected
    assert not hasattr(args, "out_positional")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("protoexplain: warning: the positional "
                                                   "OUT_DIR of 'protoexplain ")
    assert lines[0].endswith(DEPRECATION)


def test_the_new_spelling_prints_no_warning(capsys):
    args = build_parser().parse_args(["explain", "M", "D", "--out", "data"])
    assert args.out == Path("data")
    assert capsys.readouterr().err == ""


def test_the_output_given_both_ways_is_refused(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["synth", "a", "--out", "b"])
    assert "OUT_DIR and --out name the same thing; give one" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["synth"], ["explain", "M", "D"]])
def test_a_missing_output_is_named_in_the_commands_usage(argv, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert err.startswith(f"usage: protoexplain {argv[0]} [-h] --out DIR")
    assert "error: the following arguments are required: --out" in err


def test_a_missing_config_is_named(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train"])
    assert "error: the following arguments are required: CONFIG" in capsys.readouterr().err


def test_old_synth_spelling_writes_the_same_data(tmp_path, capsys):
    common = ["--size", "32", "--train-per-class", "1", "--test-per-class", "1"]
    assert main(["synth", str(tmp_path / "old"), *common]) == 0
    assert main(["synth", "--out", str(tmp_path / "new"), *common]) == 0
    assert DEPRECATION in capsys.readouterr().err
    old = sorted(p.relative_to(tmp_path / "old") for p in (tmp_path / "old").rglob("*.png"))
    new = sorted(p.relative_to(tmp_path / "new") for p in (tmp_path / "new").rglob("*.png"))
    assert old == new and len(old) == 16  # 8 classes × (1 train + 1 test)
    for path in old:
        assert (tmp_path / "old" / path).read_bytes() == (tmp_path / "new" / path).read_bytes()


def test_old_modify_strength_spelling_still_works(tmp_path, capsys):
    data = tmp_path / "data"
    for label in ("a", "b"):
        (data / label).mkdir(parents=True)
        pixels = np.full((16, 16, 3), (200, 40, 40), dtype=np.uint8)
        Image.fromarray(pixels).save(data / label / "0.png")
    assert main(["modify", str(data), "--out", str(tmp_path / "out"), "--modifications", "hue",
                 "--strength", "hue=0.25", "--strengths", "hue=0.1,0.2"]) == 0
    err = capsys.readouterr().err
    assert "protoexplain: warning: --strength is deprecated and goes away in 0.3; write " \
           "--strengths" in err
    # both spellings add up: one folder per strength
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "hue_0.1", "hue_0.2", "hue_0.25"]
    assert len(list((tmp_path / "out").rglob("*.png"))) == 3 * 2
