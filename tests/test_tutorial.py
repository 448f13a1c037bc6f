"""docs/tutorial.ipynb runs from top to bottom (its code cells in one namespace, as a kernel would;
nbclient is not a dependency) with the tiny stand-in model it builds when no demo run exists."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"
PAPER_CHARACTERISTICS = ["brightness", "contrast", "hue", "saturation", "shape", "texture"]


def code_cells(path: Path) -> list[str]:
    """The source of every code cell, in order."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["nbformat"] == 4
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_tutorial_notebook_runs(tmp_path, monkeypatch, capsys):
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # no demo-output/ here: the notebook builds its stand-in
    namespace: dict = {}
    for number, source in enumerate(code_cells(NOTEBOOK)):
        exec(compile(source, f"{NOTEBOOK.name} cell {number}", "exec"), namespace)
    out = capsys.readouterr().out
    model, result, importance = namespace["model"], namespace["result"], namespace["importance"]
    assert result.n_images == 10
    assert list(importance.index) == list(range(model.num_prototypes))
    assert list(importance.columns) == PAPER_CHARACTERISTICS
    assert len(namespace["ax"].patches) == model.num_prototypes * len(PAPER_CHARACTERISTICS)
    assert (tmp_path / "tutorial-output" / "train" / "model" / "model.json").is_file()
    assert "run `make demo`" in out
    # run again in the same folder: the stand-in is reused (training into it again would stop
    # with "already holds a training run")
    exec(compile(code_cells(NOTEBOOK)[0], "cell 0 again", "exec"), namespace)
