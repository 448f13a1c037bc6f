"""The wheel is a product: built from the sources, installed into a fresh virtual environment, it
carries the pipeline configs and runs the demo's first step.

No network: the wheel is built without build isolation, and the fresh environment reaches the
dependencies (torch, numpy, ...) through a ``.pth`` line naming this environment's
site-packages. A path line in a ``.pth`` file does not run the ``.pth`` files of the folder it
names, so this environment's editable install of protoexplain stays out of the fresh one.
About 40 s on two busy cores, so it runs with the everyday suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from protoexplain.pipeline.packaged import packaged_config_names, packaged_config_text

ROOT = Path(__file__).resolve().parents[1]
CUB_CONFIGS = {"cub-vgg19", "cub-resnet34", "cub-densenet121", "cub-resnet34-multigpu",
               "cub-pipnet-convnext"}


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=1800, check=False)
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its ``bin`` folder."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy, so that the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--wheel-dir", work / "dist", source)
    (wheel,) = (work / "dist").glob("protoexplain-*.whl")
    _run(sys.executable, "-m", "venv", "--without-pip", work / "venv")
    bin_dir = work / "venv" / "bin"
    site = Path(_run(bin_dir / "python", "-c",
                     "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "--no-deps",
         "--no-index", "--disable-pip-version-check", wheel)
    return bin_dir


def test_the_wheel_declares_ranges_for_torch():
    # the tested versions live in constraints.txt; the wheel must not replace a user's torch
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"torch>=2.1,<3"' in text and '"torchvision>=0.16,<1"' in text
    constraints = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    assert "torch==2.14.1" in constraints and "torchvision==0.29.1" in constraints


@pytest.mark.e2e  # builds a wheel and a fresh venv: about 35 s
def test_installed_wheel_holds_the_configs_and_runs_the_first_step(installed, tmp_path):
    package = Path(_run(installed / "python", "-c",
                        "import protoexplain; print(protoexplain.__file__)").strip()).parent
    assert package.is_relative_to(installed.parent), package  # the wheel, not this checkout
    shipped = {p.stem for p in (package / "pipeline" / "configs").glob("*.toml")}
    assert shipped == CUB_CONFIGS | {"demo", "demo-pipnet"} == set(packaged_config_names())

    _run(installed / "protoexplain", "config", "--pipeline", "cub-resnet34", "--out", "cub.toml",
         cwd=tmp_path)
    assert (tmp_path / "cub.toml").read_text(encoding="utf-8") == packaged_config_text(
        "cub-resnet34")

    # the demo's first step, the synthetic data, from the installed command
    _run(installed / "protoexplain", "synth", "--out", "data", "--size", "32",
         "--train-per-class", "1", "--test-per-class", "1", cwd=tmp_path)
    for split in ("train", "test"):
        classes = sorted(p for p in (tmp_path / "data" / split).iterdir() if p.is_dir())
        assert len(classes) == 8 and all(len(list(c.glob("*.png"))) == 1 for c in classes)


@pytest.mark.e2e  # builds a wheel and a fresh venv: about 35 s
def test_wheel_metadata_names_the_tensorboard_extra(installed):
    dist = next(installed.parent.glob("lib/python*/site-packages/protoexplain-*.dist-info"))
    metadata = (dist / "METADATA").read_text(encoding="utf-8")
    assert "Provides-Extra: tensorboard" in metadata
    assert "Requires-Dist: torch<3,>=2.1" in metadata
