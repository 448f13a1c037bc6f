"""What the report says about the run, checked against values computed here from its inputs: the
split of every score table, predictions in the local panels, training curves, the confusion
matrix and the misclassified images; and that a rerun reuses unchanged files."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from helpers_report import CLASSES, build_run
from protoexplain.analysis.local import prepare_image
from protoexplain.report.inputs import locate_inputs
from protoexplain.report.render import ReportOptions, build_report

OPTIONS = ReportOptions(local_images=3, formats=("png",), workers=1)
FOLDERS = {name.replace("/", "_"): name for name in CLASSES}  # as build_run names them


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("run")
    info = build_run(root)
    build_report(locate_inputs(root), root / "report", OPTIONS)
    return {**info, "root": root, "report": root / "report"}


def _section(page: str, name: str) -> str:
    return page.split(f'id="{name}"')[1].split("</section>")[0]


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_score_tables_use_the_test_split_and_say_so(run: dict) -> None:
    index = (run["report"] / "index.html").read_text(encoding="utf-8")
    test = pd.read_csv(run["root"] / "explain" / "test" / "global_scores.csv")
    train = pd.read_csv(run["root"] / "explain" / "train" / "global_scores.csv")
    n_images = int(test["n_images"].max())
    # hue was computed at 0.05, 0.1 and 0.2: the table shows the median, 0.1
    shown = test[(test["strength"] == 0.1) | (test["modification"] != "hue")]
    best = shown.loc[shown.groupby("prototype")["weighted_delta"].idxmax()]
    table = _section(index, "prototypes")
    assert f"global importance on the test split ({n_images} images)" in _text(table)
    for row in best.itertuples():
        assert f'data-value="{row.weighted_delta}"' in table
    # the train scores differ by 0.01 and are not the ones shown
    train_value = train[(train["prototype"] == 0) & (train["modification"] == "hue")
                        & (train["strength"] == 0.1)]["weighted_delta"].item()
    assert f'data-value="{train_value}"' not in table
    statistics = _text(_section(index, "statistics"))
    assert f"The train split ({n_images} images)" in statistics
    assert f"The test split ({n_images} images)" in statistics
    page = (run["report"] / "prototypes" / "p0000.html").read_text(encoding="utf-8")
    assert "global score on train" in page and "global score on test" in page
    assert "on the test split" in _text(page)


def test_local_panels_show_prediction_weight_and_contribution(run: dict) -> None:
    model = run["model"].eval()
    local = (run["report"] / "local.html").read_text(encoding="utf-8")
    panels = re.findall(r'<section class="panel" data-image="([^"]+)" data-prototype="(\d+)">'
                        r"(.*?)</section>", local, flags=re.S)
    assert len(panels) == 9
    for image, prototype, body in panels:
        image, j = html.unescape(image), int(prototype)
        with torch.no_grad():
            x = model.normalize(prepare_image(run["data"] / image, model.spec.image_size)[None])
            distances = model.distance_maps(x)[0].flatten(1).min(dim=1).values
            similarity = torch.log((distances + 1) / (distances + model.spec.epsilon))
            logits = model.last_layer(similarity)
        predicted = int(logits.argmax())
        weight = float(model.last_layer.weight.detach()[predicted, j])
        probability = float(torch.softmax(logits, 0)[predicted])
        true_class = FOLDERS[image.split("/")[0]]
        text = _text(body)
        assert f"Predicted {CLASSES[predicted]} (probability {100 * probability:.1f} %)" in text
        verdict = "✓ correct" if predicted == CLASSES.index(true_class) else "✗ wrong"
        assert verdict in text
        assert f"prototype {j} of class {CLASSES[model.prototype_class[j]]}" in text
        assert f"Weight to {CLASSES[predicted]}{weight:.4g}" in text
        contribution = float(similarity[j]) * weight
        assert (f"{float(similarity[j]):.4g} × {weight:.4g} = {contribution:.4g} of "
                f"{float(logits[predicted]):.4g}") in text


def test_training_curves_from_the_training_log(run: dict) -> None:
    index = (run["report"] / "index.html").read_text(encoding="utf-8")
    log = pd.read_csv(run["root"] / "train" / "metrics.csv")
    last = log.sort_values("step").groupby(["epoch", "phase"], sort=False).tail(1)
    table = index.split('id="training-table"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>(\d+)</td><td>([a-z_]+)</td>(.*?)</tr>", table)
    assert [(int(e), p) for e, p, _ in rows] == list(zip(last["epoch"], last["phase"],
                                                          strict=True))
    for (_, _, cells), (_, row) in zip(rows, last.iterrows(), strict=True):
        expected = "—" if pd.isna(row["test_acc"]) else f"{100 * row['test_acc']:.1f} %"
        assert cells.endswith(f"<td>{expected}</td>")
    best = log.loc[log["val_acc"].idxmax()]
    text = _text(_section(index, "training"))
    assert (f"Best validation accuracy {100 * best['val_acc']:.1f} % (epoch {best['epoch']}, "
            f"{best['phase']})") in text
    assert f"{log['epoch'].nunique()} epochs logged" in text
    assert re.search(r'<img src="figures/training-[0-9a-f]{10}\.png"', index)


def test_confusion_matrix_and_misclassified_images(run: dict) -> None:
    index = (run["report"] / "index.html").read_text(encoding="utf-8")
    confusion = pd.read_csv(run["root"] / "evaluation" / "confusion.csv", index_col=0)
    counts = confusion.to_numpy()
    section = _section(index, "evaluation")
    wrong = int(counts.sum() - np.trace(counts))
    assert f"{wrong} of {int(counts.sum())} test images misclassified" in _text(section)
    cells = re.findall(r'<td class="[a-z]*">(\d+)</td>',
                       section.split('id="confusion"')[1].split("</table>")[0])
    assert [int(c) for c in cells] == counts.flatten().tolist()
    top = section.split('id="top-confusions"')[1].split("</table>")[0]
    pairs = sorted(((int(counts[r, c]), r, c) for r in range(len(CLASSES))
                    for c in range(len(CLASSES)) if r != c and counts[r, c]),
                   key=lambda t: (-t[0], t[1], t[2]))
    listed = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(\d+)</td>", top)
    assert [(html.unescape(t), html.unescape(p), int(n)) for t, p, n in listed] == [
        (CLASSES[r], CLASSES[c], n) for n, r, c in pairs]

    predictions = pd.read_csv(run["root"] / "evaluation" / "predictions.csv")
    mistakes = predictions[~predictions["correct"]].sort_values("probability", ascending=False)
    page = (run["report"] / "misclassified.html").read_text(encoding="utf-8")
    rows = re.findall(r'<tr><td><img class="error-thumb" src="([^"]+)".*?</td><td>(.*?)</td>'
                      r"<td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", page)
    assert [html.unescape(r[1]) for r in rows] == mistakes["image"].tolist()
    assert [html.unescape(r[3]) for r in rows] == mistakes["predicted"].tolist()
    assert [r[4] for r in rows] == [f"{100 * p:.1f} %" for p in mistakes["probability"]]
    for thumb, name, *_ in rows:
        with Image.open(run["report"] / thumb) as shown:
            source = Image.open(run["data"] / html.unescape(name))
            assert max(shown.size) <= 96 and shown.size[0] / shown.size[1] == pytest.approx(
                source.size[0] / source.size[1], rel=0.05)
    assert "<script>alert(" not in page and html.escape(CLASSES[1]) in page


def _files(report: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(report)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for folder in ("images", "thumbs", "figures") for p in (report / folder).iterdir()}


def test_rerun_reuses_unchanged_files_and_remakes_changed_ones(tmp_path: Path) -> None:
    build_run(tmp_path)
    out = tmp_path / "report"
    build_report(locate_inputs(tmp_path), out, OPTIONS)
    first = _files(out)
    assert any(name.startswith("thumbs/p0002-") for name in first)
    build_report(locate_inputs(tmp_path), out, OPTIONS)
    assert _files(out) == first  # nothing made again
    # a new crop for prototype 2 (replaced, as push writes it): its thumbnail and crop change
    crop = tmp_path / "train" / "model" / "prototypes" / "p0002_crop.png"
    Image.fromarray(np.full((12, 12, 3), 77, np.uint8)).save(crop.with_suffix(".new.png"))
    os.replace(crop.with_suffix(".new.png"), crop)
    build_report(locate_inputs(tmp_path), out, OPTIONS)
    second = _files(out)
    changed = sorted(set(first) ^ set(second))
    assert changed and all(name.split("/")[1].startswith(("p0002-", "p0002_crop-"))
                           for name in changed)
    assert len(changed) == 4  # two removed, two new
    page = (out / "prototypes" / "p0002.html").read_text(encoding="utf-8")
    assert all(name in page for name in set(second) - set(first) if "p0002_crop" in name)
