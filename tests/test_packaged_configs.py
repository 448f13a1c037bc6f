"""``protoexplain config --pipeline NAME``: the packaged pipeline configs, written out."""

from __future__ import annotations

from pathlib import Path

import pytest

from protoexplain.cli import main
from protoexplain.pipeline import load_pipeline_config
from protoexplain.pipeline.packaged import packaged_config_names, packaged_config_text

PAPER = {"cub-vgg19": "vgg19", "cub-resnet34": "resnet34", "cub-densenet121": "densenet121",
         "cub-resnet34-multigpu": "resnet34", "cub-pipnet-convnext": "convnext_tiny_26"}
DEMOS = {"demo", "demo-pipnet"}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_written_cub_config_is_valid_and_reads_cub_beside_it(name, tmp_path, capsys):
    out = tmp_path / f"{name}.toml"
    assert main(["config", "--pipeline", name, "--out", str(out)]) == 0
    assert f"pipeline config '{name}' written to {out}" in capsys.readouterr().err
    config, base = load_pipeline_config(out)
    assert base == tmp_path.resolve()
    assert config.dataset.source == "cub"
    # a relative root is relative to the written file: the unpacked folder beside it
    assert Path(config.dataset.root) == tmp_path.resolve() / "CUB_200_2011"
    assert config.train.model.backbone == PAPER[name]
    assert f"protoexplain run {name}.toml" in out.read_text(encoding="utf-8")


def test_every_packaged_config_is_listed():
    assert set(packaged_config_names()) == set(PAPER) | DEMOS


def test_without_out_the_config_goes_to_stdout(capsys):
    assert main(["config", "--pipeline", "demo"]) == 0
    assert capsys.readouterr().out == packaged_config_text("demo")


def test_unknown_name_lists_the_names(tmp_path, capsys):
    assert main(["config", "--pipeline", "cub-resnet50", "--out", str(tmp_path / "x.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("protoexplain: error: no packaged pipeline config 'cub-resnet50'; choose one "
                   "of cub-densenet121, cub-pipnet-convnext, cub-resnet34, cub-resnet34-multigpu, "
                   "cub-vgg19, demo, demo-pipnet")
    assert not (tmp_path / "x.toml").exists()


@pytest.mark.parametrize("extra", [["--pipeline", "demo"], []])
def test_an_existing_file_is_kept_unless_overwrite(extra, tmp_path, capsys):
    out = tmp_path / "mine.toml"
    out.write_text("# my edits\n", encoding="utf-8")
    assert main(["config", *extra, "--out", str(out)]) == 2
    assert "mine.toml exists; choose another --out, or add --overwrite" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "# my edits\n"
    assert main(["config", *extra, "--out", str(out), "--overwrite"]) == 0
    assert out.read_text(encoding="utf-8") != "# my edits\n"
