"""The HTML report on a small fixture run folder: files, escaping, and a headless Chromium load."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from browser import find_chromium, load
from helpers_report import MODS, P, build_run
from protoexplain.cli import main

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
#: Set to a folder to keep the report screenshots for a look by eye (default: discarded).
ARTIFACTS_VARIABLE = "PROTOEXPLAIN_TEST_ARTIFACTS"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "protoexplain", *args], capture_output=True,
                          text=True, env=env, timeout=1800, check=False)


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
        chart = page.split('id="global-chart"')[1].split("</svg>")[0]
        assert chart.count('<g class="bar"') == len(MODS) * 2  # one bar per split
        assert 'id="dose-charts"' in page  # hue has 3 strengths
        dose = page.split('id="dose-charts"')[1].split("</div>")[0]
        assert dose.count("<svg") == 1 and dose.count("<polyline") == 2
        for src in re.findall(r'src="\.\./([^"]+)"', page):
            assert (report / src).is_file(), src
    assert (report / "local.html").is_file()
    local = (report / "local.html").read_text(encoding="utf-8")
    assert local.count('<section class="panel"') == 3 * 3  # 3 sampled images × top 3 prototypes
    for src in re.findall(r'src="([^"]+)"', local):
        assert (report / src).is_file(), src
    for name in ("heatmap", "train_test", "training"):
        assert len(list((report / "figures").glob(f"{name}-*.png"))) == 1
        assert len(list((report / "figures").glob(f"{name}-*.svg"))) == 1
    for page in report.glob("*.html"):
        assert "<script>alert(" not in page.read_text(encoding="utf-8"), page
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
