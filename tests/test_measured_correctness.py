"""The benchmark's measured correctness where the user sees scores: ``explain``'s summary and the
report show each characteristic's M1 and warn when the family in use is entangled."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from helpers_data import noise_folder
from helpers_report import build_run
from protoexplain.data import ImageFolderDataset
from protoexplain.explain import measured, run_explain
from protoexplain.explain.engine import ExplainConfig
from protoexplain.models import ModelSpec, ProtoPNet
from protoexplain.report.inputs import locate_inputs
from protoexplain.report.render import ReportOptions, build_report

OPTIONS = ReportOptions(local_images=1, formats=("png",), workers=1)
FACTORS = ("hue", "saturation", "brightness", "contrast", "shape", "texture")


def _entry(rho: float) -> dict:
    return {"rho": rho, "low": rho - 0.1, "high": rho + 0.05, "prototypes": 120}


def _results() -> dict:
    """A results file in the benchmark's format: in perceptual, no characteristic follows another
    factor; in paper, contrast follows hue (0.71 against its own 0.32)."""
    perceptual = {f: _entry(0.5 + 0.05 * i) for i, f in enumerate(FACTORS)}
    paper = {f: _entry(0.4 + 0.05 * i) for i, f in enumerate(FACTORS)}
    cross = {f: {g: (0.9 if f == g else 0.1) for g in FACTORS} for f in FACTORS}
    paper_cross = {f: dict(row) for f, row in cross.items()}
    paper_cross["contrast"].update(contrast=0.32, hue=0.71, saturation=0.2)
    return {"families": {"paper": paper, "perceptual": perceptual},
            "cross": {"paper": paper_cross, "perceptual": cross},
            "entangled": {"paper": ["contrast"], "perceptual": []},
            "seeds": [0, 1, 2], "images_per_preset": 200, "config": {"headline": 5.0}}


@pytest.fixture
def results(monkeypatch) -> dict:
    found = _results()
    monkeypatch.setattr(measured, "load_results", lambda path=None: found)
    return found


def test_labels_and_warnings_from_the_results_file(tmp_path: Path):
    path = tmp_path / "correctness.json"
    path.write_text(json.dumps(_results()), encoding="utf-8")
    paper = measured.family_correctness("paper", measured.load_results(path))
    # brightness is the third factor: 0.4 + 0.05·2 = 0.50, interval 0.40–0.55
    assert paper.label("brightness") == "M1 ρ 0.50 (0.40–0.55)"
    assert paper.label("no such characteristic") == "not measured"
    assert paper.warnings[0].startswith("known: its contrast and saturation")
    assert paper.warnings[1] == ("measured: the contrast score follows the hue intervention "
                                 "(ρ 0.71) more than the contrast one (ρ 0.32)")
    perceptual = measured.family_correctness("perceptual", measured.load_results(path))
    assert perceptual.warnings == []
    assert measured.family_correctness("other", _results()) is None
    assert measured.load_results(tmp_path / "missing.json") is None


@pytest.mark.parametrize("family", ["paper", "perceptual"])
def test_explain_summary_shows_each_characteristics_correctness(tmp_path, results, family):
    torch.manual_seed(0)
    model = ProtoPNet(ModelSpec("small_cnn", 2, (2, 16, 1, 1), image_size=32)).eval()
    config = ExplainConfig(family=family, modifications=["hue", "contrast"],
                           strengths={"hue": [0.1], "contrast": [0.5]}, bootstrap=0,
                           device="cpu", progress=False)
    data = ImageFolderDataset(noise_folder(tmp_path / "data", 2, 0))
    run_explain(model, data, tmp_path / "out", config)
    text = (tmp_path / "out" / "summary.txt").read_text(encoding="utf-8")
    expected = {name: f"M1 ρ {e['rho']:.2f} ({e['low']:.2f}–{e['high']:.2f})"
                for name, e in results["families"][family].items()}
    for name in ("hue", "contrast"):
        row = next(line for line in text.splitlines() if line.startswith(f"{name} ("))
        assert row.endswith(expected[name]), row
    assert ("WARNING: the paper family is entangled" in text) == (family == "paper")
    stats = json.loads((tmp_path / "out" / "stats.json").read_text(encoding="utf-8"))
    assert stats["measured_correctness"]["m1"]["hue"]["rho"] == pytest.approx(
        results["families"][family]["hue"]["rho"])


def test_explain_summary_says_when_nothing_was_measured():
    assert "none for the other family" in measured.summary_section(None, "other")


def _cells_under(html: str, heading: str) -> list[str]:
    return re.findall(rf"<th data-type=\"number\">{heading}<br><small class=\"measured\">"
                      r"([^<]*)</small></th>", html)


@pytest.mark.parametrize("family", ["paper", "perceptual"])
def test_report_shows_correctness_next_to_every_score_and_warns(tmp_path, results, family):
    build_run(tmp_path, family=family)
    build_report(locate_inputs(tmp_path), tmp_path / "report", OPTIONS)
    index = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    entry = results["families"][family]["shape"]
    label = f"M1 ρ {entry['rho']:.2f} ({entry['low']:.2f}–{entry['high']:.2f})"
    assert _cells_under(index, "shape") == [label]
    assert ("Warning: the paper family is entangled" in index) == (family == "paper")
    assert ("follows the hue intervention (ρ 0.71)" in index) == (family == "paper")
    page = (tmp_path / "report" / "prototypes" / "p0000.html").read_text(encoding="utf-8")
    row = re.search(r"<tr><td>shape</td>.*?</tr>", page).group(0)
    assert f'<td class="measured">{label}</td>' in row
    assert ("Warning: the paper family is entangled" in page) == (family == "paper")


def test_report_without_a_family_shows_no_correctness(tmp_path, results):
    build_run(tmp_path)
    build_report(locate_inputs(tmp_path), tmp_path / "report", OPTIONS)
    index = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "Measured correctness" not in index and 'class="measured"' not in index
