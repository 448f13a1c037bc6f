"""The HTML report on a small fixture run folder: files, escaping, and a headless Chromium load."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from browser import find_chromium, load
from protoexplain.cli import main
from protoexplain.fileio import write_json
from protoexplain.models import ModelSpec, ProtoPNet, save_model

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
#: Set to a folder to keep the report screenshots for a look by eye (default: discarded).
ARTIFACTS_VARIABLE = "PROTOEXPLAIN_TEST_ARTIFACTS"
CLASSES = ["alpha bird", "<script>alert(1)</script>", "gamma & co"]
MODS = ["hue", "shape", "texture", "contrast"]
P = 6
SIZE = 32


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.uint8(array)).save(path)


def _crop(j: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct crops: saturated red, colour noise, grey stripes (no hue at all), tinted grey…"""
    kinds = [
        np.full((12, 12, 3), (220, 30, 30)),
        np.full((12, 12, 3), (220, 30, 30)),
        rng.integers(0, 256, (12, 12, 3)),
        np.tile((np.arange(12) % 2 * 255)[None, :, None], (12, 1, 3)),
        np.full((12, 12, 3), (128, 118, 100)),
        np.full((12, 12, 3), (40, 200, 90)),
    ]
    return kinds[j]


def build_run(root: Path, *, with_test: bool = True) -> dict:
    """A pipeline run folder with a real tiny model and explain/evaluation/nearest outputs."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = ModelSpec(backbone="small_cnn", num_classes=len(CLASSES), prototype_shape=(P, 16, 1, 1),
                     class_names=CLASSES, image_size=SIZE)
    model = ProtoPNet(spec)
    with torch.no_grad():
        model.prototype_vectors[1] = model.prototype_vectors[0]  # a redundant pair: 0 and 1
    model_dir = root / "train" / "model"
    save_model(model, model_dir)
    protos = model_dir / "prototypes"
    records = []
    for j in range(P):
        _png(protos / f"p{j:04d}_crop.png", _crop(j, rng))
        _png(protos / f"p{j:04d}_source.png", rng.integers(0, 256, (SIZE, SIZE, 3)))
        records.append({"prototype": j, "class_index": j // 2, "class_name": CLASSES[j // 2],
                        "pushed": True, "image_index": j,
                        "image_path": f"{CLASSES[j // 2]}/s{j}.png",
                        "cell_h": 0, "cell_w": 1, "distance": 0.1,
                        "rf_h0": 0, "rf_h1": 16, "rf_w0": 8, "rf_w1": 32,
                        "ha_h0": 2, "ha_h1": 14, "ha_w0": 10, "ha_w1": 22})
    pd.DataFrame(records).to_csv(protos / "records.csv", index=False)

    data = root / "data" / "test"
    images = []
    for c, name in enumerate(CLASSES):
        for k in range(2):
            rel = f"{name.replace('/', '_')}/img{k}.png"
            _png(data / rel, rng.integers(0, 256, (40, 48, 3)))
            images.append((rel, c))

    # hue relies strongly on prototypes 0/1; prototype 3 (stripes) relies on hue → misleading
    base = {j: np.array([0.3, 0.2, 0.1, 0.05]) for j in range(P)}
    base[0] = base[1] = np.array([2.0, 0.5, 0.2, 0.1])
    base[3] = np.array([1.5, 0.1, 0.1, 0.1])
    splits = ["train", "test"] if with_test else ["train"]
    for s, split in enumerate(splits):
        out = root / "explain" / split
        out.mkdir(parents=True)
        rows, local = [], []
        for j in range(P):
            for m, mod in enumerate(MODS):
                strengths = [0.05, 0.1, 0.2] if mod == "hue" else [1.0]
                for strength in strengths:
                    value = base[j][m] * strength / (0.1 if mod == "hue" else 1.0) + 0.01 * s
                    rows.append({"prototype": j, "prototype_class": j // 2, "modification": mod,
                                 "strength": strength, "weighted_delta": value, "n_images": 6,
                                 "ci_low": value - 0.1, "ci_high": value + 0.1})
                    for i, (rel, c) in enumerate(images):
                        delta = value + 0.05 * (i - 2.5)
                        local.append({"image": rel, "class": c, "prototype": j,
                                      "prototype_class": j // 2, "modification": mod,
                                      "strength": strength, "orig_similarity": 1.0 + 0.1 * j + i,
                                      "delta": delta, "relative_delta": delta / 2})
        pd.DataFrame(rows).to_csv(out / "global_scores.csv", index=False)
        pd.DataFrame(local).to_parquet(out / "local_scores.parquet", row_group_size=50)
        write_json(out / "stats.json", {})
        write_json(out / "explain.json", {"model": str(model_dir), "data": str(data)})
    evaluation = root / "evaluation"
    write_json(evaluation / "metrics.json", {"models": [{"model": str(model_dir), "top1": 0.5,
                                                          "top5": 1.0}], "ensemble": None,
                                             "n_images": 6})
    pd.DataFrame({"class": CLASSES, "n": 2, "correct": 1, "accuracy": 0.5}).to_csv(
        evaluation / "per_class.csv", index=False)
    nearest = root / "nearest"
    near_rows = []
    for j in range(P):
        for rank in (1, 2):
            _png(nearest / f"p{j:04d}_r{rank:02d}_patch.png", rng.integers(0, 256, (10, 10, 3)))
            near_rows.append({"prototype": j, "prototype_class": j // 2, "rank": rank,
                              "image": images[rank][0], "image_index": rank, "image_class": 0,
                              "distance": 0.1 * rank, "cell_h": 0, "cell_w": 0,
                              "h0": 0, "h1": 10, "w0": 0, "w1": 10})
    pd.DataFrame(near_rows).to_csv(nearest / "nearest.csv", index=False)
    return {"model_dir": model_dir, "data": data}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "protoexplain", *args], capture_output=True,
                          text=True, env=env, timeout=600, check=False)


class _Table(HTMLParser):
    """Collects the first-cell text of every body row of #prototype-table."""

    def __init__(self) -> None:
        super().__init__()
        self.in_table = self.in_body = self.in_first = False
        self.rows: list[dict] = []
        self.cell = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "prototype-table":
            self.in_table = True
        elif self.in_table and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append({"class": attrs.get("class") or "", "first": "", "text": ""})
            self.cell = 0
        elif self.in_body and tag == "td":
            self.cell += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_table = self.in_body = False

    def handle_data(self, data):
        if self.in_body and self.rows:
            self.rows[-1]["text"] += data
            if self.cell == 1:
                self.rows[-1]["first"] += data


def table_rows(html: str) -> list[dict]:
    parser = _Table()
    parser.feed(html)
    return [{**row, "first": row["first"].strip()} for row in parser.rows]


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("chromium is not installed ('make test' installs it with apt-get as root)")
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("run")
    build_run(root)
    result = run_cli("report", str(root), "--workers", "2", "--local-images", "3")
    assert result.returncode == 0, result.stderr
    assert "report written to" in result.stdout
    return root / "report"


def test_report_files_and_escaping(report: Path) -> None:
    index = (report / "index.html").read_text(encoding="utf-8")
    rows = table_rows(index)
    assert sorted(int(r["first"]) for r in rows) == list(range(P))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert "<script>alert(" not in index
    assert "gamma &amp; co" in index
    for j in range(P):
        page = (report / "prototypes" / f"p{j:04d}.html").read_text(encoding="utf-8")
        assert f"Prototype {j}" in page
        assert (report / "figures" / f"p{j:04d}_global.png").is_file()
        assert (report / "figures" / f"p{j:04d}_global.svg").is_file()
        assert (report / "figures" / f"p{j:04d}_dose.png").is_file()  # hue has 3 strengths
    assert (report / "local.html").is_file()
    local = (report / "local.html").read_text(encoding="utf-8")
    assert local.count("<figure>") == 3 * 3  # 3 sampled images × top 3 prototypes
    for name in ("heatmap", "train_test"):
        assert (report / "figures" / f"{name}.png").is_file()
    for path in report.rglob("*"):
        if path.suffix in (".html", ".css", ".js"):
            assert not re.search(r"https?://", path.read_text(encoding="utf-8")), path
        if path.suffix == ".svg":
            text = re.sub(r'xmlns(:\w+)?="https?://[^"]*"', "", path.read_text(encoding="utf-8"))
            assert not re.search(r"(href|src)=\"https?://", text), path


def test_report_states_rules_statistics_and_findings(report: Path) -> None:
    index = (report / "index.html").read_text(encoding="utf-8")
    assert "Shapiro–Wilk" in index and "Welch" in index
    assert "the explanation generalises" in index  # train and test differ by a constant 0.01
    assert "hue concentration" in index and "edge density" in index
    redundant = index.split('id="redundant"')[1].split("</section>")[0]
    assert 'href="prototypes/p0000.html">0</a>' in redundant
    assert 'href="prototypes/p0001.html">1</a>' in redundant
    misleading = index.split('id="misleading"')[1].split("</section>")[0]
    # prototype 3 relies on hue but its crop (black/white stripes) has no hue at all
    assert "prototype 3</a>" in misleading
    assert "prototype 0</a>" not in misleading  # saturated red crop relying on hue


def test_report_in_chromium(report: Path, chromium: str, tmp_path: Path) -> None:
    loaded = load(chromium, report / "index.html")
    assert loaded.dom, loaded.log[-2000:]
    assert loaded.console == [], loaded.console
    assert "Content Security Policy" not in loaded.log
    assert 'data-ready="1"' in loaded.dom  # the table script ran to the end
    rows = table_rows(loaded.dom)
    assert sorted(int(r["first"]) for r in rows) == list(range(P))
    assert any("<script>alert(1)</script>" in r["text"] for r in rows)  # shown as text
    assert "<script>alert(1)" not in loaded.dom  # never an element

    filtered = load(chromium, report / "index.html", fragment="filter=gamma")
    hidden = {r["first"]: "hidden" in r["class"] for r in table_rows(filtered.dom)}
    assert hidden == {str(j): j // 2 != 2 for j in range(P)}
    ordered = load(chromium, report / "index.html", fragment="sort=0&dir=desc")
    assert [int(r["first"]) for r in table_rows(ordered.dom)] == list(range(P))[::-1]

    for page in (report / "prototypes" / "p0003.html", report / "local.html"):
        result = load(chromium, page)
        assert result.console == [], (page, result.console)

    shots = Path(os.environ.get(ARTIFACTS_VARIABLE) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    for page, name in ((report / "index.html", "report_index.png"),
                       (report / "prototypes" / "p0003.html", "report_prototype.png")):
        shot = load(chromium, page, screenshot=shots / name)
        assert (shots / name).is_file(), shot.log[-2000:]
        assert shot.console == []


@pytest.mark.parametrize("layout", ["model", "training"])
def test_report_from_model_or_training_folder(tmp_path: Path, layout: str) -> None:
    info = build_run(tmp_path / "run", with_test=False)
    if layout == "model":
        target = info["model_dir"]
    else:
        target = tmp_path / "training"
        target.mkdir()
        (info["model_dir"]).rename(target / "model")
    out = tmp_path / "report"
    args = ["report", str(target), "--out", str(out), "--workers", "1", "--formats", "png"]
    assert main(args) == 0
    index = (out / "index.html").read_text(encoding="utf-8")
    assert sorted(int(r["first"]) for r in table_rows(index)) == list(range(P))
    assert "Explained splits</th><td>none" in index
    assert not (out / "local.html").exists()
    assert not list((out / "figures").glob("*.svg"))


def test_report_limits_pages_and_rejects_bad_input(tmp_path: Path, capsys) -> None:
    build_run(tmp_path / "run", with_test=False)
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "run"), "--out", str(out), "--workers", "1",
                 "--max-prototype-pages", "2", "--formats", "png", "--local-images", "0"]) == 0
    # largest dominant scores: prototypes 0 and 1 (hue 2.0), before 3 (hue 1.5)
    assert sorted(p.name for p in (out / "prototypes").glob("*.html")) == [
        "p0000.html", "p0001.html"]
    assert len(table_rows((out / "index.html").read_text(encoding="utf-8"))) == P
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "nothing-here" in capsys.readouterr().err


def test_index_is_written_after_every_page_it_links_to(tmp_path: Path, monkeypatch) -> None:
    """A report killed midway must not leave an index whose links are missing (issue 20, 8)."""
    from protoexplain.report import render

    written: list[str] = []
    write = render._write

    def recording(env, template, path, **context):
        written.append(Path(path).name)
        return write(env, template, path, **context)

    monkeypatch.setattr(render, "_write", recording)
    info = build_run(tmp_path / "run", with_test=False)
    args = ["report", str(info["model_dir"]), "--out", str(tmp_path / "report"), "--workers", "1",
            "--formats", "png"]  # fmt: skip
    assert main(args) == 0
    assert written[-1] == "index.html" and written.count("index.html") == 1
    assert any(name.startswith("p0") for name in written[:-1]), written


def test_report_refuses_an_explanation_of_another_model(tmp_path: Path, capsys) -> None:
    """Issue 20, 10: report did not check the explanation against the model it reports on."""
    info = build_run(tmp_path / "run", with_test=False)
    explain_json = tmp_path / "run" / "explain" / "train" / "explain.json"
    record = json.loads(explain_json.read_text(encoding="utf-8"))
    explain_json.write_text(json.dumps({**record, "n_prototypes": P + 4}), encoding="utf-8")
    args = ["report", str(tmp_path / "run"), "--model", str(info["model_dir"]), "--out",
            str(tmp_path / "report"), "--workers", "1"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"explains a model with {P + 4} prototypes" in err and f"has {P};" in err
    assert "Traceback" not in err and not (tmp_path / "report").exists()
