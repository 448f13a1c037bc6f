"""Build the static HTML report: gather tables, make the image files in parallel, write the pages.

The report is self-contained: pages, figures and images under one folder, relative links, CSS
and JavaScript inline, a Content-Security-Policy that forbids every network request. Jinja2
escapes every value that comes from data (class names, file names). Per-prototype charts are
inline SVG; matplotlib draws only the few summary figures. Image and figure files are named after
their inputs, so a rerun reuses those whose inputs did not change.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from protoexplain.device import resolve_device
from protoexplain.fileio import atomic_open
from protoexplain.models import load_model
from protoexplain.models.checkpoint import read_model_description
from protoexplain.report import charts, figures, findings, localexp, runinfo, scores
from protoexplain.report.images import file_key, keyed_name, remove_unused, write_boxed
from protoexplain.report.inputs import (
    RunInputs,
    read_confusion,
    read_global_scores,
    read_nearest,
    read_optional_json,
    read_predictions,
    read_records,
    read_training_log,
)
from protoexplain.report.jobs import prototype_job, run_jobs
from protoexplain.report.options import ReportOptions
from protoexplain.report.prototypes import (
    IMAGES,
    THUMBS,
    FileNamer,
    PrototypeFiles,
    dose_charts,
    dose_rows,
    global_chart,
    plan_prototype,
    score_series,
)
from protoexplain.report.summary import misclassified_view, summary_figures

FIGURES = "figures"


@dataclass
class ReportSummary:
    """What was written."""

    index: Path
    prototypes: int
    pages: int
    local_panels: int
    misleading: int
    redundant: int


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("protoexplain.report", "templates"), autoescape=True)
    static = resources.files("protoexplain.report") / "static"
    env.globals["css"] = Markup(static.joinpath("report.css").read_text(encoding="utf-8"))
    env.globals["js"] = Markup(static.joinpath("report.js").read_text(encoding="utf-8"))
    return env


def _write(env: Environment, template: str, path: Path, **context: Any) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(env.get_template(template).render(**context))


def _box(record: dict | None, prefix: str = "ha") -> tuple[int, int, int, int] | None:
    names = [f"{prefix}_{k}" for k in ("h0", "h1", "w0", "w1")]
    if record is None or not all(n in record for n in names):
        return None
    try:
        values = [float(record[n]) for n in names]
    except (TypeError, ValueError):
        return None
    return tuple(int(v) for v in values) if all(math.isfinite(v) for v in values) else None


def _accuracy(evaluation: dict) -> dict[str, float | None]:
    models = evaluation.get("models") or [{}]
    ensemble = evaluation.get("ensemble") or {}
    return {"top1": models[0].get("top1"), "top5": models[0].get("top5"),
            "ensemble_top1": ensemble.get("top1"), "n_images": evaluation.get("n_images")}


def _per_class(inputs: RunInputs, class_names: list[str], proto_class: list[int]) -> list[dict]:
    counts = np.bincount(np.asarray(proto_class, dtype=int), minlength=len(class_names))
    accuracy: dict[str, float] = {}
    if inputs.evaluation_dir and (inputs.evaluation_dir / "per_class.csv").is_file():
        table = pd.read_csv(inputs.evaluation_dir / "per_class.csv")
        if {"class", "accuracy"} <= set(table.columns):
            accuracy = dict(zip(table["class"].astype(str), table["accuracy"], strict=True))
    return [{"index": c, "name": name, "prototypes": int(counts[c]), "accuracy": accuracy.get(name)}
            for c, name in enumerate(class_names)]


def _by_prototype(table: pd.DataFrame) -> dict[int, pd.DataFrame]:
    return {int(j): rows for j, rows in table.groupby("prototype", sort=False)}


def build_report(
    inputs: RunInputs, out_dir: str | os.PathLike, options: ReportOptions | None = None
) -> ReportSummary:
    """Write the report for ``inputs`` into ``out_dir``; return what was written."""
    options = options or ReportOptions()
    options.check()
    out = Path(out_dir)
    for sub in (FIGURES, THUMBS, IMAGES, "prototypes"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    description = read_model_description(inputs.model_dir)
    spec = description["spec"]
    class_names = [str(c) for c in spec["class_names"]]
    proto_class = [int(c) for c in description.get("main_class", spec.get("prototype_class"))]
    count = len(proto_class)
    records = read_records(inputs.model_dir)
    by_record = ({int(k): v for k, v in records.set_index("prototype").to_dict("index").items()}
                 if records is not None else {})
    nearest = read_nearest(inputs.nearest_dir)
    evaluation = (read_optional_json(inputs.evaluation_dir / "metrics.json")
                  if inputs.evaluation_dir else {})

    split_scores = {s: read_global_scores(d) for s, d in inputs.explain.items()}
    # the test split when there is one, as the run's closing summary does
    main_split = "test" if "test" in split_scores else next(iter(split_scores), None)
    primary = scores.primary_strengths(split_scores[main_split]) if main_split else {}
    matrices = {s: scores.score_matrix(t, primary) for s, t in split_scores.items()}
    modifications = list(primary)
    main = matrices[main_split] if main_split else pd.DataFrame()
    dominant = scores.dominant(main) if main_split else pd.DataFrame(
        columns=["dominant", "dominant_score"])
    significance = (scores.significance(
        split_scores[main_split], primary, inputs.explain[main_split] / "local_scores.parquet")
        if main_split else None)
    images_of = {s: int(t["n_images"].max()) if len(t) else 0 for s, t in split_scores.items()}

    order = list(range(count))
    if options.max_prototype_pages:
        ranked = dominant["dominant_score"].reindex(order).fillna(-np.inf)
        order = sorted(order, key=lambda j: (-ranked[j], j))[: options.max_prototype_pages]
    with_page = set(order)
    proto_dir = inputs.model_dir / "prototypes"

    def record(j: int) -> dict | None:
        return by_record.get(j)

    near_by = (_by_prototype(nearest.sort_values(["prototype", "rank"]))
               if nearest is not None and inputs.nearest_dir is not None else {})

    def nearest_of(j: int) -> list[tuple[str, Path]]:
        rows = near_by.get(j)
        if rows is None:
            return []
        return [(f"nearest {int(r)}", inputs.nearest_dir / f"p{j:04d}_r{int(r):02d}_patch.png")
                for r in rows["rank"].head(options.nearest_k)]

    local_split, local_examples = _local_examples(inputs, split_scores, primary, options)
    # local panels show the prototype's crop and source, also of prototypes without a page
    with_images = with_page | {ex.prototype for ex in local_examples}
    namer = FileNamer(out)
    planned = [plan_prototype(j, proto_dir, _box(record(j)), nearest_of(j), j in with_images,
                              namer) for j in range(count)]
    files = [f for f, _ in planned]
    results = run_jobs(prototype_job, [job for _, job in planned], options.workers,
                       "prototype images")

    stats_table = pd.DataFrame(
        {r["prototype"]: r["stats"] for r in results if r["stats"] is not None}
    ).T
    flags = (findings.misleading(stats_table, dominant.dropna())
             if len(stats_table) and len(dominant) else pd.DataFrame(
                 columns=["shown", "dominant_rank", "misleading"]))
    explanation_vectors = (split_scores[main_split].pivot_table(
        index="prototype", columns=["modification", "strength"], values="weighted_delta")
        if main_split else None)
    pairs = findings.redundant_pairs(
        findings.prototype_vectors(inputs.model_dir), explanation_vectors,
        latent_ratio=options.latent_ratio, explanation_cosine=options.explanation_cosine)
    partners: dict[int, list[int]] = {}
    for pair in pairs:
        partners.setdefault(pair.first, []).append(pair.second)
        partners.setdefault(pair.second, []).append(pair.first)

    panels = _local_panels(local_examples, files, [class_names[c] for c in proto_class], namer)
    training_log = read_training_log(inputs.training_log)
    confusion = read_confusion(inputs.evaluation_dir)
    figure_files, used_figures = summary_figures(
        out / FIGURES, options.formats, main_split, matrices, training_log, confusion)
    errors = misclassified_view(
        read_predictions(inputs.evaluation_dir), options.misclassified,
        _evaluation_images(inputs, evaluation), out, namer)

    rows = []
    for j in range(count):
        dom = dominant.loc[j] if j in dominant.index else None
        name = dom["dominant"] if dom is not None else None
        q = (significance["q_value"].get((j, name)) if significance is not None and name
             else None)
        rec = record(j)
        rows.append({
            "prototype": j, "class_index": proto_class[j],
            "class_name": class_names[proto_class[j]],
            "dominant": name, "dominant_score": None if dom is None else dom["dominant_score"],
            "q_value": None if q is None or pd.isna(q) else float(q),
            "significant": q is not None and not pd.isna(q) and q < scores.ALPHA,
            "scores": {m: (main.at[j, m] if j in main.index else None) for m in modifications},
            "shown": flags["shown"].get(j) if j in flags.index else None,
            "dominant_rank": flags["dominant_rank"].get(j) if j in flags.index else None,
            "misleading": bool(flags["misleading"].get(j, False)) if j in flags.index else False,
            "redundant_with": partners.get(j, []),
            "page": j in with_page, "thumb": files[j].thumb,
            "image_path": None if rec is None else rec.get("image_path"),
            "distance": None if rec is None else rec.get("distance"),
        })

    env = _environment()
    common = {
        "backbone": spec.get("backbone"), "num_classes": len(class_names), "count": count,
        "modifications": modifications, "primary": primary, "alpha": scores.ALPHA,
        "splits": list(split_scores), "main_split": main_split, "images_of": images_of,
        "statistics": CROP_STATISTIC_NAMES, "quartile": findings.QUARTILE,
        "latent_ratio": options.latent_ratio, "explanation_cosine": options.explanation_cosine,
        "has_local": bool(panels), "local_split": local_split,
        "has_errors": errors is not None and errors["total_wrong"] > 0,
    }
    series = score_series({s: scores.at_primary(t, primary) for s, t in split_scores.items()})
    doses = dose_rows(split_scores)
    split_values = {s: m.to_dict("index") for s, m in matrices.items()}
    for row in (r for r in rows if r["page"]):
        j = row["prototype"]
        _write(env, "prototype.html.j2", out / "prototypes" / f"p{j:04d}.html", root="../",
               row=row, files=files[j], **common,
               global_chart=global_chart(series.get(j, {}), main_split),
               dose_charts=dose_charts(doses.get(j, {})),
               split_scores={s: v[j] for s, v in split_values.items() if j in v},
               local=[p for p in panels if p["example"].prototype == j])
    if panels:
        _write(env, "local.html.j2", out / "local.html", root="", **common, panels=panels)
    if common["has_errors"]:
        _write(env, "misclassified.html.j2", out / "misclassified.html", root="", **common,
               errors=errors)
    # the index last: once it exists, every page it links to does
    _write(env, "index.html.j2", out / "index.html", root="", rows=rows, **common,
           accuracy=_accuracy(evaluation), per_class=_per_class(inputs, class_names, proto_class),
           distributions={s: scores.distributions(m) for s, m in matrices.items()},
           comparisons=(scores.compare_splits(matrices["train"], matrices["test"])
                        if "train" in matrices and "test" in matrices else []),
           figures=figure_files, pairs=pairs, misleading=[r for r in rows if r["misleading"]],
           training=_training(training_log), confusion=(
               runinfo.confusions(confusion) if confusion is not None else None),
           errors=errors)
    used = {name for f in files for name in f.names()}
    used |= {p["image"] for p in panels if p["image"]}
    used |= {e["thumb"] for e in (errors or {}).get("rows", []) if e["thumb"]}
    for folder in (IMAGES, THUMBS):
        remove_unused(out / folder, {n.split("/", 1)[1] for n in used if n.startswith(folder)})
    remove_unused(out / FIGURES, used_figures)
    return ReportSummary(out / "index.html", count, len(with_page), len(panels),
                         sum(r["misleading"] for r in rows), len(pairs))


CROP_STATISTIC_NAMES = {name: label for name, (label, _) in findings.CROP_STATISTICS.items()}


def _training(log: pd.DataFrame | None) -> dict | None:
    if log is None or log.empty:
        return None
    rows = runinfo.training_rows(log)
    return {"rows": rows, "summary": runinfo.training_summary(rows)}


def _evaluation_images(inputs: RunInputs, evaluation: dict) -> Path | None:
    """The data folder the evaluation's ``predictions.csv`` names images in."""
    named = evaluation.get("data")
    candidates = [inputs.images_dir]
    if isinstance(named, str):
        candidates += [Path(named), inputs.root / named]
    candidates.append(inputs.root / "data" / "test")
    return next((c for c in candidates if c is not None and c.is_dir()), None)


def _local_examples(
    inputs: RunInputs, split_scores: dict[str, pd.DataFrame], primary: dict[str, float],
    options: ReportOptions,
) -> tuple[str | None, list[localexp.LocalExample]]:
    """The split and its sampled local examples (test preferred) with patches and predictions."""
    split = "test" if "test" in split_scores else next(iter(split_scores), None)
    if split is None or options.local_images <= 0:
        return split, []
    explain_dir = inputs.explain[split]
    local_path = explain_dir / "local_scores.parquet"
    if not local_path.is_file():
        return split, []
    images = localexp.sample_images(local_path, options.local_images, options.seed)
    examples = localexp.select_examples(local_path, images, primary, options.local_top_k)
    root = (inputs.images_dir
            or localexp.data_root_of(read_optional_json(explain_dir / "explain.json"), inputs.root)
            or next((d for d in (inputs.root / "data" / split,) if d.is_dir()), None))
    localexp.locate_patches(load_model(inputs.model_dir), examples, root,
                            resolve_device(options.device))
    return split, examples


def _local_panels(
    examples: list[localexp.LocalExample], files: list[PrototypeFiles],
    prototype_classes: list[str], namer: FileNamer,
) -> list[dict]:
    """Each local example with its image files (test image with the patch boxed) and bar chart."""
    panels = []
    for k, example in enumerate(examples):
        image = None
        if example.pixels is not None:
            image = f"{IMAGES}/" + keyed_name(
                f"local{k:03d}", file_key(example.source), example.box, example.pixels.shape)
            target = namer.target(image)
            if target is not None:
                write_boxed(example.pixels, example.box, Path(target))
        order = charts.ordered_groups(example.importances)
        chart = charts.bar_chart(
            order, {"local": {m: (v, None, None) for m, v in example.importances.items()}},
            figures.LOCAL_LABEL, sign_colours=True)
        panels.append({"example": example, "image": image, "chart": chart,
                       "files": files[example.prototype],
                       "prototype_class": prototype_classes[example.prototype]})
    return panels
